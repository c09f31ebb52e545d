"""Reading payments: one payment with its history and receipt, the payments
whose outcome is not known yet (in doubt), and the next payment of a fine
waiting to be driven. Reads only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t
from ledger.core.rows import columns, row_mapper
from ledger.payments.model import LIVE_STATUSES, Payment
from ledger.payments.records import get_payment
from ledger.receipts.issue import ReceiptRef


@dataclass(frozen=True)
class PaymentEvent:
    """A ``payment_events`` row: one step of a payment's history."""

    at: datetime
    from_status: str | None
    to_status: str
    cause: str
    detail: dict[str, Any]


@dataclass(frozen=True)
class PaymentView:
    payment: Payment
    history: tuple[PaymentEvent, ...]
    receipt: ReceiptRef | None


@dataclass(frozen=True)
class InDoubt:
    payment_id: UUID
    bank: str
    decision_key: str
    status: str
    created_at: datetime


_event: Final = row_mapper(PaymentEvent)
_receipt_ref: Final = row_mapper(ReceiptRef)
_in_doubt: Final = row_mapper(InDoubt)
_IN_DOUBT_COLUMNS: Final = columns(
    InDoubt, t.payments, payment_id=t.payments.c.id, decision_key=t.fines.c.decision_key
)
# The literal statuses are LIVE_STATUSES, spelled as the partial index
# ``payments_in_doubt`` is, so that the planner can use it.
IN_DOUBT_SUMMARY_SQL: Final = text(
    "SELECT bank, count(*) AS n, min(created_at) AS oldest FROM payments "
    "WHERE status IN ('initiated', 'verifying') GROUP BY bank"
)
NEXT_LIVE_SQL: Final = text(
    "SELECT p2.id FROM payments p1 JOIN payments p2 ON p2.fine_id = p1.fine_id "
    "WHERE p1.id = :id AND p2.id <> p1.id AND p2.status IN ('initiated', 'verifying') "
    "AND p2.channel IN ('portal', 'counter') ORDER BY p2.created_at LIMIT 1"
)


async def payment_view(conn: AsyncConnection, payment_id: UUID) -> PaymentView:
    payment = await get_payment(conn, payment_id)
    events = (
        await conn.execute(
            select(*columns(PaymentEvent, t.payment_events))
            .where(t.payment_events.c.payment_id == payment_id)
            .order_by(t.payment_events.c.id)
        )
    ).all()
    receipt_row = (
        await conn.execute(
            select(*columns(ReceiptRef, t.receipts)).where(t.receipts.c.payment_id == payment_id)
        )
    ).one_or_none()
    return PaymentView(
        payment=payment,
        history=tuple(_event(e) for e in events),
        receipt=_receipt_ref(receipt_row) if receipt_row else None,
    )


async def payments_in_doubt(
    conn: AsyncConnection, bank: str | None = None, limit: int = 10_000
) -> list[InDoubt]:
    """Payments whose outcome is not known yet (initiated or verifying)."""
    query = (
        select(*_IN_DOUBT_COLUMNS)
        .join(t.fines, t.fines.c.id == t.payments.c.fine_id)
        .where(t.payments.c.status.in_(LIVE_STATUSES))
        .order_by(t.payments.c.created_at)
        .limit(limit)
    )
    if bank is not None:
        query = query.where(t.payments.c.bank == bank)
    return [_in_doubt(r) for r in (await conn.execute(query)).all()]


async def in_doubt_summary(conn: AsyncConnection) -> dict[str, tuple[int, datetime | None]]:
    """Per bank: how many payments are in doubt, and since when the oldest."""
    rows = (await conn.execute(IN_DOUBT_SUMMARY_SQL)).all()
    return {r.bank: (int(r.n), r.oldest) for r in rows}


async def next_live_payment(conn: AsyncConnection, payment_id: UUID) -> UUID | None:
    """Another payment of the same fine waiting to be driven, if any: a live
    status (``LIVE_STATUSES``) in a driven channel (``DRIVEN_CHANNELS``)."""
    return (await conn.execute(NEXT_LIVE_SQL, {"id": payment_id})).scalar_one_or_none()
