"""The state machine's moves that book no money (to verifying, declined),
each with its history row. Success books money: ``ledger.payments.settle``.

Runs in the caller's transaction (the caller commits); moving a payment to
the status it has is a no-op.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t
from ledger.core.errors import InvalidTransitionError
from ledger.payments.model import TRANSITIONS, PaymentStatus
from ledger.payments.records import get_payment, record_event

_STATUSES: Final = frozenset(PaymentStatus)


async def transition(
    conn: AsyncConnection,
    payment_id: UUID,
    to_status: str,
    cause: str,
    now: datetime,
    *,
    detail: dict[str, Any] | None = None,
    decline_reason: str | None = None,
) -> bool:
    """Move the payment to ``to_status``; False if it is already there."""
    assert to_status in _STATUSES, to_status
    assert to_status != PaymentStatus.SUCCEEDED, "use settle_payment: success books money"
    payment = await get_payment(conn, payment_id, for_update=True)
    if payment.status == to_status:
        return False
    if to_status not in TRANSITIONS[payment.status]:
        raise InvalidTransitionError(
            f"payment {payment_id} cannot go from {payment.status} to {to_status} ({cause})"
        )
    values: dict[str, Any] = {"status": to_status, "updated_at": now}
    if decline_reason is not None:
        values["decline_reason"] = decline_reason
    await conn.execute(t.payments.update().where(t.payments.c.id == payment_id).values(**values))
    await record_event(conn, payment_id, payment.status, to_status, cause, now, detail)
    return True
