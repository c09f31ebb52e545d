"""Receipt keys over time: the keyring, rotation, the kid signed into each
receipt, and which process holds what (the API public keys only)."""

from __future__ import annotations

import json
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.receipts.issue import Receipt, canonical_json, receipt_problems
from ledger.receipts.keyring import (
    PRIVATE_DIR,
    PUBLIC_KEYS_FILE,
    ensure_keyring,
    keyring_verifier,
    load_keyring_signer,
    read_public_keys,
    rotate_keyring,
    rotated,
)
from ledger.receipts.signing import (
    LEGACY_DEV_KEY_FILENAME,
    ReceiptSigner,
    SigningKeyError,
    load_or_create_signing_key,
)
from reconciler.settings import Settings
from reconciler.wiring import load_signer, load_verifier

PAYMENT_ID = "0b7f0a8e-7c53-4d8e-9f43-111111111111"
ISSUED_AT = datetime(2025, 3, 1, 2, 3, 4, tzinfo=UTC)


def _receipt(signer: ReceiptSigner, *, kid: str | None = "own", key_id: str = "") -> Receipt:
    payload: dict[str, object] = {
        "series": "DCSGTS1CAQHK-2025",
        "number": 12,
        "issued_at": ISSUED_AT.isoformat(),
        "amount_vnd": 1_500_000,
        "payment_id": PAYMENT_ID,
    }
    if kid is not None:
        payload["kid"] = signer.key_id if kid == "own" else kid
    text = canonical_json(payload)
    return Receipt(
        series="DCSGTS1CAQHK-2025",
        number=12,
        issued_at=ISSUED_AT,
        payload=payload,
        payload_canonical=text,
        signature=signer.sign(text.encode()),
        key_id=key_id or signer.key_id,
        copies=1,
        payment_id=uuid.UUID(PAYMENT_ID),
    )


def _privates(directory: Path) -> list[str]:
    return sorted(os.listdir(directory / PRIVATE_DIR))


def test_a_keyring_starts_with_one_current_key(tmp_path: Path) -> None:
    ensure_keyring(tmp_path)
    ensure_keyring(tmp_path)  # idempotent
    [entry] = read_public_keys(tmp_path)
    assert entry.status == "current"
    assert _privates(tmp_path) == [f"{entry.kid}.pem"]
    assert load_keyring_signer(tmp_path).key_id == entry.kid
    assert (tmp_path / PRIVATE_DIR / f"{entry.kid}.pem").stat().st_mode & 0o077 == 0


def test_processes_creating_a_keyring_together_get_one_key(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda _: ensure_keyring(tmp_path / "keys"), range(16)))
    assert len(read_public_keys(tmp_path / "keys")) == 1
    assert len(_privates(tmp_path / "keys")) == 1


def test_rotation_keeps_every_public_key_and_only_the_new_private_one(tmp_path: Path) -> None:
    ensure_keyring(tmp_path)
    first = load_keyring_signer(tmp_path)
    old, new = rotate_keyring(tmp_path)
    assert old == first.key_id
    second = load_keyring_signer(tmp_path)
    assert second.key_id == new != old
    assert [(e.kid, e.status) for e in read_public_keys(tmp_path)] == [
        (new, "current"),
        (old, "retired"),
    ]
    assert _privates(tmp_path) == [f"{new}.pem"]  # the retired key cannot sign any more
    verifier = keyring_verifier(tmp_path)
    assert receipt_problems(_receipt(first), verifier) == ()
    assert receipt_problems(_receipt(second), verifier) == ()


def test_a_keyring_whose_public_key_does_not_match_its_kid_is_refused(tmp_path: Path) -> None:
    ensure_keyring(tmp_path)
    path = tmp_path / PUBLIC_KEYS_FILE
    data = json.loads(path.read_text())
    data["keys"][0]["public_key"] = ReceiptSigner.generate().public_key_b64
    path.write_text(json.dumps(data))
    with pytest.raises(SigningKeyError, match="does not match its public key"):
        keyring_verifier(tmp_path)


