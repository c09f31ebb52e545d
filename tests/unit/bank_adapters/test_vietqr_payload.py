"""VietQR (EMVCo) payloads: CRC, structure, round trip, refusal of bad ones."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bank_adapters.vietqr_payload import (
    SERVICE_TRANSFER_TO_ACCOUNT,
    SERVICE_TRANSFER_TO_CARD,
    VietQRCode,
    VietQRPayloadError,
    VietQRTransfer,
    build_vietqr_payload,
    crc16_ccitt_false,
    parse_vietqr_payload,
    read_vietqr_payload,
)
from tests.unit.bank_adapters.strategies import FUZZ

TRANSFER = VietQRTransfer("970415", "113366668888", 79_000, "TFABCDEFGHIJK 1234/QD-XPVPHC")


def test_crc16_ccitt_false_check_value() -> None:
    # The catalogue check value of CRC-16/CCITT-FALSE.
    assert crc16_ccitt_false(b"123456789") == 0x29B1


def test_known_layout() -> None:
    payload = build_vietqr_payload(TRANSFER)
    assert payload.startswith("000201010212")
    assert "0010A000000727" in payload
    assert "0006970415" in payload
    assert "0112113366668888" in payload
    assert "0208QRIBFTTA" in payload
    assert "5303704" in payload
    assert "540579000" in payload
    assert "5802VN" in payload
    assert payload[-8:-4] == "6304"
    assert payload[-4:] == f"{crc16_ccitt_false(payload[:-4].encode()):04X}"


def test_round_trip() -> None:
    assert parse_vietqr_payload(build_vietqr_payload(TRANSFER)) == TRANSFER


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p[:-1] + ("0" if p[-1] != "0" else "1"), "63"),
        (lambda p: p.replace("540579000", "540579001"), "63"),
        (lambda p: p[:-8], "63"),
        (lambda p: p + "x", "63"),
    ],
)
def test_damaged_payloads_are_refused(mutate: object, field: str) -> None:
    payload = build_vietqr_payload(TRANSFER)
    with pytest.raises(VietQRPayloadError) as caught:
        parse_vietqr_payload(mutate(payload))  # type: ignore[operator]
    assert caught.value.field == field


def test_build_refuses_bad_fields() -> None:
    with pytest.raises(VietQRPayloadError, match=r"38\.01\.00"):
        build_vietqr_payload(VietQRTransfer("97041", "1", 1, ""))
    with pytest.raises(VietQRPayloadError, match=r"62\.08"):
        build_vietqr_payload(VietQRTransfer("970415", "1", 1, "Nộp phạt"))
    with pytest.raises(VietQRPayloadError, match=r"62\.08"):
        build_vietqr_payload(VietQRTransfer("970415", "1", 1, "x" * 51))
    with pytest.raises(VietQRPayloadError, match="54"):
        build_vietqr_payload(VietQRTransfer("970415", "1", 0, ""))


transfers = st.builds(
    VietQRTransfer,
    bank_bin=st.from_regex(r"[0-9]{6}", fullmatch=True),
    account_number=st.from_regex(r"[A-Za-z0-9]{1,19}", fullmatch=True),
    amount_vnd=st.integers(1, 10**15),
    content=st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=50),
)


@FUZZ
@given(transfer=transfers)
def test_round_trip_property(transfer: VietQRTransfer) -> None:
    assert parse_vietqr_payload(build_vietqr_payload(transfer)) == transfer


@FUZZ
@given(text=st.text(max_size=300))
def test_arbitrary_text_only_raises_the_payload_error(text: str) -> None:
    with contextlib.suppress(VietQRPayloadError):
        parse_vietqr_payload(text)


@FUZZ
@given(
    transfer=transfers,
    position=st.integers(0, 400),
    char=st.characters(min_codepoint=32, max_codepoint=126),
)
# The CRC's last digit in lower case, with lower case in the content too
# (found by Hypothesis: the old test took only an all-upper-case payload's
# case change as harmless).
@example(
    transfer=VietQRTransfer("030402", "C1PE54A101OTUVW0P", 365_990_736, "Tb"),
    position=120,
    char="a",
)
def test_any_single_change_is_detected_or_harmless(
    transfer: VietQRTransfer, position: int, char: str
) -> None:
    payload = build_vietqr_payload(transfer)
    position %= len(payload)
    changed = payload[:position] + char + payload[position + 1 :]
    if changed == payload:
        return
    if position >= len(payload) - 4 and char.upper() == payload[position]:
        # The CRC's hex digits are read in either case: the same transfer.
        assert parse_vietqr_payload(changed) == transfer
        return
    with pytest.raises(VietQRPayloadError):
        parse_vietqr_payload(changed)


def _with_crc(body: str) -> str:
    body += "6304"
    return body + f"{crc16_ccitt_false(body.encode()):04X}"


STATIC_CARD = _with_crc(
    "00020101021138600010A00000072701300006970403011697040311012345670208QRIBFTTC53037045802VN"
)


def test_reading_accepts_a_static_code_without_amount_and_a_card_transfer() -> None:
    # NAPAS's own example of a static card-transfer code ends in this CRC.
    assert STATIC_CARD.endswith("63044F52")
    assert read_vietqr_payload(STATIC_CARD) == VietQRCode(
        "970403", "9704031101234567", SERVICE_TRANSFER_TO_CARD, None, "", False
    )
    ours = read_vietqr_payload(build_vietqr_payload(TRANSFER))
    assert (ours.service, ours.amount_vnd, ours.dynamic) == (
        SERVICE_TRANSFER_TO_ACCOUNT,
        79_000,
        True,
    )


def test_a_payment_request_still_needs_an_amount_and_an_account() -> None:
    with pytest.raises(VietQRPayloadError) as caught:
        parse_vietqr_payload(STATIC_CARD)
    assert caught.value.field == "38.02"
    no_amount = _with_crc(
        "00020101021138570010A00000072701270006970422011300234579234420208QRIBFTTA53037045802VN"
    )
    assert read_vietqr_payload(no_amount).amount_vnd is None
    with pytest.raises(VietQRPayloadError) as caught:
        parse_vietqr_payload(no_amount)
    assert (caught.value.field, caught.value.reason) == ("54", "missing")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("000201010213" + STATIC_CARD[12:-8], "01"),
        (STATIC_CARD[:-8].replace("QRIBFTTC", "QRIBFTTX"), "38.02"),
        (STATIC_CARD[:-8].replace("5303704", "5303840"), "53"),
        (STATIC_CARD[:-8].replace("000201", "000200", 1), "00"),
    ],
)
def test_reading_refuses_what_is_wrong_naming_the_field(body: str, field: str) -> None:
    with pytest.raises(VietQRPayloadError) as caught:
        read_vietqr_payload(_with_crc(body))
    assert caught.value.field == field


@FUZZ
@given(text=st.text(max_size=300))
def test_reading_arbitrary_text_only_raises_the_payload_error(text: str) -> None:
    with contextlib.suppress(VietQRPayloadError):
        read_vietqr_payload(text)
