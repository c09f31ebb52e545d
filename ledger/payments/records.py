"""A payment's row, its history and its audit entries: reading a payment
(locked or not), appending to ``payment_events``, and the audit entry every
money movement writes. What the other payments modules build on.

Every function runs in the caller's transaction (the caller commits).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from uuid import UUID

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t
from ledger.core.audit import AuditDraft, append_audit_many
from ledger.core.errors import NotFoundError
from ledger.core.rows import one_row
from ledger.payments.model import PAYMENT_COLUMNS, Payment, PaymentStatus, payment_from_row

# The saga's statements are built once: building a Core statement for every
# call cost the worker more CPU than PostgreSQL spends running it (the
# compiled form is cached either way).
_PAYMENT_AND_FINE: Final = select(*PAYMENT_COLUMNS).join(
    t.fines, t.fines.c.id == t.payments.c.fine_id
)
SELECT_PAYMENT: Final = _PAYMENT_AND_FINE.where(t.payments.c.id == bindparam("payment_id"))
# FOR NO KEY UPDATE: excludes every other state change of the payment but not
# rows that merely refer to it (their foreign-key check takes KEY SHARE). A
# second request for the fine binds its key to this payment while holding the
# fine row, which settling wants next.
SELECT_PAYMENT_FOR_UPDATE: Final = SELECT_PAYMENT.with_for_update(of=t.payments, key_share=True)
_BY_DEBIT_KEY: Final = _PAYMENT_AND_FINE.where(t.payments.c.debit_key == bindparam("debit_key"))
_INSERT_EVENT: Final = t.payment_events.insert()
# A history row stating the payment's current status, in one statement.
_NOTE_EVENT: Final = text(
    "INSERT INTO payment_events (payment_id, at, from_status, to_status, cause, detail) "
    "SELECT id, :at, status, status, :cause, :detail FROM payments WHERE id = :payment_id "
    "RETURNING id"
).bindparams(bindparam("detail", type_=JSONB))


async def get_payment(
    conn: AsyncConnection, payment_id: UUID, *, for_update: bool = False
) -> Payment:
    query = SELECT_PAYMENT_FOR_UPDATE if for_update else SELECT_PAYMENT
    params = {"payment_id": payment_id}
    return await one_row(conn, query, payment_from_row, f"no payment {payment_id}", params)


async def find_payment_by_debit_key(conn: AsyncConnection, debit_key: str) -> Payment | None:
    row = (await conn.execute(_BY_DEBIT_KEY, {"debit_key": debit_key})).one_or_none()
    return payment_from_row(row) if row else None


async def insert_payment(
    conn: AsyncConnection,
    payment_id: UUID,
    fine_id: int,
    bank: str,
    payer_account: str,
    amount_vnd: int,
    debit_key: str,
    channel: str,
    now: datetime,
    workflow_id: str | None = None,
) -> bool:
    """A new payment, initiated (its history row is the caller's); False
    when another payment has its debit key already."""
    inserted = (
        await conn.execute(
            insert(t.payments)
            .values(
                id=payment_id,
                fine_id=fine_id,
                bank=bank,
                payer_account=payer_account,
                amount_vnd=amount_vnd,
                status=PaymentStatus.INITIATED,
                debit_key=debit_key,
                channel=channel,
                workflow_id=workflow_id,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["debit_key"])
            .returning(t.payments.c.id)
        )
    ).scalar_one_or_none()
    return inserted is not None


async def record_event(
    conn: AsyncConnection,
    payment_id: UUID,
    from_status: str | None,
    to_status: str,
    cause: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """A history row of a status change (``from_status`` None: created)."""
    await conn.execute(
        _INSERT_EVENT,
        {
            "payment_id": payment_id,
            "at": now,
            "from_status": from_status,
            "to_status": to_status,
            "cause": cause,
            "detail": detail or {},
        },
    )


async def note_event(
    conn: AsyncConnection,
    payment_id: UUID,
    cause: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    """A history row without a status change (a resend, a status check).

    One statement: it needs no transaction of its own (an autocommit
    connection will do)."""
    params = {"payment_id": payment_id, "at": now, "cause": cause, "detail": detail or {}}
    if (await conn.execute(_NOTE_EVENT, params)).scalar_one_or_none() is None:
        raise NotFoundError(f"no payment {payment_id}")


async def audit_money(
    conn: AsyncConnection,
    action: str,
    actor: str,
    payment: Payment,
    now: datetime,
    detail: dict[str, Any],
) -> None:
    """Every money movement in the audit log, in the same transaction (last:
    the audit head is a lock held until commit, see ``ledger.core.audit``)."""
    await append_audit_many(conn, [money_draft(action, actor, payment, now, detail)])


def money_draft(
    action: str, actor: str, payment: Payment, now: datetime, detail: dict[str, Any]
) -> AuditDraft:
    """The audit row of a money movement of ``payment`` (``audit_money``)."""
    return AuditDraft(
        actor=actor,
        action=action,
        subject_type="payment",
        subject_id=str(payment.id),
        now=now,
        detail={
            "decision_number": payment.decision_number,
            "bank": payment.bank,
            "amount_vnd": payment.amount_vnd,
            **detail,
        },
    )
