"""Debits the bank made outside a live payment of ours (a late webhook, a
second debit, a statement line): recorded once per bank reference as a
payment of their own, to be settled next like any other.

Runs in the caller's transaction (the caller commits).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.keys import external_debit_key
from ledger.core import tables as t
from ledger.core.audit import SYSTEM_SAGA
from ledger.core.errors import InvalidTransitionError
from ledger.payments.model import Payment, PaymentChannel, PaymentStatus
from ledger.payments.records import (
    audit_money,
    find_payment_by_debit_key,
    get_payment,
    insert_payment,
    record_event,
)

if TYPE_CHECKING:
    # Annotations only: ``ledger.fines`` reads ``LIVE_STATUSES`` from this
    # package, so importing it from here at run time would be a cycle.
    from ledger.fines import Fine


class AmountMismatchError(InvalidTransitionError):
    """The bank debited another amount than the fine's: a human decides."""

    code = "amount_mismatch"


async def record_external_debit(
    conn: AsyncConnection,
    fine: Fine,
    bank: str,
    bank_ref: str,
    amount_vnd: int,
    payer_account: str,
    now: datetime,
    cause: str,
    channel: str = PaymentChannel.RECONCILIATION,
    *,
    actor: str = SYSTEM_SAGA,
) -> tuple[Payment, bool]:
    """Record a debit the bank made outside a live payment of ours (once per
    bank reference). Settle it next with ``settle_payment``."""
    existing = (
        await conn.execute(
            select(t.payments.c.id).where(
                t.payments.c.bank == bank, t.payments.c.bank_ref == bank_ref
            )
        )
    ).scalar_one_or_none()
    if existing is not None:
        return await get_payment(conn, existing), False
    if amount_vnd != fine.amount_vnd:
        raise AmountMismatchError(
            f"bank {bank} debit {bank_ref} of {amount_vnd} đồng does not match fine "
            f"{fine.decision_number} of {fine.amount_vnd} đồng"
        )
    payment_id = uuid.uuid4()
    debit_key = external_debit_key(bank, bank_ref)
    args = (payment_id, fine.id, bank, payer_account, amount_vnd, debit_key, channel, now)
    if not await insert_payment(conn, *args):  # a concurrent recorder won
        again = await find_payment_by_debit_key(conn, debit_key)
        assert again is not None
        return again, False
    await record_event(
        conn,
        payment_id,
        None,
        PaymentStatus.INITIATED,
        cause,
        now,
        {"bank": bank, "bank_ref": bank_ref, "amount_vnd": amount_vnd},
    )
    payment = await get_payment(conn, payment_id)
    await audit_money(
        conn,
        "payment.external_debit_recorded",
        actor,
        payment,
        now,
        {"bank_ref": bank_ref, "channel": channel, "cause": cause[:500]},
    )
    return payment, True
