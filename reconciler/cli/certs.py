"""``reconciler certs``: the dev CA and certificates of the compose stack's
mutual TLS to Temporal (``reconciler.devcerts``)."""

from __future__ import annotations

from pathlib import Path

import click

from reconciler.devcerts import (
    LEAF_DAYS_DEFAULT,
    SERVER_NAME_DEFAULT,
    CertsExistError,
    init_certs,
)


@click.group()
def certs() -> None:
    """TLS certificates for Temporal (mutual TLS)."""


@certs.command("init")
@click.option(
    "--out",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Where to write them (docker-compose mounts it: TLS_DIR in .env).",
)
@click.option("--server-name", default=SERVER_NAME_DEFAULT, show_default=True)
@click.option(
    "--days", type=click.IntRange(1, 5 * 365), default=LEAF_DAYS_DEFAULT, show_default=True
)
@click.option("--force", is_flag=True, help="Replace existing certificates (a new CA).")
def certs_init(directory: Path, server_name: str, days: int, force: bool) -> None:
    """Make a CA, Temporal's server certificate and the client certificates
    of the app and the Temporal UI."""
    try:
        issued = init_certs(directory, server_name=server_name, days=days, force=force)
    except (CertsExistError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(
        f"CA and certificates for {issued.server_name} written to {issued.directory} "
        f"(valid until {issued.not_after:%Y-%m-%d}); the CA key is {issued.directory}/ca/"
        "ca-key.pem: keep it, mount it nowhere."
    )
