"""What the bank itself said about a payment's debit, as the ledger holds it:
the verified webhooks (``bank_events``, once per event, append-only) and
the lines of the statements fetched from the bank.

A success or a decline that reaches a payment's workflow by signal is
settled on only if the ledger holds the bank's word for it (``bank_said``);
anything else is asked of the bank first (``workflows.payment``). So a
signal sent by anyone who can reach Temporal, or a verified webhook that
names another amount than the payment's, books nothing by itself.

Every function runs in the caller's transaction (the caller commits).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t
from ledger.payments.model import Payment

# The outcomes a bank event can carry (``workflows.payment.types.OutcomeKind``
# of its status: a callback is never "link down" nor "not found").
EVENT_OUTCOMES: Final = ("succeeded", "declined", "pending", "outcome_unknown")


@dataclass(frozen=True)
class BankEvent:
    """A verified bank callback, as the bank sent it."""

    bank: str
    event_id: str
    kind: str  # "debit" | "refund"
    idempotency_key: str
    bank_ref: str | None
    status: str  # the bank's own status code
    outcome: str  # one of EVENT_OUTCOMES
    amount_vnd: int
    occurred_at: datetime


async def record_bank_event(conn: AsyncConnection, event: BankEvent, now: datetime) -> bool:
    """Keep a verified callback (once per bank and event id: the bank's retry
    of the same event changes nothing). Returns whether it is new."""
    assert event.outcome in EVENT_OUTCOMES, event.outcome
    inserted = (
        await conn.execute(
            insert(t.bank_events)
            .values(
                bank=event.bank,
                event_id=event.event_id,
                kind=event.kind,
                idempotency_key=event.idempotency_key,
                bank_ref=event.bank_ref,
                status=event.status,
                outcome=event.outcome,
                amount_vnd=event.amount_vnd,
                occurred_at=event.occurred_at,
                received_at=now,
            )
            .on_conflict_do_nothing(index_elements=["bank", "event_id"])
            .returning(t.bank_events.c.id)
        )
    ).scalar_one_or_none()
    return inserted is not None


# The bank's word for "this debit of ours had this outcome": a verified
# callback under the payment's key (for a success: the same bank reference
# and the payment's amount), or, for a success, a line of a statement the
# bank gave us (never an uploaded one) with that reference and amount.
_BANK_SAID: Final = text(
    """
    SELECT EXISTS (
        SELECT 1 FROM bank_events e
         WHERE e.bank = :bank AND e.idempotency_key = :key AND e.kind = 'debit'
           AND e.outcome = :outcome
           AND (:outcome <> 'succeeded' OR (e.bank_ref = :ref AND e.amount_vnd = :amount)))
        OR (:outcome = 'succeeded' AND EXISTS (
        SELECT 1 FROM statement_lines l
         WHERE l.bank = :bank AND l.bank_ref = :ref AND NOT l.uploaded
           AND l.direction = 'credit' AND l.amount_vnd = :amount))
    """
)


async def bank_said(
    conn: AsyncConnection, payment: Payment, outcome: str, bank_ref: str | None
) -> bool:
    """Whether the ledger holds the bank's own word that ``payment``'s debit
    had ``outcome`` (a success: under ``bank_ref``, for the payment's amount)."""
    params = {
        "bank": payment.bank,
        "key": payment.debit_key,
        "outcome": outcome,
        "ref": bank_ref or "",
        "amount": payment.amount_vnd,
    }
    return bool((await conn.execute(_BANK_SAID, params)).scalar_one())
