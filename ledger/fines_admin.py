"""Fines by the batch, amended and cancelled.

* ``parse_fines_csv``: a CSV file (UTF-8, a header naming ``COLUMNS``)
  validated whole: every problem of every line is listed by line and
  column, and a file with any problem imports nothing (``FineImportError``).
* ``import_fines``: the checked rows in one transaction. Idempotent on the
  decision number: a fine already registered with the same data is counted
  as existing, not inserted again; with other data it is an error of its
  line (and so nothing is imported).
* ``amend_fine``: amount, due date, violator details; refused once the fine
  has a payment that is not declined (money may be moving for the old
  amount), or once cancelled.
* ``cancel_fine``: with a reason; refused when paid or a payment is in
  doubt (initiated or verifying). A cancelled fine cannot be paid
  (``ledger.payments.create`` checks it under the fine's row lock, which
  these take too).

Each write is audited in its transaction, naming the person.
"""

from __future__ import annotations

import csv
import hashlib
import io
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.business_time import DATE_MAX, DATE_MIN
from ledger.core import tables as t
from ledger.core.audit import append_audit
from ledger.core.checks import check_amount, check_object, check_reason
from ledger.core.errors import ConflictError, LedgerError, ValidationError
from ledger.fines import (
    TEXT_FIELD_MAX_CHARS,
    Fine,
    FineInput,
    check_text_field,
    get_fine,
    normalise_decision_number,
)
from ledger.payments.model import LIVE_STATUSES, PaymentStatus

COLUMNS: Final = (
    "decision_number",
    "amount_vnd",
    "violator_name",
    "plate",
    "issuing_unit",
    "violation",
)
IMPORT_BYTES_MAX: Final = 4 * 1_048_576
IMPORT_ROWS_MAX: Final = 20_000
# A file with thousands of bad lines lists the first ones; that is enough to
# fix the file, and bounds the answer.
IMPORT_ERRORS_MAX: Final = 500
AMEND_FIELDS: Final = ("amount_vnd", "due_date", "violator_name", "plate", "violation")
_TEXT_COLUMNS: Final = ("decision_number", "violator_name", "plate", "issuing_unit", "violation")


@dataclass(frozen=True)
class LineError:
    line: int  # 1 is the header; 0: the file as a whole
    column: str
    message: str


class FineImportError(LedgerError):
    """The file is refused; ``errors`` says every problem found."""

    code = "invalid_import"
    non_retryable = True

    def __init__(self, errors: Sequence[LineError]) -> None:
        super().__init__(f"the file has {len(errors)} error(s); nothing was imported")
        self.errors = tuple(errors)


@dataclass(frozen=True)
class ImportLine:
    line: int
    fine: FineInput


@dataclass(frozen=True)
class ImportOutcome:
    created: int
    existing: int
    sha256: str


def _text_errors(line: int, row: dict[str, str]) -> list[LineError]:
    errors = []
    for name in _TEXT_COLUMNS:
        value = unicodedata.normalize("NFC", row[name]).strip()
        if not value:
            errors.append(LineError(line, name, "is empty"))
        elif len(value) > TEXT_FIELD_MAX_CHARS:
            errors.append(LineError(line, name, f"is over {TEXT_FIELD_MAX_CHARS} characters"))
        elif not value.isprintable():
            errors.append(LineError(line, name, "holds a control character"))
    return errors


def _line_errors(line: int, row: dict[str, str], max_amount: int) -> list[LineError]:
    """Every problem of one data line, by column."""
    errors = _text_errors(line, row)
    if not any(e.column == "decision_number" for e in errors):
        try:
            normalise_decision_number(row["decision_number"])
        except ValidationError as err:
            errors.append(LineError(line, "decision_number", str(err).split(": ", 1)[-1]))
    raw = row["amount_vnd"].strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 15):
        errors.append(LineError(line, "amount_vnd", "must be whole đồng in digits"))
    else:
        try:
            check_amount("amount_vnd", int(raw), max_amount)
        except ValidationError as err:
            errors.append(LineError(line, "amount_vnd", str(err).split(": ", 1)[-1]))
    return errors


def _decode(data: bytes) -> str:
    if len(data) > IMPORT_BYTES_MAX:
        raise FineImportError([LineError(0, "file", f"is over {IMPORT_BYTES_MAX} bytes")])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise FineImportError([LineError(0, "file", f"is not UTF-8 (byte {err.start})")]) from None


