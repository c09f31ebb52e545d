"""Ed25519 keys and signatures for receipts.

A receipt is signed over the UTF-8 bytes of its canonical payload (see
``ledger.receipts.issue.canonical_json``). Signatures and public keys are written
as unpadded base64url, so they fit in URLs and QR codes; decoding accepts
either base64 alphabet, with or without padding.

Where keys come from (the composition root decides, see
``reconciler.wiring``): the worker signs with the current private key, either
``ReceiptSigner.from_base64(settings.receipt_signing_key_b64)`` (the 32-byte
Ed25519 seed, from a secret store) or a keyring directory
(``ledger.receipts.keyring``); the API verifies with public keys only.

The key id (``kid``) signed into every receipt and stored with it is a short
fingerprint of the public key, so receipts signed before a key rotation
remain verifiable by a ``ReceiptVerifier`` that holds the retired public keys
as well.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import secrets
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

# Where dev data dirs kept their one key before keyrings (adopted by them).
LEGACY_DEV_KEY_FILENAME = "receipt-signing-key.pem"
SEED_BYTES = 32
PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
KEY_ID_HEX_CHARS = 16
_KEY_FILE_BYTES_MAX = 16 * 1024
_SIGNATURE_B64_CHARS_MAX = 128


class SigningKeyError(Exception):
    """The signing key cannot be loaded or created (an operating error)."""


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64_decode_lenient(text: str) -> bytes:
    """Decode base64 or base64url, padded or not; ``ValueError`` if invalid."""
    cleaned = "".join(text.split()).rstrip("=").replace("+", "-").replace("/", "_")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not valid base64") from exc


def key_id_for(public_key_raw: bytes) -> str:
    """Short fingerprint of a raw Ed25519 public key (hex of its SHA-256)."""
    assert len(public_key_raw) == PUBLIC_KEY_BYTES
    return hashlib.sha256(public_key_raw).hexdigest()[:KEY_ID_HEX_CHARS]


def _public_raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


class ReceiptSigner:
    """Holds the private key; signs canonical receipt payloads."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._private_key = private_key
        raw = _public_raw(private_key.public_key())
        self.public_key_b64 = b64url_encode(raw)
        self.key_id = key_id_for(raw)

    @classmethod
    def generate(cls) -> ReceiptSigner:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_base64(cls, seed_b64: str) -> ReceiptSigner:
        """The production key: the 32-byte private seed, base64 or base64url."""
        try:
            seed = b64_decode_lenient(seed_b64)
        except ValueError as exc:
            raise SigningKeyError("receipt signing key is not valid base64") from exc
        if len(seed) != SEED_BYTES:
            raise SigningKeyError(
                f"receipt signing key must be a {SEED_BYTES}-byte Ed25519 seed, "
                f"got {len(seed)} bytes"
            )
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    def seed_b64(self) -> str:
        """The private seed in the form ``from_base64`` reads (for key export)."""
        raw = self._private_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return b64url_encode(raw)

    def sign(self, data: bytes) -> str:
        """Ed25519 signature of ``data``, unpadded base64url (86 characters)."""
        return b64url_encode(self._private_key.sign(data))

    def verifier(self) -> ReceiptVerifier:
        return ReceiptVerifier([self.public_key_b64])

    def __repr__(self) -> str:  # never show key material
        return f"ReceiptSigner(key_id={self.key_id!r})"


class ReceiptVerifier:
    """Public keys by key id; checks receipt signatures."""

    def __init__(self, public_keys_b64: Iterable[str]) -> None:
        keys: dict[str, Ed25519PublicKey] = {}
        for key_b64 in public_keys_b64:
            raw = b64_decode_lenient(key_b64)
            if len(raw) != PUBLIC_KEY_BYTES:
                raise ValueError(f"an Ed25519 public key has {PUBLIC_KEY_BYTES} bytes")
            keys[key_id_for(raw)] = Ed25519PublicKey.from_public_bytes(raw)
        if not keys:
            raise ValueError("a verifier needs at least one public key")
        self._keys: Mapping[str, Ed25519PublicKey] = keys

    @property
    def key_ids(self) -> frozenset[str]:
        return frozenset(self._keys)

    def verify(self, canonical: str, signature: str, key_id: str | None = None) -> bool:
        """True if ``signature`` is valid for ``canonical`` under a known key.

        With ``key_id``, only that key is tried (an unknown id is False).
        Never raises for a bad or malformed signature.
        """
        if key_id is not None:
            key = self._keys.get(key_id)
            candidates = [] if key is None else [key]
        else:
            candidates = list(self._keys.values())
        if not candidates or len(signature) > _SIGNATURE_B64_CHARS_MAX:
            return False
        try:
            sig = b64_decode_lenient(signature)
        except ValueError:
            return False
        # Only the exact spelling ``sign`` writes: base64's last character has
        # spare bits, so without this some changed characters would pass.
        if len(sig) != SIGNATURE_BYTES or b64url_encode(sig) != signature:
            return False
        data = canonical.encode("utf-8")
        for key in candidates:
            try:
                key.verify(sig, data)
            except InvalidSignature:
                continue
            return True
        return False


def verify_signature(
    public_key_b64_or_verifier: str | ReceiptVerifier, canonical: str, signature: str
) -> bool:
    """True if ``signature`` signs ``canonical``; False (never an exception)
    for a wrong, altered or malformed signature or a malformed public key."""
    if isinstance(public_key_b64_or_verifier, ReceiptVerifier):
        verifier = public_key_b64_or_verifier
    else:
        try:
            verifier = ReceiptVerifier([public_key_b64_or_verifier])
        except ValueError:
            return False
    return verifier.verify(canonical, signature)


def load_or_create_signing_key(path: Path) -> ReceiptSigner:
    """Development key: load the PEM at ``path``, or create it once.

    Creation is atomic and never overwrites: the key is written to a
    temporary file (mode 0600) and hard-linked into place, so two processes
    starting together end up with the same key. A key file readable by group
    or others is refused, as ssh does, rather than silently used.
    """
    if not path.exists():
        _create_key_file(path)
    return _load_key_file(path)


def load_signing_key(path: Path) -> ReceiptSigner:
    """Load the key file at ``path``; a missing file is an error, never a new key."""
    return _load_key_file(path)


def _create_key_file(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
            handle.flush()
            os.fsync(handle.fileno())
        # Someone else won the race: their key stands, ours is discarded.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_key_file(path: Path, bytes_max: int, what: str) -> bytes:
    """A key file's bytes, at most ``bytes_max`` read; ``SigningKeyError``
    naming ``what`` and the path if unreadable or larger."""
    try:
        with path.open("rb") as handle:
            data = handle.read(bytes_max + 1)
    except OSError as exc:
        raise SigningKeyError(f"cannot read {what} {path}: {exc}") from exc
    if len(data) > bytes_max:
        raise SigningKeyError(f"{what} {path} is too large")
    return data


def _load_key_file(path: Path) -> ReceiptSigner:
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SigningKeyError(
                f"receipt signing key {path} is accessible by group/others "
                f"(mode {stat.filemode(mode)}); run: chmod 600 {path}"
            )
    except OSError as exc:
        raise SigningKeyError(f"cannot read receipt signing key {path}: {exc}") from exc
    pem = read_key_file(path, _KEY_FILE_BYTES_MAX, "receipt signing key")
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise SigningKeyError(f"receipt signing key {path} is not a PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"receipt signing key {path} is not an Ed25519 key")
    return ReceiptSigner(key)
