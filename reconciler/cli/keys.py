"""``reconciler keys``: the receipt signing keys.

``rotate`` makes a new key current and keeps every earlier key's public half,
so receipts signed before stay valid. Keys kept in a keyring directory are
rotated in place; keys kept in environment variables (docker-compose's
``.env``) are printed, for the operator to put there. Either way: restart the
API first (it learns the new public key), then the worker (it signs with it).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from ledger.receipts.keyring import ensure_keyring, read_public_keys, rotate_keyring, rotated
from ledger.receipts.signing import ReceiptSigner, SigningKeyError
from reconciler.cli.context import load_settings
from reconciler.settings import Settings


def keyring_dir(settings: Settings, directory: Path | None) -> Path:
    return directory or settings.receipt_keys_dir or settings.data_dir / "receipt-keys"


def rotate_in_directory(directory: Path) -> str:
    if not (directory / "public-keys.json").exists():
        ensure_keyring(directory)
        current = read_public_keys(directory)[0].kid
        return f"created receipt keyring {directory}: key {current} is current"
    old, new = rotate_keyring(directory)
    return (
        f"receipt key {new} is current; {old} is retired (its public key stays in "
        f"{directory}). Restart the API, then the worker."
    )


def rotate_in_environment(settings: Settings) -> str:
    """The new .env lines: the worker's new seed and the API's public keys."""
    secret = settings.receipt_signing_key_b64
    current = ReceiptSigner.from_base64(secret.get_secret_value()) if secret else None
    new, public_keys = rotated(current, settings.receipt_public_keys)
    retired = current.key_id if current else "none"
    return "\n".join(
        [
            f"# receipt key {new.key_id} is current; retired: {retired}.",
            "# Put these in .env, restart the api, then the worker:",
            f"RECEIPT_SIGNING_KEY={new.seed_b64()}",
            f"RECEIPT_PUBLIC_KEYS={json.dumps(public_keys, separators=(',', ':'))}",
        ]
    )


@click.group()
def keys() -> None:
    """Receipt signing keys."""


@keys.command("rotate")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keyring directory (default: RECONCILER_RECEIPT_KEYS_DIR, else DATA_DIR/receipt-keys).",
)
@click.option(
    "--print-env",
    is_flag=True,
    help="Keys kept in environment variables: read the current ones from "
    "RECONCILER_RECEIPT_SIGNING_KEY_B64 / _PUBLIC_KEYS and print the new .env lines.",
)
def keys_rotate(directory: Path | None, print_env: bool) -> None:
    """Make a new receipt key current; older receipts stay valid."""
    settings = load_settings()
    try:
        if print_env:
            click.echo(rotate_in_environment(settings))
        else:
            click.echo(rotate_in_directory(keyring_dir(settings, directory)))
    except SigningKeyError as err:
        raise click.ClickException(str(err)) from err
