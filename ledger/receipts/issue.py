"""Receipts (biên lai thu tiền phạt): issuance, gapless numbering, copies, checks.

One receipt per settling payment, numbered without gaps in a series per
issuing unit and business year (the year of ``issued_at`` in Vietnam time).
The number comes from the series' counter row, incremented in the caller's
transaction together with the receipt insert: a rollback gives the number
back, and concurrent issuers queue on the counter row.

Every function here runs inside the caller's transaction and never commits
(unit of work). Lock order is payment row, then series counter row, so
concurrent issuers cannot deadlock each other.

The signed payload is stored twice: as ``payload`` (jsonb, for queries) and
as ``payload_canonical`` (the exact signed text). ``verify_receipts`` checks
that both agree and that the signature holds.

One module, over 600 lines: issuance, numbering and verification share the
payload, its canonical text and the series rules, which must not drift
apart (what is signed is what is verified).

The payload names its signing key (``kid``), so a verifier holding the current
and retired public keys picks the right one. Receipts issued before the kid
was signed in carry none: they are checked under the row's ``key_id``, which
every receipt has stored since the first schema (it is the same fingerprint,
and a signature cannot be made to verify under another key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.business_time import business_date
from domain.formats import RECEIPT_SERIES_RE
from domain.text import strip_diacritics
from ledger.core.errors import ConflictError, LedgerError, NotFoundError
from ledger.core.rows import columns, row_mapper
from ledger.core.tables import fines, payments, receipt_series, receipts
from ledger.receipts.amount_words import amount_in_words_vi
from ledger.receipts.signing import ReceiptSigner, ReceiptVerifier

UNIT_CODE_CHARS_MAX = 30
VERIFY_TOKEN_CHARS = 22
VERIFY_PAGE_SIZE = 500
VERIFY_BAD_LIST_MAX = 1000
_UNIT_HASH_CHARS = 6
_WORD_RE = re.compile(r"[A-Za-z0-9]+")


class ReceiptError(LedgerError):
    """Base of the receipt operating errors."""

    code = "receipt_error"


class ReceiptNotAllowed(ReceiptError, ConflictError):
    """The payment may not have a receipt (unknown, not succeeded, or not settling)."""

    code = "receipt_not_allowed"
    non_retryable = True

    def __init__(self, payment_id: UUID, reason: str) -> None:
        super().__init__(f"no receipt for payment {payment_id}: {reason}")
        self.payment_id = payment_id
        self.reason = reason


class ReceiptNotFound(ReceiptError, NotFoundError):
    code = "receipt_not_found"

    def __init__(self, series: str, number: int) -> None:
        super().__init__(f"receipt {series} No. {number} does not exist")
        self.series = series
        self.number = number


@dataclass(frozen=True)
class ReceiptRef:
    """How a receipt is named on paper and checked: its series, number and
    signature (the fine lookup, a payment's view)."""

    series: str
    number: int
    signature: str = ""


@dataclass(frozen=True)
class Receipt:
    """A ``receipts`` row (but its id)."""

    series: str
    number: int
    issued_at: datetime
    payload: dict[str, Any]
    payload_canonical: str
    signature: str
    key_id: str
    copies: int
    payment_id: UUID
    last_copy_at: datetime | None = None


@dataclass(frozen=True)
class BadReceipt:
    series: str
    number: int
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class SeriesProblem:
    series: str
    last_number: int
    receipts_count: int
    number_max: int

    @property
    def reason(self) -> str:
        return (
            f"counter at {self.last_number} but {self.receipts_count} receipts "
            f"numbered up to {self.number_max}: numbers are not exactly 1..{self.last_number}"
        )


@dataclass(frozen=True)
class VerificationReport:
    checked: int
    ok: int
    bad_total: int
    bad: tuple[BadReceipt, ...]  # the first VERIFY_BAD_LIST_MAX of bad_total
    series_checked: int
    series_problems: tuple[SeriesProblem, ...]

    @property
    def all_ok(self) -> bool:
        return self.bad_total == 0 and not self.series_problems


_RECEIPT_COLUMNS: Final = columns(Receipt, receipts)
_receipt: Final = row_mapper(Receipt)
_series_problem: Final = row_mapper(SeriesProblem)


# --- pure rules -------------------------------------------------------------


def unit_code(issuing_unit: str) -> str:
    """Readable code of an issuing unit: initials, keeping acronyms and numbers.

    "Đội CSGT số 1 - Công an quận Hoàn Kiếm" → "DCSGTS1CAQHK". A word in
    capitals ("CSGT", "TP", "PC08") is kept whole unless the whole name is
    in capitals; numbers are kept whole. At most 30 characters.
    """
    ascii_name = strip_diacritics(unicodedata.normalize("NFC", issuing_unit))
    shouting = not any(ch.islower() for ch in ascii_name)
    parts = []
    for word in _WORD_RE.findall(ascii_name):
        if word.isdigit() or (not shouting and len(word) > 1 and word.isupper()):
            parts.append(word.upper())
        else:
            parts.append(word[0].upper())
    code = "".join(parts)[:UNIT_CODE_CHARS_MAX]
    return code or "DV" + _unit_hash(issuing_unit)


def series_code(issuing_unit: str, year: int, *, disambiguate: bool = False) -> str:
    """Series of a unit's receipts in a business year: ``"DCSGTS1CAQHK-2025"``.

    Initials can collide (two units, one code); ``issue_receipt`` then uses
    ``disambiguate=True``, which replaces the code's tail by a hash of the
    unit's name, for the unit that came second.
    """
    if not 2000 <= year <= 2200:
        raise ValueError(f"receipt year out of range: {year}")
    code = unit_code(issuing_unit)
    if disambiguate:
        code = f"{code[: UNIT_CODE_CHARS_MAX - _UNIT_HASH_CHARS - 1]}-{_unit_hash(issuing_unit)}"
    series = f"{code}-{year}"
    assert RECEIPT_SERIES_RE.fullmatch(series), series
    return series


def _unit_key(issuing_unit: str) -> str:
    """What makes two spellings of a unit's name the same unit."""
    return " ".join(unicodedata.normalize("NFC", issuing_unit).split()).casefold()


def _unit_hash(issuing_unit: str) -> str:
    digest = hashlib.sha256(_unit_key(issuing_unit).encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii")[:_UNIT_HASH_CHARS]


def business_year(at: datetime) -> int:
    """The receipt year: the calendar year of ``at`` in Vietnam time."""
    _require_aware(at)
    return business_date(at).year


def canonical_json(payload: Mapping[str, Any]) -> str:
    """The signed text: sorted keys, no whitespace, UTF-8 (not \\u escapes)."""
    _reject_floats(payload)
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def _reject_floats(value: object) -> None:
    if isinstance(value, float):
        raise TypeError("receipt payloads carry no floats (money is integer đồng)")
    if isinstance(value, Mapping):
        for item in value.values():
            _reject_floats(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _reject_floats(item)


def verify_token(signature: str) -> str:
    """The part of the signature printed in the QR code's URL."""
    return signature[:VERIFY_TOKEN_CHARS]


def verify_url(base_url: str, series: str, number: int, signature: str) -> str:
    """Public URL of the receipt's check page, for its QR code.

    The token (start of the signature, 132 bits) ties the paper to the
    stored receipt: a forged paper with a real series and number but another
    signature does not match.
    """
    assert RECEIPT_SERIES_RE.fullmatch(series), series
    assert number > 0
    return f"{base_url.rstrip('/')}/verify/{series}/{number}?s={verify_token(signature)}"


def verify_token_matches(receipt: Receipt, token: str) -> bool:
    """For the /verify page: does the URL's token belong to this receipt?"""
    expected = verify_token(receipt.signature).encode("ascii")
    return hmac.compare_digest(expected, token.encode("utf-8", "replace"))


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("times must be timezone-aware")


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


# --- database ---------------------------------------------------------------


async def issue_receipt(
    conn: AsyncConnection, payment_id: UUID, signer: ReceiptSigner, now: datetime
) -> Receipt:
    """The payment's receipt: issued now, or the one issued before (idempotent,
    see ``issue_receipt_once``)."""
    receipt, _ = await issue_receipt_once(conn, payment_id, signer, now)
    return receipt


async def issue_receipt_once(
    conn: AsyncConnection, payment_id: UUID, signer: ReceiptSigner, now: datetime
) -> tuple[Receipt, bool]:
    """The payment's receipt, and whether this call issued it (False: it was
    issued before, and is returned as it is).

    Runs in the caller's transaction; the caller commits, and should do so
    promptly: the series counter row stays locked until then, and the next
    issuer in the series waits for it. Expects READ COMMITTED (the default);
    under stricter isolation a concurrent issuer gets a serialization
    failure, to be retried like any other. Raises ``ReceiptNotAllowed``
    unless the payment succeeded and settles its fine.
    """
    _require_aware(now)
    row = (await conn.execute(_LOCATE, {"payment_id": payment_id})).one_or_none()
    if row is None:
        raise ReceiptNotAllowed(payment_id, "unknown payment")
    existing = await get_receipt_for_payment(conn, payment_id)
    if existing is not None:
        return existing, False
    if row.status != "succeeded":
        raise ReceiptNotAllowed(payment_id, f"payment is {row.status}, not succeeded")
    if not row.settles_fine:
        raise ReceiptNotAllowed(payment_id, "payment does not settle the fine")
    return await issue_new_receipt(conn, _receipt_facts(row), signer, now), True


@dataclass(frozen=True)
class ReceiptFacts:
    """What a receipt says about its payment and fine."""

    payment_id: UUID
    decision_number: str
    amount_vnd: int
    bank: str
    bank_ref: str | None
    violator_name: str
    plate: str
    issuing_unit: str
    violation: str


# Statements built once: building a Core statement per call costs the
# worker more CPU than PostgreSQL spends running it.
_LOCATE = (
    select(
        payments.c.status,
        payments.c.settles_fine,
        *columns(
            ReceiptFacts,
            payments,
            payment_id=payments.c.id,
            decision_number=fines.c.decision_number,
            violator_name=fines.c.violator_name,
            plate=fines.c.plate,
            issuing_unit=fines.c.issuing_unit,
            violation=fines.c.violation,
        ),
    )
    .select_from(payments.join(fines, fines.c.id == payments.c.fine_id))
    .where(payments.c.id == bindparam("payment_id"))
    .with_for_update(of=payments)
)
_receipt_facts: Final = row_mapper(ReceiptFacts)
# The common case in one statement: the series exists and is this unit's,
# spelled exactly as stored (any other spelling takes ``_claim_series``).
_INSERT_RECEIPT = receipts.insert()
_RECEIPT_FOR_PAYMENT = select(*_RECEIPT_COLUMNS).where(
    receipts.c.payment_id == bindparam("payment_id")
)


async def issue_new_receipt(
    conn: AsyncConnection, facts: ReceiptFacts, signer: ReceiptSigner, now: datetime
) -> Receipt:
    """Number, sign and store the receipt of a payment that has none yet.

    The caller holds the payment row locked (``FOR UPDATE``/``FOR NO KEY
    UPDATE``), has checked that the payment succeeded and settles its fine
    and that it has no receipt (``issue_receipt_once`` does all of that).
    """
    (receipt,) = await issue_new_receipts(conn, [facts], signer, now)
    return receipt


# Receipts one ``issue_new_receipts`` issues at most.
ISSUE_MANY_MAX = 1_000
_NEXT_NUMBERS_OWNED = text(
    "UPDATE receipt_series SET last_number = last_number + :count "
    "WHERE series = :series AND issuing_unit = :issuing_unit RETURNING last_number"
)
_NEXT_NUMBERS = text(
    "UPDATE receipt_series SET last_number = last_number + :count "
    "WHERE series = :series RETURNING last_number"
)


async def issue_new_receipts(
    conn: AsyncConnection, facts: Sequence[ReceiptFacts], signer: ReceiptSigner, now: datetime
) -> list[Receipt]:
    """``issue_new_receipt`` for many payments (of any units), in order: one
    counter update per series for the numbers of all its receipts (in the
    order of ``facts``), one INSERT for the receipts. The series counters
    are locked in the order of their names, so two batches never wait on
    each other in a cycle (one receipt locks one counter). The caller holds
    the payments locked and has checked them, as for ``issue_new_receipt``."""
    if not 1 <= len(facts) <= ISSUE_MANY_MAX:
        raise ValueError(f"issue 1..{ISSUE_MANY_MAX} receipts at once, not {len(facts)}")
    if len({f.payment_id for f in facts}) != len(facts):
        raise ValueError("two receipts of one batch are for the same payment")
    _require_aware(now)
    issued_at = now.astimezone(UTC).replace(microsecond=0)
    year = business_year(issued_at)
    by_unit: dict[str, list[int]] = {}
    for i, fact in enumerate(facts):
        by_unit.setdefault(fact.issuing_unit, []).append(i)
    numbered: dict[int, tuple[str, int]] = {}
    for unit in sorted(by_unit, key=lambda u: (series_code(u, year), u)):
        positions = by_unit[unit]
        count = len(positions)
        series = series_code(unit, year)
        params = {"series": series, "issuing_unit": unit, "count": count}
        last: int | None = (await conn.execute(_NEXT_NUMBERS_OWNED, params)).scalar_one_or_none()
        if last is None:
            series = await _claim_series(conn, unit, year)
            params = {"series": series, "count": count}
            last = int((await conn.execute(_NEXT_NUMBERS, params)).scalar_one())
        first = int(last) - count + 1
        assert first >= 1
        for offset, position in enumerate(positions):
            numbered[position] = (series, first + offset)
    issued: list[Receipt] = []
    for i, fact in enumerate(facts):
        series, number = numbered[i]
        payload = _payload(fact, series, number, issued_at, signer.key_id)
        canonical = canonical_json(payload)
        issued.append(
            Receipt(
                series=series,
                number=number,
                issued_at=issued_at,
                payload=payload,
                payload_canonical=canonical,
                signature=signer.sign(canonical.encode("utf-8")),
                key_id=signer.key_id,
                copies=1,
                payment_id=fact.payment_id,
            )
        )
    rows = [_receipt_row(receipt) for receipt in issued]
    await conn.execute(_INSERT_RECEIPT, rows[0] if len(rows) == 1 else rows)
    return issued


def _receipt_row(receipt: Receipt) -> dict[str, Any]:
    return {
        "payment_id": receipt.payment_id,
        "series": receipt.series,
        "number": receipt.number,
        "issued_at": receipt.issued_at,
        "payload": receipt.payload,
        "payload_canonical": receipt.payload_canonical,
        "signature": receipt.signature,
        "key_id": receipt.key_id,
        "copies": receipt.copies,
    }


def _payload(
    facts: ReceiptFacts, series: str, number: int, issued_at: datetime, kid: str
) -> dict[str, Any]:
    """What the receipt says, and what is signed (with the key that signs it)."""
    return {
        "kid": kid,
        "series": series,
        "number": number,
        "issued_at": issued_at.isoformat(),
        "decision_number": _nfc(facts.decision_number),
        "amount_vnd": facts.amount_vnd,
        "amount_words": amount_in_words_vi(facts.amount_vnd),
        "violator_name": _nfc(facts.violator_name),
        "plate": _nfc(facts.plate),
        "issuing_unit": _nfc(facts.issuing_unit),
        "violation": _nfc(facts.violation),
        "bank": facts.bank,
        "bank_ref": facts.bank_ref,
        "payment_id": str(facts.payment_id),
    }


async def _claim_series(conn: AsyncConnection, issuing_unit: str, year: int) -> str:
    """The unit's series for the year, creating its counter row if missing."""
    for disambiguate in (False, True):
        series = series_code(issuing_unit, year, disambiguate=disambiguate)
        owner_query = select(receipt_series.c.issuing_unit).where(receipt_series.c.series == series)
        # Read first: the row exists for all but the year's first receipt.
        owner: str | None = (await conn.execute(owner_query)).scalar_one_or_none()
        if owner is None:
            await conn.execute(
                pg_insert(receipt_series)
                .values(series=series, issuing_unit=issuing_unit, year=year, last_number=0)
                .on_conflict_do_nothing(index_elements=[receipt_series.c.series])
            )
            owner = (await conn.execute(owner_query)).scalar_one()
        if _unit_key(owner) == _unit_key(issuing_unit):
            return series
    raise ReceiptError(f"no free receipt series for unit {issuing_unit!r} in {year}")


async def record_copy(conn: AsyncConnection, series: str, number: int, now: datetime) -> Receipt:
    """A reprint: the same receipt (same number and signature), one more copy."""
    _require_aware(now)
    add_copy = (
        update(receipts)
        .where(receipts.c.series == series, receipts.c.number == number)
        .values(copies=receipts.c.copies + 1, last_copy_at=now.astimezone(UTC))
        .returning(*_RECEIPT_COLUMNS)
    )
    row = (await conn.execute(add_copy)).one_or_none()
    if row is None:
        raise ReceiptNotFound(series, number)
    return _receipt(row)


async def get_receipt(conn: AsyncConnection, series: str, number: int) -> Receipt | None:
    query = select(*_RECEIPT_COLUMNS).where(
        receipts.c.series == series, receipts.c.number == number
    )
    row = (await conn.execute(query)).one_or_none()
    return None if row is None else _receipt(row)


async def get_receipt_for_payment(conn: AsyncConnection, payment_id: UUID) -> Receipt | None:
    params = {"payment_id": payment_id}
    row = (await conn.execute(_RECEIPT_FOR_PAYMENT, params)).one_or_none()
    return None if row is None else _receipt(row)


# --- verification -----------------------------------------------------------


def receipt_problems(receipt: Receipt, verifier: ReceiptVerifier) -> tuple[str, ...]:
    """Why a stored receipt is not genuine; empty if it is."""
    problems = []
    try:
        canonical_of_payload = canonical_json(receipt.payload)
    except (TypeError, ValueError) as exc:
        canonical_of_payload = f"<unserialisable: {exc}>"
    if canonical_of_payload != receipt.payload_canonical:
        problems.append("payload differs from payload_canonical")
    try:
        signed = json.loads(receipt.payload_canonical)
    except ValueError:
        signed = None
    if not isinstance(signed, dict):
        problems.append("payload_canonical is not a JSON object")
    else:
        expected = {
            "series": receipt.series,
            "number": receipt.number,
            "payment_id": str(receipt.payment_id),
            "issued_at": receipt.issued_at.astimezone(UTC).isoformat(),
        }
        if "kid" in signed:
            expected["kid"] = receipt.key_id
        differing = sorted(k for k, v in expected.items() if signed.get(k) != v)
        if differing:
            problems.append(f"signed payload does not match the row: {', '.join(differing)}")
    if receipt.key_id not in verifier.key_ids:
        problems.append(f"unknown signing key {receipt.key_id}")
    elif not verifier.verify(receipt.payload_canonical, receipt.signature, receipt.key_id):
        problems.append("signature does not verify")
    return tuple(problems)


async def verify_receipts(
    conn: AsyncConnection, verifier: ReceiptVerifier, *, page_size: int = VERIFY_PAGE_SIZE
) -> VerificationReport:
    """Checks every stored receipt and every series counter.

    A receipt is bad if its jsonb payload and signed text disagree, if the
    signed text names another series/number/payment/time than its row, or if
    its signature does not verify under its key. A series is bad if its
    numbers are not exactly 1..last_number (a gap or a lost counter update).
    """
    assert 1 <= page_size <= 10_000
    checked = ok = bad_total = 0
    bad: list[BadReceipt] = []
    after_id = 0
    while True:
        page = (
            select(receipts.c.id, *_RECEIPT_COLUMNS)
            .where(receipts.c.id > after_id)
            .order_by(receipts.c.id)
            .limit(page_size)
        )
        rows = (await conn.execute(page)).all()
        if not rows:
            break
        after_id = rows[-1].id
        for row in rows:
            receipt = _receipt(row)
            problems = receipt_problems(receipt, verifier)
            checked += 1
            if not problems:
                ok += 1
                continue
            bad_total += 1
            if len(bad) < VERIFY_BAD_LIST_MAX:
                bad.append(BadReceipt(receipt.series, receipt.number, problems))
    series_checked, series_problems = await _check_series(conn)
    return VerificationReport(
        checked=checked,
        ok=ok,
        bad_total=bad_total,
        bad=tuple(bad),
        series_checked=series_checked,
        series_problems=series_problems,
    )


async def _check_series(conn: AsyncConnection) -> tuple[int, tuple[SeriesProblem, ...]]:
    # With (series, number) unique and numbers > 0, count = max = last_number
    # holds exactly when the numbers are 1..last_number.
    counted = (
        select(
            receipt_series.c.series,
            receipt_series.c.last_number,
            func.count(receipts.c.id).label("receipts_count"),
            func.coalesce(func.max(receipts.c.number), 0).label("number_max"),
        )
        .select_from(
            receipt_series.outerjoin(receipts, receipts.c.series == receipt_series.c.series)
        )
        .group_by(receipt_series.c.series, receipt_series.c.last_number)
        .order_by(receipt_series.c.series)
    )
    rows = (await conn.execute(counted)).all()
    problems = tuple(
        _series_problem(r) for r in rows if not r.receipts_count == r.number_max == r.last_number
    )
    return len(rows), problems