def parse_fines_csv(
    data: bytes, max_amount_vnd: int, units: Sequence[str] = ()
) -> list[ImportLine]:
    """The file's fines, or ``FineImportError`` listing every problem.
    ``units``: the importer's issuing units (empty: any unit)."""
    reader = csv.reader(io.StringIO(_decode(data), newline=""), strict=True)
    errors: list[LineError] = []
    found: list[ImportLine] = []
    seen: dict[str, int] = {}
    line = 1
    try:
        header = [h.strip() for h in next(reader, [])]
        if tuple(header) != COLUMNS:
            raise FineImportError([LineError(1, "header", f"must be {','.join(COLUMNS)}")])
        while True:
            line = reader.line_num + 1  # where the row starts (a quoted cell may span lines)
            row = next(reader, None)
            if row is None:
                break
            if len(found) + len(errors) >= IMPORT_ROWS_MAX:
                errors.append(LineError(line, "file", f"has over {IMPORT_ROWS_MAX} rows"))
                break
            if not any(cell.strip() for cell in row):
                continue  # a blank line
            if len(row) != len(COLUMNS):
                errors.append(LineError(line, "row", f"has {len(row)} columns, not 6"))
                continue
            fields = dict(zip(COLUMNS, row, strict=True))
            problems = _line_errors(line, fields, max_amount_vnd)
            unit = fields["issuing_unit"].strip()
            if units and unit and unit not in units:
                problems.append(LineError(line, "issuing_unit", "is not one of your units"))
            if not problems:
                body: dict[str, Any] = {**fields, "amount_vnd": int(fields["amount_vnd"])}
                fine = FineInput.from_json(body, max_amount_vnd)
                first = seen.setdefault(fine.decision_key, line)
                if first != line:
                    problems.append(LineError(line, "decision_number", f"repeats line {first}"))
                else:
                    found.append(ImportLine(line, fine))
            errors.extend(problems)
    except csv.Error as err:
        errors.append(LineError(line, "file", f"is not valid CSV: {err}"))
    if errors:
        raise FineImportError(errors[:IMPORT_ERRORS_MAX])
    return found


async def import_fines(
    conn: AsyncConnection, data: bytes, lines: Sequence[ImportLine], actor: str, now: datetime
) -> ImportOutcome:
    """Register the checked ``lines`` (all or none: raise to roll back)."""
    by_key = {item.fine.decision_key: item for item in lines}
    rows = (
        await conn.execute(
            select(t.fines).where(t.fines.c.decision_key.in_(list(by_key))).with_for_update()
        )
    ).all()
    errors = []
    for row in rows:
        item = by_key.pop(row.decision_key)
        if not _same(row, item.fine):
            message = "is already registered with different data"
            errors.append(LineError(item.line, "decision_number", message))
    if errors:
        raise FineImportError(sorted(errors, key=lambda e: e.line)[:IMPORT_ERRORS_MAX])
    new = [_values(item.fine) for item in by_key.values()]
    if new:
        inserted = await conn.execute(
            insert(t.fines)
            .values(new)
            .on_conflict_do_nothing(index_elements=["decision_key"])
            .returning(t.fines.c.id)
        )
        if len(inserted.all()) != len(new):
            raise ConflictError("another import registered some of these fines meanwhile; retry")
    outcome = ImportOutcome(len(new), len(rows), hashlib.sha256(data).hexdigest())
    await append_audit(
        conn,
        actor=actor,
        action="fines.imported",
        subject_type="fine_import",
        subject_id=outcome.sha256,
        now=now,
        detail={"created": outcome.created, "existing": outcome.existing, "bytes": len(data)},
    )
    return outcome


def _same(row: Any, fine: FineInput) -> bool:
    return bool(
        row.amount_vnd == fine.amount_vnd
        and row.violator_name == fine.violator_name
        and row.plate == fine.plate
        and row.issuing_unit == fine.issuing_unit
        and row.violation == fine.violation
    )


def _values(fine: FineInput) -> dict[str, Any]:
    return {
        "decision_number": fine.decision_number,
        "decision_key": fine.decision_key,
        "amount_vnd": fine.amount_vnd,
        "violator_name": fine.violator_name,
        "plate": fine.plate,
        "issuing_unit": fine.issuing_unit,
        "violation": fine.violation,
    }


# --- amend and cancel -----------------------------------------------------------------


