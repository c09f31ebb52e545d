"""Money a payment moves: booking a debit the bank confirmed (the first one of
a fine settles it, a later one is a duplicate), with the fine's receipt in
the same transaction, and the refund of a duplicate.

Each function runs in the caller's transaction (the caller commits) and is
idempotent: booking again is a no-op that returns the same outcome. The
payment path is on the saga's hot path: the statements below are tuned for
round trips, and their lock order is the one every writer of a payment keeps
(payment, fine, accounts, receipt series, audit head last).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.outcomes import SettleOutcome
from ledger.core import tables as t
from ledger.core.audit import SYSTEM_SAGA
from ledger.core.errors import InvalidTransitionError, NotFoundError
from ledger.core.postings import (
    EntryRequest,
    Posting,
    SystemAccount,
    bank_clearing_account,
    post_entry,
)
from ledger.payments.model import (
    PAYMENT_COLUMNS,
    TRANSITIONS,
    Payment,
    PaymentStatus,
    payment_from_row,
)
from ledger.payments.records import audit_money, get_payment, record_event
from ledger.receipts.issue import Receipt, ReceiptFacts, get_receipt_for_payment, issue_new_receipt
from ledger.receipts.signing import ReceiptSigner


@dataclass(frozen=True)
class Settlement:
    outcome: SettleOutcome
    payment: Payment  # as it was before this call
    receipt: Receipt | None  # the fine's receipt, when the outcome is SETTLED
    receipt_issued_now: bool


@dataclass(frozen=True)
class _AuditNote:
    """An audit entry still to append (last in the transaction)."""

    action: str
    detail: dict[str, Any]


# The payment locked as ``get_payment(for_update=True)`` does, with what the
# fine's receipt says (settling with the receipt).
_LOCK_FOR_SETTLEMENT: Final = (
    select(*PAYMENT_COLUMNS, t.fines.c.violator_name, t.fines.c.plate, t.fines.c.violation)
    .join(t.fines, t.fines.c.id == t.payments.c.fine_id)
    .where(t.payments.c.id == bindparam("payment_id"))
    .with_for_update(of=t.payments, key_share=True)
)
_LOCK_FINE: Final = text("SELECT id FROM fines WHERE id = :fine_id FOR UPDATE")
_FINE_PAID_BY: Final = text("SELECT id FROM payments WHERE fine_id = :fine_id AND settles_fine")
# The payment's move to succeeded and its history row, in one statement.
_MARK_SUCCEEDED: Final = text(
    """
    WITH moved AS (
        UPDATE payments
           SET status = 'succeeded', settles_fine = :settles, bank_ref = :bank_ref,
               debited_at = :at, updated_at = :at
         WHERE id = :payment_id
        RETURNING id
    )
    INSERT INTO payment_events (payment_id, at, from_status, to_status, cause, detail)
    SELECT id, :at, :from_status, 'succeeded', :cause, :detail FROM moved
    RETURNING id
    """
).bindparams(bindparam("detail", type_=JSONB))


async def settle_payment(
    conn: AsyncConnection,
    payment_id: UUID,
    bank_ref: str,
    now: datetime,
    cause: str,
    *,
    actor: str = SYSTEM_SAGA,
) -> SettleOutcome:
    """Book a debit the bank confirmed. The first succeeded payment of a fine
    settles it (clearing ↔ fines revenue); any later one is a duplicate
    (clearing ↔ refunds payable) to be refunded."""
    payment = await get_payment(conn, payment_id, for_update=True)
    outcome, audit = await _book(conn, payment, bank_ref, now, cause)
    if audit is not None:
        await audit_money(conn, audit.action, actor, payment, now, audit.detail)
    return outcome


async def settle_with_receipt(
    conn: AsyncConnection,
    payment_id: UUID,
    bank_ref: str,
    now: datetime,
    cause: str,
    signer: ReceiptSigner,
    *,
    actor: str = SYSTEM_SAGA,
) -> Settlement:
    """``settle_payment`` and, when the payment settles its fine, its receipt
    (``issue_receipt_once``) in the same transaction: the receipt exists
    exactly when the settlement does. Idempotent like both: a payment
    settled before gets its receipt if it has none, and the one it has
    otherwise.

    Lock order: payment, fine, accounts (journal entry), receipt series,
    audit head (appended last, as ``ledger.core.audit`` requires), the order of
    ``settle_payment`` and ``issue_receipt_once`` run one after the other.
    """
    row = (await conn.execute(_LOCK_FOR_SETTLEMENT, {"payment_id": payment_id})).one_or_none()
    if row is None:
        raise NotFoundError(f"no payment {payment_id}")
    payment = payment_from_row(row)
    outcome, audit = await _book(conn, payment, bank_ref, now, cause)
    receipt: Receipt | None = None
    issued_now = False
    if outcome is SettleOutcome.SETTLED:
        if payment.status == PaymentStatus.SUCCEEDED:
            receipt = await get_receipt_for_payment(conn, payment_id)
        if receipt is None:
            facts = _receipt_facts(payment, row, bank_ref)
            receipt = await issue_new_receipt(conn, facts, signer, now)
            issued_now = True
    if audit is not None:
        await audit_money(conn, audit.action, actor, payment, now, audit.detail)
    return Settlement(outcome, payment, receipt, issued_now)


def _receipt_facts(payment: Payment, row: Any, bank_ref: str) -> ReceiptFacts:
    """What the receipt says: the payment as booked, the fine from ``row``
    (of ``_LOCK_FOR_SETTLEMENT``)."""
    return ReceiptFacts(
        payment_id=payment.id,
        decision_number=payment.decision_number,
        amount_vnd=payment.amount_vnd,
        bank=payment.bank,
        bank_ref=payment.bank_ref if payment.status == PaymentStatus.SUCCEEDED else bank_ref,
        violator_name=row.violator_name,
        plate=row.plate,
        issuing_unit=payment.issuing_unit,
        violation=row.violation,
    )


async def _book(
    conn: AsyncConnection, payment: Payment, bank_ref: str, now: datetime, cause: str
) -> tuple[SettleOutcome, _AuditNote | None]:
    """The settlement of ``payment`` (its row locked by the caller) but for
    its audit entry, which the caller appends last; no entry when the
    payment was settled before."""
    if payment.status == PaymentStatus.SUCCEEDED:
        return (SettleOutcome.SETTLED if payment.settles_fine else SettleOutcome.DUPLICATE), None
    if payment.status == PaymentStatus.REFUNDED:
        return SettleOutcome.REFUNDED, None
    if PaymentStatus.SUCCEEDED not in TRANSITIONS[payment.status]:
        raise InvalidTransitionError(
            f"bank reports payment {payment.id} succeeded (ref {bank_ref}) "
            f"but it is {payment.status}"
        )
    # Lock the fine, then look (a new snapshot) for the payment that paid it.
    await conn.execute(_LOCK_FINE, {"fine_id": payment.fine_id})
    paid_by = (await conn.execute(_FINE_PAID_BY, {"fine_id": payment.fine_id})).scalar_one_or_none()
    settles = paid_by is None
    credit = SystemAccount.FINES_REVENUE if settles else SystemAccount.REFUNDS_PAYABLE
    await post_entry(
        conn,
        EntryRequest(
            idempotency_key=f"pay:{payment.id}",
            kind="fine_payment" if settles else "duplicate_payment",
            description=f"{payment.decision_number} via {payment.bank} ref {bank_ref}",
            postings=(
                Posting(bank_clearing_account(payment.bank), payment.amount_vnd),
                Posting(credit, -payment.amount_vnd),
            ),
            metadata={"payment_id": str(payment.id), "bank_ref": bank_ref},
        ),
    )
    detail: dict[str, Any] = {"bank_ref": bank_ref}
    if not settles:
        detail["fine_paid_by"] = str(paid_by)
        cause = f"{cause}; the fine was already paid by {paid_by}: to be refunded"
    moved = await conn.execute(
        _MARK_SUCCEEDED,
        {
            "payment_id": payment.id,
            "settles": settles,
            "bank_ref": bank_ref,
            "at": now,
            "from_status": payment.status,
            "cause": cause,
            "detail": detail,
        },
    )
    assert moved.scalar_one_or_none() is not None, "the payment row is locked by the caller"
    audit = _AuditNote(
        "payment.settled" if settles else "payment.duplicate",
        {"bank_ref": bank_ref, "cause": cause[:500], **detail},
    )
    return (SettleOutcome.SETTLED if settles else SettleOutcome.DUPLICATE), audit


async def mark_refunded(
    conn: AsyncConnection,
    payment_id: UUID,
    refund_ref: str,
    now: datetime,
    *,
    actor: str = SYSTEM_SAGA,
) -> bool:
    """Book the refund of a duplicate debit (the reversal of its booking)."""
    payment = await get_payment(conn, payment_id, for_update=True)
    if payment.status == PaymentStatus.REFUNDED:
        return False
    if payment.status != PaymentStatus.SUCCEEDED or payment.settles_fine:
        raise InvalidTransitionError(
            f"payment {payment_id} is {payment.status}"
            f"{' and settles its fine' if payment.settles_fine else ''}: not refundable"
        )
    await post_entry(
        conn,
        EntryRequest(
            idempotency_key=f"refund:{payment_id}",
            kind="refund",
            description=f"refund of duplicate {payment.decision_number} ref {payment.bank_ref}",
            postings=(
                Posting(SystemAccount.REFUNDS_PAYABLE, payment.amount_vnd),
                Posting(bank_clearing_account(payment.bank), -payment.amount_vnd),
            ),
            metadata={"payment_id": str(payment_id), "refund_ref": refund_ref},
        ),
    )
    await conn.execute(
        t.payments.update()
        .where(t.payments.c.id == payment_id)
        .values(status=PaymentStatus.REFUNDED, updated_at=now)
    )
    await record_event(
        conn,
        payment_id,
        PaymentStatus.SUCCEEDED,
        PaymentStatus.REFUNDED,
        "duplicate debit refunded to the payer",
        now,
        {"refund_ref": refund_ref},
    )
    await audit_money(
        conn,
        "payment.refunded",
        actor,
        payment,
        now,
        {"bank_ref": payment.bank_ref, "refund_ref": refund_ref},
    )
    return True
