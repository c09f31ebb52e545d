"""Canonical payloads, Ed25519 signatures, signing keys and verify URLs."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ledger.receipts.issue import (
    Receipt,
    canonical_json,
    receipt_problems,
    verify_token_matches,
    verify_url,
)
from ledger.receipts.signing import (
    ReceiptSigner,
    ReceiptVerifier,
    SigningKeyError,
    load_or_create_signing_key,
    verify_signature,
)

PAYLOAD = {
    "series": "DCSGTS1CAQHK-2025",
    "number": 12,
    "issued_at": "2025-03-01T02:03:04+00:00",
    "decision_number": "123/QĐ-XPHC",
    "amount_vnd": 1_500_000,
    "amount_words": "Một triệu năm trăm nghìn đồng",
    "violator_name": "Nguyễn Văn Đức",
    "plate": "29A-123.45",
    "issuing_unit": "Đội CSGT số 1",
    "violation": "Vượt đèn đỏ",
    "bank": "vcb",
    "bank_ref": "FT25060123456",
    "payment_id": "0b7f0a8e-7c53-4d8e-9f43-111111111111",
}


@pytest.fixture(scope="module")
def signer() -> ReceiptSigner:
    return ReceiptSigner.generate()


def test_canonical_json_is_sorted_compact_utf8_and_order_independent() -> None:
    text = canonical_json(PAYLOAD)
    assert text == canonical_json(dict(reversed(list(PAYLOAD.items()))))
    assert text.startswith('{"amount_vnd":1500000,"amount_words":"Một triệu')
    assert ": " not in text
    assert ", " not in text
    assert "\n" not in text
    assert "\\u" not in text
    assert "QĐ" in text


def test_canonical_json_has_a_known_form() -> None:
    assert canonical_json({"b": 1, "a": "Đ", "c": None}) == '{"a":"Đ","b":1,"c":null}'


@pytest.mark.parametrize("value", [1.0, float("nan"), [1, 2.5], {"x": 0.1}])
def test_canonical_json_refuses_floats(value: object) -> None:
    with pytest.raises(TypeError, match="float"):
        canonical_json({"amount_vnd": value})


def test_sign_and_verify_round_trip(signer: ReceiptSigner) -> None:
    text = canonical_json(PAYLOAD)
    signature = signer.sign(text.encode("utf-8"))
    assert len(signature) == 86
    assert "=" not in signature
    assert "+" not in signature
    assert "/" not in signature
    assert verify_signature(signer.public_key_b64, text, signature)
    assert verify_signature(signer.verifier(), text, signature)


def test_a_changed_payload_fails(signer: ReceiptSigner) -> None:
    text = canonical_json(PAYLOAD)
    signature = signer.sign(text.encode("utf-8"))
    altered = canonical_json({**PAYLOAD, "amount_vnd": 150_000})
    assert not verify_signature(signer.public_key_b64, altered, signature)
    # One changed byte anywhere in the signed text.
    data = bytearray(text.encode("utf-8"))
    for i in range(0, len(data), 7):
        changed = bytearray(data)
        changed[i] ^= 0x01
        decoded = changed.decode("utf-8", errors="replace")
        assert not verify_signature(signer.public_key_b64, decoded, signature)


def test_every_changed_signature_character_fails(signer: ReceiptSigner) -> None:
    text = canonical_json(PAYLOAD)
    signature = signer.sign(text.encode("utf-8"))
    for i, ch in enumerate(signature):
        other = "A" if ch != "A" else "B"
        forged = signature[:i] + other + signature[i + 1 :]
        assert not verify_signature(signer.public_key_b64, text, forged), i


@pytest.mark.parametrize(
    "signature",
    ["", "not base64!", "A" * 86, "A" * 5000, "=" * 10, "\x00\u0110", "AAAA"],
)
def test_malformed_signatures_are_false_not_errors(signer: ReceiptSigner, signature: str) -> None:
    assert verify_signature(signer.public_key_b64, canonical_json(PAYLOAD), signature) is False


@pytest.mark.parametrize("public_key", ["", "garbage!", base64.b64encode(b"x" * 31).decode()])
def test_malformed_public_keys_are_false_not_errors(signer: ReceiptSigner, public_key: str) -> None:
    text = canonical_json(PAYLOAD)
    assert verify_signature(public_key, text, signer.sign(text.encode())) is False


def test_another_key_does_not_verify(signer: ReceiptSigner) -> None:
    text = canonical_json(PAYLOAD)
    signature = signer.sign(text.encode())
    assert not verify_signature(ReceiptSigner.generate().public_key_b64, text, signature)


def test_verifier_holds_old_keys_for_rotation(signer: ReceiptSigner) -> None:
    new = ReceiptSigner.generate()
    verifier = ReceiptVerifier([signer.public_key_b64, new.public_key_b64])
    text = canonical_json(PAYLOAD)
    old_sig = signer.sign(text.encode())
    assert verifier.key_ids == {signer.key_id, new.key_id}
    assert verifier.verify(text, old_sig, signer.key_id)
    assert verifier.verify(text, old_sig)
    assert not verifier.verify(text, old_sig, new.key_id)
    assert not verifier.verify(text, old_sig, "0000000000000000")


def test_from_base64_accepts_both_alphabets_and_padding(signer: ReceiptSigner) -> None:
    seed = base64.urlsafe_b64decode(signer.seed_b64() + "=")
    for text in (
        signer.seed_b64(),
        base64.b64encode(seed).decode(),
        base64.urlsafe_b64encode(seed).decode(),
    ):
        again = ReceiptSigner.from_base64(text)
        assert again.key_id == signer.key_id
        assert again.public_key_b64 == signer.public_key_b64


@pytest.mark.parametrize(
    "seed_b64", ["", "%%%", base64.b64encode(b"\x01" * 31).decode(), "A" * 100]
)
def test_from_base64_refuses_bad_seeds(seed_b64: str) -> None:
    with pytest.raises(SigningKeyError):
        ReceiptSigner.from_base64(seed_b64)


def test_key_id_is_a_short_fingerprint_of_the_public_key(signer: ReceiptSigner) -> None:
    raw = base64.urlsafe_b64decode(signer.public_key_b64 + "=")
    assert signer.key_id == hashlib.sha256(raw).hexdigest()[:16]
    assert signer.seed_b64() not in repr(signer)


def test_dev_key_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "receipt-signing-key.pem"
    first = load_or_create_signing_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    second = load_or_create_signing_key(path)
    assert second.key_id == first.key_id
    assert os.listdir(path.parent) == [path.name]  # no temporary files left


def test_dev_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    load_or_create_signing_key(path)
    path.chmod(0o644)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        load_or_create_signing_key(path)


def test_dev_key_of_another_kind_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    path.chmod(0o600)
    with pytest.raises(SigningKeyError, match="not an Ed25519 key"):
        load_or_create_signing_key(path)
    path.write_bytes(b"not a key")
    with pytest.raises(SigningKeyError, match="not a PEM"):
        load_or_create_signing_key(path)


def test_verify_url_carries_a_signature_token(signer: ReceiptSigner) -> None:
    signature = signer.sign(b"x")
    url = verify_url("https://bienlai.example.vn/", "DCSGTS1CAQHK-2025", 12, signature)
    assert url == f"https://bienlai.example.vn/verify/DCSGTS1CAQHK-2025/12?s={signature[:22]}"


def _receipt(signer: ReceiptSigner, **changes: object) -> Receipt:
    text = canonical_json(PAYLOAD)
    fields: dict[str, object] = {
        "series": PAYLOAD["series"],
        "number": PAYLOAD["number"],
        "issued_at": datetime(2025, 3, 1, 2, 3, 4, tzinfo=UTC),
        "payload": dict(PAYLOAD),
        "payload_canonical": text,
        "signature": signer.sign(text.encode()),
        "key_id": signer.key_id,
        "copies": 1,
        "payment_id": uuid.UUID(str(PAYLOAD["payment_id"])),
    }
    fields.update(changes)
    return Receipt(**fields)  # type: ignore[arg-type]


def test_verify_token_matches_only_its_receipt(signer: ReceiptSigner) -> None:
    receipt = _receipt(signer)
    assert verify_token_matches(receipt, receipt.signature[:22])
    assert not verify_token_matches(receipt, receipt.signature[1:23])
    assert not verify_token_matches(receipt, "")
    assert not verify_token_matches(receipt, "Đ" * 22)


def test_receipt_problems_of_a_genuine_receipt_is_empty(signer: ReceiptSigner) -> None:
    assert receipt_problems(_receipt(signer), signer.verifier()) == ()


def test_receipt_problems_name_each_tampering(signer: ReceiptSigner) -> None:
    verifier = signer.verifier()
    moved = _receipt(signer, number=13)
    assert receipt_problems(moved, verifier) == ("signed payload does not match the row: number",)
    edited = _receipt(signer, payload={**PAYLOAD, "amount_vnd": 1})
    assert receipt_problems(edited, verifier) == ("payload differs from payload_canonical",)
    forged_text = canonical_json({**PAYLOAD, "amount_vnd": 1})
    forged = _receipt(signer, payload={**PAYLOAD, "amount_vnd": 1}, payload_canonical=forged_text)
    assert receipt_problems(forged, verifier) == ("signature does not verify",)
    other_key = ReceiptSigner.generate().verifier()
    assert receipt_problems(_receipt(signer), other_key) == (
        f"unknown signing key {signer.key_id}",
    )


def test_processes_creating_the_dev_key_together_get_one_key(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "key.pem"
    with ThreadPoolExecutor(max_workers=8) as pool:
        signers = list(pool.map(lambda _: load_or_create_signing_key(path), range(16)))
    assert len({s.key_id for s in signers}) == 1
    assert os.listdir(tmp_path) == ["key.pem"]