def amendment_from_json(body: object, max_amount_vnd: int) -> dict[str, Any]:
    """The fields to change (at least one) and a required ``reason``."""
    body = check_object(body, (*AMEND_FIELDS, "reason"))
    changes: dict[str, Any] = {}
    if "amount_vnd" in body:
        changes["amount_vnd"] = check_amount("amount_vnd", body["amount_vnd"], max_amount_vnd)
    if "due_date" in body:
        changes["due_date"] = _due_date(body["due_date"])
    for name in ("violator_name", "plate", "violation"):
        if name in body:
            changes[name] = check_text_field(name, body[name])
    if not changes:
        raise ValidationError("body", f"names nothing to change ({', '.join(AMEND_FIELDS)})")
    changes["reason"] = check_reason("reason", body.get("reason"), required=True)
    return changes


def _due_date(value: object) -> date:
    if not isinstance(value, str) or len(value) != 10:
        raise ValidationError("due_date", "must be a date YYYY-MM-DD")
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise ValidationError("due_date", "must be a date YYYY-MM-DD") from None
    if not DATE_MIN <= day <= DATE_MAX:
        raise ValidationError("due_date", f"must be between {DATE_MIN} and {DATE_MAX}")
    return day


async def _payment_statuses(conn: AsyncConnection, fine_id: int) -> list[tuple[str, bool]]:
    p = t.payments
    rows = await conn.execute(select(p.c.status, p.c.settles_fine).where(p.c.fine_id == fine_id))
    return [(r.status, r.settles_fine) for r in rows]


async def _locked(conn: AsyncConnection, decision_number: str) -> tuple[Fine, Any]:
    """The fine, its row locked (as a payment's start locks it)."""
    fine = await get_fine(conn, decision_number, for_update=True)
    extra = (
        await conn.execute(
            select(t.fines.c.cancelled_at, t.fines.c.due_date).where(t.fines.c.id == fine.id)
        )
    ).one()
    if extra.cancelled_at is not None:
        raise ConflictError(f"fine {fine.decision_number} is cancelled")
    return fine, extra


async def amend_fine(
    conn: AsyncConnection, decision_number: str, changes: dict[str, Any], actor: str, now: datetime
) -> Fine:
    """Change the fine; refused once a payment that is not declined exists."""
    fine, extra = await _locked(conn, decision_number)
    statuses = await _payment_statuses(conn, fine.id)
    if any(status != PaymentStatus.DECLINED.value for status, _ in statuses):
        raise ConflictError(
            f"fine {fine.decision_number} has a payment that is not declined: it cannot be amended"
        )
    fields = {k: v for k, v in changes.items() if k != "reason"}
    before = {k: getattr(fine, k, None) if k != "due_date" else extra.due_date for k in fields}
    await conn.execute(
        update(t.fines).where(t.fines.c.id == fine.id).values(**fields, amended_at=now)
    )
    await append_audit(
        conn,
        actor=actor,
        action="fine.amended",
        subject_type="fine",
        subject_id=fine.decision_number,
        now=now,
        detail={
            "reason": changes["reason"],
            "before": {k: _plain(v) for k, v in before.items()},
            "after": {k: _plain(v) for k, v in fields.items()},
        },
    )
    return await get_fine(conn, decision_number)


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, date) else value


async def cancel_fine(
    conn: AsyncConnection, decision_number: str, reason: str, actor: str, now: datetime
) -> Fine:
    """Cancel the fine; refused when paid or a payment is in doubt."""
    fine, _ = await _locked(conn, decision_number)
    statuses = await _payment_statuses(conn, fine.id)
    if any(settles for _, settles in statuses):
        raise ConflictError(f"fine {fine.decision_number} is paid: it cannot be cancelled")
    if any(status in LIVE_STATUSES for status, _ in statuses):
        raise ConflictError(
            f"fine {fine.decision_number} has a payment in doubt: it cannot be cancelled now"
        )
    await conn.execute(
        update(t.fines)
        .where(t.fines.c.id == fine.id)
        .values(cancelled_at=now, cancelled_by=actor, cancel_reason=reason)
    )
    await append_audit(
        conn,
        actor=actor,
        action="fine.cancelled",
        subject_type="fine",
        subject_id=fine.decision_number,
        now=now,
        detail={"reason": reason},
    )
    return fine


__all__ = [
    "COLUMNS",
    "IMPORT_BYTES_MAX",
    "FineImportError",
    "ImportLine",
    "ImportOutcome",
    "LineError",
    "amend_fine",
    "amendment_from_json",
    "cancel_fine",
    "import_fines",
    "parse_fines_csv",
]
