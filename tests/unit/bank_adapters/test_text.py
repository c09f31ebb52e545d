"""Content normalisation and payment references: matching must survive what
banks do to transfer content."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bank_adapters.text import (
    alnum_key,
    bank_transfer_content,
    decision_number_key,
    find_payment_references,
    is_payment_reference,
    mentions_decision,
    payment_reference,
    qr_transfer_content,
    strip_diacritics,
)
from domain.content import REFERENCE_LENGTH
from tests.unit.bank_adapters.strategies import FUZZ

keys = st.from_regex(r"[A-Za-z0-9._:\-]{1,100}", fullmatch=True)


def test_vietnamese_diacritics_and_d_with_stroke() -> None:
    assert strip_diacritics("Nguyễn Văn Đức nộp phạt") == "Nguyen Van Duc nop phat"
    assert strip_diacritics("ĐƯỜNG Ỷ") == "DUONG Y"


def test_bank_mangling_as_seen_at_vietnamese_banks() -> None:
    assert bank_transfer_content("Nộp phạt 1234/QĐ-XPVPHC, biển 30A-123.45") == (
        "Nop phat 1234QDXPVPHC bien 30A12345"
    )
    assert bank_transfer_content("x" * 80, 50) == "x" * 50
    assert decision_number_key("1234/QĐ-XPVPHC") == "1234QDXPVPHC"


def test_decision_survives_mangling_and_truncation() -> None:
    decision = "1234/QĐ-XPVPHC"
    assert mentions_decision(bank_transfer_content(f"TF nop phat {decision}"), decision)
    assert mentions_decision("TFABC NOP PHAT 1234QDXP", decision)  # cut short by the bank
    assert not mentions_decision("TFABC NOP PHAT 1234Q", decision)  # too little left
    assert not mentions_decision("NOP PHAT 9999QDXPVPHC", decision)
    assert not mentions_decision("anything", "///")


def test_reference_shape() -> None:
    reference = payment_reference("pay-1")
    assert len(reference) == REFERENCE_LENGTH
    assert reference.startswith("TF")
    assert reference == payment_reference("pay-1")
    assert reference != payment_reference("pay-2")
    assert is_payment_reference(reference)


@FUZZ
@given(
    key=keys, noise=st.text(max_size=40), decision=st.text(max_size=60), length=st.integers(20, 60)
)
def test_reference_first_survives_any_bank(
    key: str, noise: str, decision: str, length: int
) -> None:
    reference = payment_reference(key)
    content = qr_transfer_content(reference, decision) + " " + noise
    assert reference in find_payment_references(bank_transfer_content(content, length))
    # Banks that delete spaces as well.
    assert reference in find_payment_references(alnum_key(content)[:length])


@FUZZ
@given(
    key=keys, position=st.integers(0, REFERENCE_LENGTH - 1), char=st.sampled_from("ABCXYZ234567")
)
def test_a_mistyped_reference_is_not_taken_for_one(key: str, position: int, char: str) -> None:
    reference = payment_reference(key)
    typo = reference[:position] + char + reference[position + 1 :]
    if typo != reference:
        assert reference not in find_payment_references(typo)


@FUZZ
@given(text=st.text(max_size=200), length=st.integers(1, 100))
def test_bank_content_is_plain_bounded_and_stable(text: str, length: int) -> None:
    kept = bank_transfer_content(text, length)
    assert len(kept) <= length
    assert all(c.isascii() and (c.isalnum() or c == " ") for c in kept)
    assert bank_transfer_content(kept, length) == kept
    assert kept == kept.strip()


@FUZZ
@given(before=st.text(max_size=100), key=keys, after=st.text(max_size=100))
def test_references_found_are_valid(before: str, key: str, after: str) -> None:
    """Around a real reference, so there is always something found to check
    (arbitrary text alone almost never holds one)."""
    ours = payment_reference(key)
    found = find_payment_references(before + ours + after)
    assert ours in found
    for reference in found:
        assert is_payment_reference(reference)