def test_a_dev_key_of_the_time_before_keyrings_is_adopted(tmp_path: Path) -> None:
    legacy = load_or_create_signing_key(tmp_path / LEGACY_DEV_KEY_FILENAME)
    ensure_keyring(tmp_path / "keys", adopt=tmp_path / LEGACY_DEV_KEY_FILENAME)
    assert load_keyring_signer(tmp_path / "keys").key_id == legacy.key_id


def test_rotation_for_keys_kept_in_the_environment() -> None:
    current = ReceiptSigner.generate()
    retired = ReceiptSigner.generate()
    new, public_keys = rotated(current, [current.public_key_b64, retired.public_key_b64])
    assert public_keys == [new.public_key_b64, current.public_key_b64, retired.public_key_b64]
    first, only = rotated(None, [])
    assert only == [first.public_key_b64]


def test_the_kid_is_signed_and_must_name_the_rows_key() -> None:
    signer = ReceiptSigner.generate()
    verifier = signer.verifier()
    assert receipt_problems(_receipt(signer), verifier) == ()
    lying = _receipt(signer, kid="0123456789abcdef")
    assert receipt_problems(lying, verifier) == ("signed payload does not match the row: kid",)


def test_a_receipt_issued_before_kids_is_checked_under_its_rows_key() -> None:
    signer = ReceiptSigner.generate()
    assert receipt_problems(_receipt(signer, kid=None), signer.verifier()) == ()
    stranger = ReceiptSigner.generate()
    assert receipt_problems(_receipt(signer, kid=None), stranger.verifier()) == (
        f"unknown signing key {signer.key_id}",
    )


def test_a_receipt_signed_by_an_unknown_key_is_forged() -> None:
    known, unknown = ReceiptSigner.generate(), ReceiptSigner.generate()
    assert receipt_problems(_receipt(unknown), known.verifier()) == (
        f"unknown signing key {unknown.key_id}",
    )
    # Claiming the known key's id does not help: the signature fails.
    claimed = _receipt(unknown, kid=known.key_id, key_id=known.key_id)
    assert receipt_problems(claimed, known.verifier()) == ("signature does not verify",)


# --- which process holds what ------------------------------------------------------


def test_production_never_makes_a_signing_key_up(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(SigningKeyError, match="RECONCILER_RECEIPT_SIGNING_KEY_B64"):
        load_signer(settings)
    with pytest.raises(SigningKeyError, match="RECONCILER_RECEIPT_PUBLIC_KEYS"):
        load_verifier(settings)
    assert os.listdir(tmp_path) == []


def test_production_keys_from_the_environment() -> None:
    current, retired = ReceiptSigner.generate(), ReceiptSigner.generate()
    public_keys = [current.public_key_b64, retired.public_key_b64]
    worker = Settings(receipt_signing_key_b64=current.seed_b64(), receipt_public_keys=public_keys)
    assert load_signer(worker).key_id == current.key_id
    api = Settings(receipt_public_keys=public_keys)
    assert load_verifier(api).key_ids == {current.key_id, retired.key_id}


def test_a_worker_key_the_api_does_not_know_is_refused() -> None:
    stray = ReceiptSigner.generate()
    settings = Settings(
        receipt_signing_key_b64=stray.seed_b64(),
        receipt_public_keys=[ReceiptSigner.generate().public_key_b64],
    )
    with pytest.raises(SigningKeyError, match="would look forged"):
        load_signer(settings)


def test_the_api_reads_public_keys_only(tmp_path: Path) -> None:
    """The API's host needs no private key: with the private half gone, the
    verifier still loads (and a signer does not)."""
    settings = Settings(env="dev", data_dir=tmp_path)
    signer = load_signer(settings)
    for name in _privates(tmp_path / "receipt-keys"):
        (tmp_path / "receipt-keys" / PRIVATE_DIR / name).unlink()
    assert load_verifier(settings).key_ids == {signer.key_id}
    with pytest.raises(SigningKeyError):
        load_signer(settings)
