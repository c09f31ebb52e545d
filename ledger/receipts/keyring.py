"""Receipt signing keys over time: one current private key, and the public
key of every key that was ever current, so a rotation never makes an older
receipt look forged.

A receipt names its key by ``kid`` (``signing.key_id_for``, a fingerprint
of the public key) inside its signed payload. The worker holds the current
private key only; the API and ``reconciler receipts verify`` hold public keys
only (``ReceiptVerifier``).

A keyring directory (the dev stack's, or any deployment that keeps keys in
files) holds::

    DIR/public-keys.json        every public key: kid, key, status, created_at
    DIR/private/<kid>.pem       the current private key (PKCS#8 PEM, mode 0600)

Rotation writes the new private key first, then replaces ``public-keys.json``
in one rename (new key current, the old one retired), then deletes the old
private key: a crash at any point leaves either the old or the new keyring,
never a current key without its private half. Changes are serialised by a
lock file, so two processes starting together create one key.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from ledger.receipts.signing import (
    PUBLIC_KEY_BYTES,
    ReceiptSigner,
    ReceiptVerifier,
    SigningKeyError,
    b64_decode_lenient,
    key_id_for,
    load_or_create_signing_key,
    load_signing_key,
    read_key_file,
)

PUBLIC_KEYS_FILE: Final = "public-keys.json"
PRIVATE_DIR: Final = "private"
_LOCK_FILE: Final = ".lock"
_PUBLIC_FILE_BYTES_MAX: Final = 256 * 1024
KEYS_MAX: Final = 100


@dataclass(frozen=True)
class PublicKey:
    kid: str
    public_key: str  # raw Ed25519 public key, unpadded base64url
    status: Literal["current", "retired"]
    created_at: str  # ISO 8601, UTC


def public_key_id(public_key_b64: str) -> str:
    """The kid of a public key given as base64; ``SigningKeyError`` if it is
    not an Ed25519 public key."""
    try:
        raw = b64_decode_lenient(public_key_b64)
    except ValueError as exc:
        raise SigningKeyError("a receipt public key is not valid base64") from exc
    if len(raw) != PUBLIC_KEY_BYTES:
        raise SigningKeyError(f"a receipt public key has {PUBLIC_KEY_BYTES} bytes, not {len(raw)}")
    return key_id_for(raw)


def verifier_for(public_keys_b64: Sequence[str]) -> ReceiptVerifier:
    """A verifier over configured public keys (each checked, named on error)."""
    for key in public_keys_b64:
        public_key_id(key)
    if not public_keys_b64:
        raise SigningKeyError("no receipt public key is configured")
    return ReceiptVerifier(public_keys_b64)


def rotated(
    current: ReceiptSigner | None, public_keys_b64: Sequence[str]
) -> tuple[ReceiptSigner, list[str]]:
    """A new current key, and the public keys to verify with from now on:
    the new one first, then every earlier one (the old current included)."""
    new = ReceiptSigner.generate()
    keys = [new.public_key_b64]
    previous = [*public_keys_b64, *([current.public_key_b64] if current else [])]
    for key in previous:
        if public_key_id(key) not in {public_key_id(k) for k in keys}:
            keys.append(key)
    if len(keys) > KEYS_MAX:
        raise SigningKeyError(f"more than {KEYS_MAX} receipt keys: retire some by hand first")
    return new, keys


# --- keyring directories ---------------------------------------------------------


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    (directory / PRIVATE_DIR).mkdir(exist_ok=True, mode=0o700)
    with (directory / _LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_public_keys(directory: Path) -> list[PublicKey]:
    """The keyring's public keys; ``SigningKeyError`` if missing or malformed."""
    path = directory / PUBLIC_KEYS_FILE
    raw = read_key_file(path, _PUBLIC_FILE_BYTES_MAX, "receipt public keys")
    try:
        entries = [PublicKey(**entry) for entry in json.loads(raw)["keys"]]
    except (ValueError, TypeError, KeyError) as exc:
        raise SigningKeyError(f"{path} is not a receipt keyring: {exc}") from exc
    for entry in entries:
        if public_key_id(entry.public_key) != entry.kid:
            raise SigningKeyError(f"{path}: key {entry.kid} does not match its public key")
    if [e.status for e in entries].count("current") != 1:
        raise SigningKeyError(f"{path} must name exactly one current key")
    return entries


def _write_public_keys(directory: Path, entries: list[PublicKey]) -> None:
    path = directory / PUBLIC_KEYS_FILE
    tmp = path.with_name(f".{PUBLIC_KEYS_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"keys": [asdict(e) for e in entries]}, indent=2) + "\n")
    tmp.chmod(0o644)  # public: the API may run as another user
    tmp.replace(path)


def _private_path(directory: Path, kid: str) -> Path:
    return directory / PRIVATE_DIR / f"{kid}.pem"


def _now() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def ensure_keyring(directory: Path, adopt: Path | None = None) -> None:
    """Create the keyring with its first key unless it exists. ``adopt``: a
    key file of the time before keyrings (a dev data dir's), whose receipts
    must stay valid, becomes the first key instead of a new one."""
    with _locked(directory):
        if (directory / PUBLIC_KEYS_FILE).exists():
            return
        if adopt is not None and adopt.exists():
            signer = load_or_create_signing_key(adopt)
            target = _private_path(directory, signer.key_id)
            if not target.exists():
                os.link(adopt, target)
        else:
            signer = _create_private(directory)
        first = PublicKey(signer.key_id, signer.public_key_b64, "current", _now())
        _write_public_keys(directory, [first])


def _create_private(directory: Path) -> ReceiptSigner:
    staging = directory / PRIVATE_DIR / f".new-{os.getpid()}.pem"
    staging.unlink(missing_ok=True)
    signer = load_or_create_signing_key(staging)
    target = _private_path(directory, signer.key_id)
    staging.replace(target)
    return signer


def load_keyring_signer(directory: Path) -> ReceiptSigner:
    """The current private key (the worker's)."""
    current = next(e for e in read_public_keys(directory) if e.status == "current")
    signer = load_signing_key(_private_path(directory, current.kid))
    if signer.key_id != current.kid:
        raise SigningKeyError(f"the private key of {current.kid} in {directory} is another key")
    return signer


def keyring_verifier(directory: Path) -> ReceiptVerifier:
    """Every public key of the keyring (the API's): nothing private is read."""
    return ReceiptVerifier([e.public_key for e in read_public_keys(directory)])


def rotate_keyring(directory: Path) -> tuple[str, str]:
    """Make a new key current and retire the current one; (old kid, new kid)."""
    with _locked(directory):
        entries = read_public_keys(directory)
        old = next(e for e in entries if e.status == "current")
        if len(entries) >= KEYS_MAX:
            raise SigningKeyError(f"more than {KEYS_MAX} receipt keys: retire some by hand first")
        new = _create_private(directory)
        retired = [PublicKey(e.kid, e.public_key, "retired", e.created_at) for e in entries]
        _write_public_keys(
            directory, [PublicKey(new.key_id, new.public_key_b64, "current", _now()), *retired]
        )
        _private_path(directory, old.kid).unlink(missing_ok=True)
    return old.kid, new.key_id
