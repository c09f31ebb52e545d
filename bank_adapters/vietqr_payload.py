"""VietQR payloads: EMVCo merchant-presented QR (TLV) as profiled by NAPAS,
for an inter-bank transfer to an account (service ``QRIBFTTA``).

Layout (id, length as two digits, value)::

    00 "01"                      payload format indicator
    01 "12"                      dynamic QR (amount is set)
    38 { 00 "A000000727"         NAPAS GUID
         01 { 00 bank BIN (6 digits)
              01 account number }
         02 "QRIBFTTA" }         transfer to account
    53 "704"                     currency VND
    54 amount                    whole đồng, digits only
    58 "VN"
    62 { 08 transfer content }   purpose of transaction
    63 CRC                       CRC-16/CCITT-FALSE of everything before it,
                                 including "6304", four upper-case hex digits

NAPAS lists 25 characters for the content; most bank apps accept longer
content and cut it themselves, so the limit is a parameter
(``content_length_max``). Our content puts the payment reference first, so
a cut never loses it.

Reading. ``read_vietqr_payload`` reads any VietQR transfer code a bank shows
its customers: static (``01`` = ``11``) or dynamic (``12``), with or without
an amount (the payer types it), to an account (``QRIBFTTA``) or to a card
number (``QRIBFTTC``), with the other EMVCo fields (merchant category,
name, city, tip) present or not, in any order. ``parse_vietqr_payload`` is
the strict reading of a payment request (what the VietQR bank simulator
takes from us): an amount and a transfer to an account are required. Both
refuse a bad CRC, another currency than 704 (VND), another payload format
than ``01``, non-ASCII text, and name the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from domain.money import AMOUNT_VND_MAX

NAPAS_GUID: Final = "A000000727"
SERVICE_TRANSFER_TO_ACCOUNT: Final = "QRIBFTTA"
SERVICE_TRANSFER_TO_CARD: Final = "QRIBFTTC"
_SERVICES: Final = frozenset({SERVICE_TRANSFER_TO_ACCOUNT, SERVICE_TRANSFER_TO_CARD})
_INITIATION_METHODS: Final = {"11": False, "12": True}  # static, dynamic
CURRENCY_VND: Final = "704"
COUNTRY_VN: Final = "VN"
CONTENT_LENGTH_MAX_DEFAULT: Final = 50
PAYLOAD_LENGTH_MAX: Final = 512
_TLV_VALUE_LENGTH_MAX: Final = 99
_BIN_RE: Final = re.compile(r"\d{6}", re.ASCII)
_ACCOUNT_RE: Final = re.compile(r"[A-Za-z0-9]{1,19}")
_CONTENT_RE: Final = re.compile(r"[ -~]*")  # printable ASCII


class VietQRPayloadError(ValueError):
    """A payload that is not a valid VietQR transfer; ``field`` is the TLV
    path (``"38.01.00"``) or ``"payload"``."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"VietQR payload field {field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True, slots=True)
class VietQRTransfer:
    bank_bin: str
    account_number: str
    amount_vnd: int
    content: str


@dataclass(frozen=True, slots=True)
class VietQRCode:
    """What a VietQR transfer code asks for, as read. ``account_number`` is
    the card number when ``service`` is ``QRIBFTTC``; ``amount_vnd`` is
    ``None`` when the payer types the amount; ``dynamic`` is the point of
    initiation (``12``) and ``None`` when the code does not say."""

    bank_bin: str
    account_number: str
    service: str
    amount_vnd: int | None
    content: str
    dynamic: bool | None


def _crc_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC_TABLE: Final = _crc_table()


