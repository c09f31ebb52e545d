"""The console's lists: payments, receipts and the audit log, newest first,
in keyset pages, narrowed to the caller's issuing units in SQL.

Unit scope is a condition of the query itself, never a filter of a page
after it was read: a page of a unit-scoped caller is as full as anyone's, and
a row of another unit is never read. ``units`` empty means every unit (see
``ledger.access.Principal``).

Payments have UUID ids, so their pages run on ``(created_at, id)``, which
index ``payments_newest`` (0013) serves; receipts and audit rows have
increasing integer ids, so their pages run on the id alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Final
from uuid import UUID

from sqlalchemy import ColumnElement, Select, select, tuple_
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.business_time import business_day_start
from ledger.core import tables as t
from ledger.core.audit import AuditEntry
from ledger.core.rows import columns, row_mapper

LISTING_LIMIT_MAX: Final = 200


@dataclass(frozen=True)
class PaymentRow:
    id: UUID
    decision_number: str
    issuing_unit: str
    bank: str
    amount_vnd: int
    status: str
    channel: str
    bank_ref: str | None
    created_at: datetime
    debited_at: datetime | None


@dataclass(frozen=True)
class ReceiptRow:
    id: int
    series: str
    number: int
    issuing_unit: str
    payment_id: UUID
    issued_at: datetime
    copies: int


@dataclass(frozen=True)
class PaymentFilters:
    status: str | None = None
    bank: str | None = None
    decision_key: str | None = None
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before


@dataclass(frozen=True)
class AuditFilters:
    actor: str | None = None
    action: str | None = None
    subject_type: str | None = None
    subject_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


_PAYMENT_COLUMNS: Final = columns(
    PaymentRow,
    t.payments,
    decision_number=t.fines.c.decision_number,
    issuing_unit=t.fines.c.issuing_unit,
)
_payment: Final = row_mapper(PaymentRow)
_RECEIPT_COLUMNS: Final = columns(
    ReceiptRow, t.receipts, issuing_unit=t.receipt_series.c.issuing_unit
)
_receipt: Final = row_mapper(ReceiptRow)
_AUDIT_COLUMNS: Final = columns(AuditEntry, t.audit_log)
_audit: Final = row_mapper(AuditEntry)


def _equal(query: Select[Any], pairs: Sequence[tuple[ColumnElement[Any], object]]) -> Select[Any]:
    for column, value in pairs:
        if value is not None:
            query = query.where(column == value)
    return query


def _in_units(query: Select[Any], column: ColumnElement[str], units: Sequence[str]) -> Select[Any]:
    return query.where(column.in_(list(units))) if units else query


def _between(
    query: Select[Any],
    column: ColumnElement[datetime],
    since: datetime | None,
    until: datetime | None,
) -> Select[Any]:
    if since is not None:
        query = query.where(column >= since)
    if until is not None:
        query = query.where(column < until)
    return query


async def list_payments(
    conn: AsyncConnection,
    filters: PaymentFilters,
    *,
    units: Sequence[str],
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[PaymentRow]:
    """Payments newest first, below ``before`` ((created_at, id) of the
    previous page's last row), ``limit`` of them."""
    assert 1 <= limit <= LISTING_LIMIT_MAX, limit
    p = t.payments
    query = select(*_PAYMENT_COLUMNS).select_from(p.join(t.fines, t.fines.c.id == p.c.fine_id))
    query = _equal(
        query,
        [
            (p.c.status, filters.status),
            (p.c.bank, filters.bank),
            (t.fines.c.decision_key, filters.decision_key),
        ],
    )
    query = _between(
        _in_units(query, t.fines.c.issuing_unit, units),
        p.c.created_at,
        filters.since,
        filters.until,
    )
    if before is not None:
        query = query.where(tuple_(p.c.created_at, p.c.id) < tuple_(*before))
    query = query.order_by(p.c.created_at.desc(), p.c.id.desc()).limit(limit)
    return [_payment(r) for r in (await conn.execute(query)).all()]


async def list_receipts(
    conn: AsyncConnection,
    *,
    series: str | None,
    issuing_unit: str | None,
    day: date | None,
    units: Sequence[str],
    before_id: int | None,
    limit: int,
) -> list[ReceiptRow]:
    """Receipts newest first (by id, the order they were issued in)."""
    assert 1 <= limit <= LISTING_LIMIT_MAX, limit
    r, s = t.receipts, t.receipt_series
    query = select(*_RECEIPT_COLUMNS).select_from(r.join(s, s.c.series == r.c.series))
    query = _equal(query, [(r.c.series, series), (s.c.issuing_unit, issuing_unit)])
    query = _in_units(query, s.c.issuing_unit, units)
    if day is not None:
        start = business_day_start(day)
        query = _between(query, r.c.issued_at, start, business_day_start(day + timedelta(days=1)))
    if before_id is not None:
        query = query.where(r.c.id < before_id)
    query = query.order_by(r.c.id.desc()).limit(limit)
    return [_receipt(row) for row in (await conn.execute(query)).all()]


async def list_audit(
    conn: AsyncConnection, filters: AuditFilters, *, before_id: int | None, limit: int
) -> list[AuditEntry]:
    """Audit rows newest first."""
    assert 1 <= limit <= LISTING_LIMIT_MAX, limit
    log = t.audit_log
    query = _equal(
        select(*_AUDIT_COLUMNS),
        [
            (log.c.actor, filters.actor),
            (log.c.action, filters.action),
            (log.c.subject_type, filters.subject_type),
            (log.c.subject_id, filters.subject_id),
        ],
    )
    query = _between(query, log.c.at, filters.since, filters.until)
    if before_id is not None:
        query = query.where(log.c.id < before_id)
    query = query.order_by(log.c.id.desc()).limit(limit)
    return [_audit(row) for row in (await conn.execute(query)).all()]


__all__ = [
    "LISTING_LIMIT_MAX",
    "AuditFilters",
    "PaymentFilters",
    "PaymentRow",
    "ReceiptRow",
    "list_audit",
    "list_payments",
    "list_receipts",
]
