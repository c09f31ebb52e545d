"""Discrepancies raised outside a reconciliation run, about one payment:
the payment saga's "in doubt too long", and a verified webhook that reports
a success for another amount than the payment's. Each is finance's to look
at while the payment keeps being verified with the bank; one per payment
and kind, shared with the one a run would open.

Every function runs in the caller's transaction (the caller commits).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.business_time import VIETNAM_TZ_NAME
from ledger.reconciliation.sql_template import EMPTY, Sql, fill, literal

# The statement date of a raised discrepancy is the Vietnamese business day
# the payment began: the day whose statement should have settled it.
_RAISE_TEMPLATE: Final = """
INSERT INTO discrepancies (reconciliation_id, bank, statement_date, kind, payment_id, fine_id,
                           amount_vnd, detail, created_at, updated_at)
SELECT NULL, p.bank, (p.created_at AT TIME ZONE :tz)::date, {kind},
       p.id, p.fine_id, p.amount_vnd,
       jsonb_build_object('status', p.status, 'since', p.created_at, 'channel', p.channel,
                          {detail}),
       :now, :now
  FROM payments p
 WHERE p.id = :payment_id {only}
ON CONFLICT (kind, payment_id) WHERE statement_line_id IS NULL DO NOTHING
RETURNING id
"""
_IN_DOUBT_FROM_SAGA: Final = fill(
    _RAISE_TEMPLATE,
    kind=literal("in_doubt_too_long"),
    detail=Sql("'verifying_for_seconds', CAST(:seconds AS bigint), 'raised_by', 'payment saga'"),
    only=Sql("AND p.status IN ('initiated', 'verifying')"),
)
_AMOUNT_FROM_WEBHOOK: Final = fill(
    _RAISE_TEMPLATE,
    kind=literal("amount_mismatch"),
    detail=Sql(
        "'raised_by', 'bank webhook', 'event_id', CAST(:event_id AS text),"
        " 'bank_ref', CAST(:bank_ref AS text),"
        " 'webhook_amount_vnd', CAST(:webhook_amount AS bigint),"
        " 'payment_amount_vnd', p.amount_vnd"
    ),
    only=EMPTY,
)


async def _raise(conn: AsyncConnection, sql: str, params: dict[str, Any]) -> int | None:
    opened = (await conn.execute(text(sql), {**params, "tz": VIETNAM_TZ_NAME})).scalar_one_or_none()
    return int(opened) if opened is not None else None


async def open_in_doubt_discrepancy(
    conn: AsyncConnection, payment_id: UUID, verifying_for_seconds: int, now: datetime
) -> int | None:
    """The payment saga's 'in doubt too long' discrepancy for finance (the
    payment keeps being verified). Idempotent: one per payment, shared with
    the one a reconciliation run opens; none once the payment is decided.
    Returns the id of the discrepancy opened now, if any. It resolves itself
    when a later reconciliation of the bank finds the payment decided."""
    params = {"payment_id": payment_id, "seconds": verifying_for_seconds, "now": now}
    return await _raise(conn, _IN_DOUBT_FROM_SAGA, params)


async def open_webhook_amount_mismatch(
    conn: AsyncConnection,
    payment_id: UUID,
    *,
    event_id: str,
    bank_ref: str | None,
    webhook_amount_vnd: int,
    now: datetime,
) -> int | None:
    """A verified webhook said the payment's debit succeeded, for another
    amount than the payment's: it settles nothing (the payment is checked
    with the bank), and finance sees it as an amount mismatch. Idempotent
    (one per payment). Returns the id of the discrepancy opened now."""
    params = {
        "payment_id": payment_id,
        "event_id": event_id,
        "bank_ref": bank_ref,
        "webhook_amount": webhook_amount_vnd,
        "now": now,
    }
    return await _raise(conn, _AMOUNT_FROM_WEBHOOK, params)