def crc16_ccitt_false(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no xorout."""
    crc = 0xFFFF
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _CRC_TABLE[(crc >> 8) ^ byte]
    return crc


def _tlv(tag: str, value: str) -> str:
    assert len(tag) == 2, tag
    if len(value) > _TLV_VALUE_LENGTH_MAX:
        raise VietQRPayloadError(tag, f"value of {len(value)} characters exceeds 99")
    return f"{tag}{len(value):02d}{value}"


def build_vietqr_payload(
    transfer: VietQRTransfer, *, content_length_max: int = CONTENT_LENGTH_MAX_DEFAULT
) -> str:
    """The EMVCo string for ``transfer`` (raises ``VietQRPayloadError``)."""
    if not _BIN_RE.fullmatch(transfer.bank_bin):
        raise VietQRPayloadError("38.01.00", "bank BIN must be 6 digits")
    if not _ACCOUNT_RE.fullmatch(transfer.account_number):
        raise VietQRPayloadError("38.01.01", "account number must be 1-19 letters or digits")
    if not 0 < transfer.amount_vnd <= AMOUNT_VND_MAX:
        raise VietQRPayloadError("54", f"amount must be in 1..{AMOUNT_VND_MAX} đồng")
    if not _CONTENT_RE.fullmatch(transfer.content):
        raise VietQRPayloadError("62.08", "content must be printable ASCII")
    if len(transfer.content) > content_length_max:
        raise VietQRPayloadError("62.08", f"content longer than {content_length_max}")
    beneficiary = _tlv("00", transfer.bank_bin) + _tlv("01", transfer.account_number)
    merchant = (
        _tlv("00", NAPAS_GUID) + _tlv("01", beneficiary) + _tlv("02", SERVICE_TRANSFER_TO_ACCOUNT)
    )
    body = (
        _tlv("00", "01")
        + _tlv("01", "12")
        + _tlv("38", merchant)
        + _tlv("53", CURRENCY_VND)
        + _tlv("54", str(transfer.amount_vnd))
        + _tlv("58", COUNTRY_VN)
    )
    if transfer.content:
        body += _tlv("62", _tlv("08", transfer.content))
    body += "6304"
    return body + f"{crc16_ccitt_false(body.encode('ascii')):04X}"


def _parse_tlv(data: str, path: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        head = data[pos : pos + 4]
        where = f"{path}{head[:2] or '?'}"
        if len(head) < 4 or not head.isdigit():
            raise VietQRPayloadError(where, f"bad id/length {head!r} at offset {pos}")
        length = int(head[2:])
        value = data[pos + 4 : pos + 4 + length]
        if len(value) != length:
            raise VietQRPayloadError(where, f"value shorter than its length {length}")
        if head[:2] in fields:
            raise VietQRPayloadError(where, "field repeated")
        fields[head[:2]] = value
        pos += 4 + length
    return fields


def _require(fields: dict[str, str], tag: str, path: str) -> str:
    if tag not in fields:
        raise VietQRPayloadError(f"{path}{tag}", "missing")
    return fields[tag]


def read_vietqr_payload(payload: str) -> VietQRCode:
    """Check the CRC and structure of any VietQR transfer code and return
    what it asks for. Raises ``VietQRPayloadError`` naming the field."""
    if len(payload) > PAYLOAD_LENGTH_MAX:
        raise VietQRPayloadError("payload", f"longer than {PAYLOAD_LENGTH_MAX} characters")
    if not payload.isascii() or not payload.isprintable():
        raise VietQRPayloadError("payload", "not printable ASCII")
    if len(payload) < 8 or payload[-8:-4] != "6304":
        raise VietQRPayloadError("63", "CRC field missing at the end")
    expected = f"{crc16_ccitt_false(payload[:-4].encode('ascii')):04X}"
    if payload[-4:].upper() != expected:
        raise VietQRPayloadError("63", f"CRC {payload[-4:]!r} does not match {expected}")
    top = _parse_tlv(payload[:-8], "")
    if _require(top, "00", "") != "01":
        raise VietQRPayloadError("00", "payload format indicator must be 01")
    dynamic = None
    if "01" in top:
        if top["01"] not in _INITIATION_METHODS:
            raise VietQRPayloadError("01", "point of initiation must be 11 (static) or 12")
        dynamic = _INITIATION_METHODS[top["01"]]
    if _require(top, "53", "") != CURRENCY_VND:
        raise VietQRPayloadError("53", "currency must be 704 (VND)")
    merchant = _parse_tlv(_require(top, "38", ""), "38.")
    if _require(merchant, "00", "38.") != NAPAS_GUID:
        raise VietQRPayloadError("38.00", f"GUID must be {NAPAS_GUID}")
    service = _require(merchant, "02", "38.")
    if service not in _SERVICES:
        raise VietQRPayloadError(
            "38.02", f"service must be {SERVICE_TRANSFER_TO_ACCOUNT} or {SERVICE_TRANSFER_TO_CARD}"
        )
    beneficiary = _parse_tlv(_require(merchant, "01", "38."), "38.01.")
    bank_bin = _require(beneficiary, "00", "38.01.")
    account = _require(beneficiary, "01", "38.01.")
    if not _BIN_RE.fullmatch(bank_bin):
        raise VietQRPayloadError("38.01.00", "bank BIN must be 6 digits")
    if not _ACCOUNT_RE.fullmatch(account):
        raise VietQRPayloadError("38.01.01", "account number must be 1-19 letters or digits")
    amount_vnd = None
    if "54" in top:
        amount_text = top["54"]
        if not amount_text.isdigit() or not 0 < int(amount_text) <= AMOUNT_VND_MAX:
            raise VietQRPayloadError("54", f"amount {amount_text!r} is not a whole number of đồng")
        amount_vnd = int(amount_text)
    content = ""
    if "62" in top:
        content = _parse_tlv(top["62"], "62.").get("08", "")
    return VietQRCode(bank_bin, account, service, amount_vnd, content, dynamic)


def parse_vietqr_payload(payload: str) -> VietQRTransfer:
    """Read a VietQR payment request: as ``read_vietqr_payload``, and the
    amount and a transfer to an account are required. Raises
    ``VietQRPayloadError`` naming the field."""
    code = read_vietqr_payload(payload)
    if code.service != SERVICE_TRANSFER_TO_ACCOUNT:
        raise VietQRPayloadError("38.02", f"service must be {SERVICE_TRANSFER_TO_ACCOUNT}")
    if code.amount_vnd is None:
        raise VietQRPayloadError("54", "missing")
    return VietQRTransfer(code.bank_bin, code.account_number, code.amount_vnd, code.content)
