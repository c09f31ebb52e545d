"""What the ledger knows about a complaint: the fine's payments with their
history, the payment booking the disputed bank debit (if any), and the
statement lines that match it. Reads only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.keys import external_debit_key
from ledger import payments as pay
from ledger.core import tables as t
from ledger.core.rows import row_mapper
from ledger.disputes.record import Dispute
from ledger.fines import Fine, fine_status, get_fine

EVIDENCE_PAYMENTS_MAX: Final = 20
EVIDENCE_LINES_MAX: Final = 50
EVIDENCE_WINDOW: Final = timedelta(days=3)


@dataclass(frozen=True)
class StatementLineEvidence:
    """A ``statement_lines`` row as evidence, with how it matched."""

    id: int
    bank: str
    bank_ref: str
    booked_at: datetime
    amount_vnd: int
    direction: str
    counterparty: str
    content: str
    line_class: str | None
    payment_id: UUID | None
    matched_by: str  # "bank_ref" | "fine" | "decision_and_amount"
    # From a file a person uploaded (a claim), not the bank's own statement.
    uploaded: bool


@dataclass(frozen=True)
class LedgerEvidence:
    fine: Fine
    fine_status: str
    payments: tuple[pay.PaymentView, ...]
    debit_payment: pay.Payment | None  # the payment booking the disputed bank_ref
    statement_lines: tuple[StatementLineEvidence, ...]


_LINES_SQL: Final = text(
    """
    SELECT sl.id, sl.bank, sl.bank_ref, sl.booked_at, sl.amount_vnd, sl.direction,
           sl.counterparty, sl.content, sl.class AS line_class, sl.payment_id,
           CASE WHEN sl.bank = :bank AND sl.bank_ref = :bank_ref THEN 'bank_ref'
                WHEN sl.fine_id = :fine_id THEN 'fine'
                ELSE 'decision_and_amount' END AS matched_by,
           sl.uploaded
      FROM statement_lines sl
     WHERE (sl.bank = :bank AND sl.bank_ref = :bank_ref)
        OR sl.fine_id = :fine_id
        OR (sl.bank = :bank AND sl.amount_vnd = :amount AND sl.direction = 'credit'
            AND sl.booked_at BETWEEN :since AND :until
            AND position((SELECT decision_alnum FROM fines WHERE id = :fine_id)
                         IN sl.content_key) > 0)
     ORDER BY sl.booked_at, sl.id
     LIMIT :limit
    """
)
_line: Final = row_mapper(StatementLineEvidence)


async def payment_for_debit(conn: AsyncConnection, bank: str, bank_ref: str) -> pay.Payment | None:
    """The payment that books this bank debit, if the ledger has one: by the
    bank's reference, or as an external debit recorded but not yet settled."""
    payment_id = (
        await conn.execute(
            select(t.payments.c.id).where(
                t.payments.c.bank == bank,
                (t.payments.c.bank_ref == bank_ref)
                | (t.payments.c.debit_key == external_debit_key(bank, bank_ref)),
            )
        )
    ).scalar_one_or_none()
    return await pay.get_payment(conn, payment_id) if payment_id is not None else None


async def ledger_evidence(conn: AsyncConnection, dispute: Dispute) -> LedgerEvidence:
    """What the ledger knows about the complaint: the fine's payments with
    their history, the payment booking the disputed debit (if any), and the
    statement lines that match it by bank reference, fine, or decision
    number and amount around the time of the complaint."""
    fine = await get_fine(conn, dispute.decision_key)
    payment_ids = (
        (
            await conn.execute(
                select(t.payments.c.id)
                .where(t.payments.c.fine_id == fine.id)
                .order_by(t.payments.c.created_at.desc())
                .limit(EVIDENCE_PAYMENTS_MAX)
            )
        )
        .scalars()
        .all()
    )
    views = [await pay.payment_view(conn, pid) for pid in reversed(payment_ids)]
    debit = (
        await payment_for_debit(conn, dispute.bank, dispute.bank_ref) if dispute.bank_ref else None
    )
    rows = (
        await conn.execute(
            _LINES_SQL,
            {
                "bank": dispute.bank,
                "bank_ref": dispute.bank_ref or "",
                "fine_id": fine.id,
                "amount": dispute.amount_vnd,
                "since": dispute.occurred_at - EVIDENCE_WINDOW,
                "until": dispute.occurred_at + EVIDENCE_WINDOW,
                "limit": EVIDENCE_LINES_MAX,
            },
        )
    ).all()
    lines = tuple(_line(r) for r in rows)
    return LedgerEvidence(fine, await fine_status(conn, fine.id), tuple(views), debit, lines)
