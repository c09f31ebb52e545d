"""Starting a payment: one payment decision per fine at a time, and the API's
idempotency (a client's Idempotency-Key bound to the payment its request
started or joined).

Runs in the caller's transaction (the caller commits); doing it again is a
no-op that returns the same payment.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t
from ledger.core.errors import ConflictError, FineAlreadyPaidError, IdempotencyConflictError
from ledger.payments.model import (
    DRIVEN_CHANNELS,
    LIVE_STATUSES,
    ClientKey,
    Payment,
    PaymentChannel,
    PaymentStatus,
    debit_key_for,
)
from ledger.payments.records import get_payment, insert_payment, record_event

if TYPE_CHECKING:
    # Annotations only: ``ledger.fines`` reads ``LIVE_STATUSES`` from this
    # package, so importing it from here at run time would be a cycle.
    from ledger.fines import Fine


async def _bound_payment(conn: AsyncConnection, client: ClientKey) -> UUID | None:
    """The payment the client's key is bound to, if any; refuses a key that
    was used for another request."""
    keys = t.api_idempotency_keys
    row = (
        await conn.execute(
            select(keys.c.request_hash, keys.c.payment_id).where(
                keys.c.client_id == client.client_id, keys.c.client_key == client.key
            )
        )
    ).one_or_none()
    if row is None:
        return None
    if row.request_hash != client.request_hash:
        raise IdempotencyConflictError(
            f"Idempotency-Key {client.key!r} was already used with a different request"
        )
    bound: UUID = row.payment_id
    return bound


async def _claim_client_key(conn: AsyncConnection, client: ClientKey, payment_id: UUID) -> UUID:
    """Bind the client's key to ``payment_id``; if it is already bound, return
    what it is bound to (same request) or refuse (other request)."""
    await conn.execute(
        insert(t.api_idempotency_keys)
        .values(
            client_id=client.client_id,
            client_key=client.key,
            request_hash=client.request_hash,
            payment_id=payment_id,
        )
        .on_conflict_do_nothing()
    )
    bound = await _bound_payment(conn, client)
    assert bound is not None, "the key was inserted or already there"
    return bound


async def create_payment(
    conn: AsyncConnection,
    fine: Fine,
    bank: str,
    payer_account: str,
    now: datetime,
    *,
    channel: str = PaymentChannel.PORTAL,
    client: ClientKey | None = None,
    workflow_id: str | None = None,
) -> tuple[Payment, bool]:
    """Start a payment of ``fine``, or return the one this request already
    started, or join the payment already in flight for the fine.

    Returns the payment and whether it was created now. Raises
    ``FineAlreadyPaidError`` when the fine is paid and
    ``IdempotencyConflictError`` when the client's key was used for another
    request.
    """
    if client is not None:
        existing = await _bound_payment(conn, client)
        if existing is not None:
            return await get_payment(conn, existing), False
    # One payment decision per fine at a time.
    # A cancelled fine (``ledger.fines_admin``, under this same lock) is not paid.
    cancelled = (
        await conn.execute(
            select(t.fines.c.cancelled_at).where(t.fines.c.id == fine.id).with_for_update()
        )
    ).scalar_one()
    if cancelled is not None:
        raise ConflictError(f"fine {fine.decision_number} is cancelled: it cannot be paid")
    rows = (
        await conn.execute(
            select(
                t.payments.c.id,
                t.payments.c.status,
                t.payments.c.settles_fine,
                t.payments.c.channel,
            ).where(t.payments.c.fine_id == fine.id)
        )
    ).all()
    if any(r.settles_fine for r in rows):
        raise FineAlreadyPaidError(f"fine {fine.decision_number} is already paid")
    live = [r.id for r in rows if r.status in LIVE_STATUSES and r.channel in DRIVEN_CHANNELS]
    if live:
        payment_id = live[0]
        if client is not None:
            payment_id = await _claim_client_key(conn, client, payment_id)
        return await get_payment(conn, payment_id), False
    payment_id = uuid.uuid4()
    debit_key = debit_key_for(payment_id)
    args = (payment_id, fine.id, bank, payer_account, fine.amount_vnd, debit_key, channel, now)
    inserted = await insert_payment(conn, *args, workflow_id=workflow_id)
    assert inserted, "a fresh payment id gives a fresh debit key"
    await record_event(
        conn,
        payment_id,
        None,
        PaymentStatus.INITIATED,
        f"payment requested ({channel})",
        now,
        {"bank": bank, "amount_vnd": fine.amount_vnd},
    )
    if client is not None:
        bound = await _claim_client_key(conn, client, payment_id)
        assert bound == payment_id, "a fresh payment id cannot be bound already"
    return await get_payment(conn, payment_id), True
