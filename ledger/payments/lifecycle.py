"""Payments: creation (API idempotency), the state machine with its history,
settlement (journal entry) and refund of duplicates.

State machine::

    initiated ─┬─> verifying ─┬─> succeeded ──> refunded   (duplicates only)
               │              └─> declined
               ├─> succeeded
               └─> declined

Every change is a row in ``payment_events`` with its time and cause. Each
function runs in the caller's transaction (the caller commits) and is
idempotent: doing it again is a no-op that returns the same answer.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.keys import external_debit_key
from domain.outcomes import SettleOutcome
from ledger.core import tables as t
from ledger.core.audit import SYSTEM_SAGA, append_audit
from ledger.core.errors import (
    FineAlreadyPaidError,
    IdempotencyConflictError,
    InvalidTransitionError,
    NotFoundError,
)
from ledger.core.postings import EntryRequest, Posting, bank_clearing_account, post_entry
from ledger.fines import Fine, ReceiptRef
from ledger.receipts.issue import Receipt, ReceiptFacts, get_receipt_for_payment, issue_new_receipt
from ledger.receipts.signing import ReceiptSigner

PAYMENT_STATUSES: Final = ("initiated", "verifying", "succeeded", "declined", "refunded")
LIVE_STATUSES: Final = ("initiated", "verifying")
DRIVEN_CHANNELS: Final = ("portal", "counter")
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "initiated": frozenset({"verifying", "succeeded", "declined"}),
    "verifying": frozenset({"succeeded", "declined"}),
    "succeeded": frozenset({"refunded"}),
    "declined": frozenset(),
    "refunded": frozenset(),
}
REVENUE_ACCOUNT: Final = "fines-revenue"
REFUNDS_PAYABLE_ACCOUNT: Final = "refunds-payable"


def debit_key_for(payment_id: UUID) -> str:
    """The idempotency key sent to the bank: derived from the payment id, so
    every resend of this payment's debit carries the same key."""
    return f"fp-{payment_id.hex}"


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    ).hexdigest()


@dataclass(frozen=True)
class Payment:
    id: UUID
    fine_id: int
    decision_number: str
    decision_key: str
    issuing_unit: str
    bank: str
    payer_account: str
    amount_vnd: int
    status: str
    debit_key: str
    settles_fine: bool
    channel: str
    bank_ref: str | None
    decline_reason: str | None
    workflow_id: str | None
    debited_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES


@dataclass(frozen=True)
class ClientKey:
    """Who asked (token name) and their Idempotency-Key, with a request hash."""

    client_id: str
    key: str
    request_hash: str


_PAYMENT_COLUMNS = (
    t.payments,
    t.fines.c.decision_number,
    t.fines.c.decision_key,
    t.fines.c.issuing_unit,
)


def _payment(row: Any) -> Payment:
    return Payment(
        id=row.id,
        fine_id=int(row.fine_id),
        decision_number=row.decision_number,
        decision_key=row.decision_key,
        issuing_unit=row.issuing_unit,
        bank=row.bank,
        payer_account=row.payer_account,
        amount_vnd=int(row.amount_vnd),
        status=row.status,
        debit_key=row.debit_key,
        settles_fine=bool(row.settles_fine),
        channel=row.channel,
        bank_ref=row.bank_ref,
        decline_reason=row.decline_reason,
        workflow_id=row.workflow_id,
        debited_at=row.debited_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# The saga's statements are built once: building a Core statement for every
# call cost the worker more CPU than PostgreSQL spends running it (the
# compiled form is cached either way).
_SELECT_PAYMENT = (
    select(*_PAYMENT_COLUMNS)
    .join(t.fines, t.fines.c.id == t.payments.c.fine_id)
    .where(t.payments.c.id == bindparam("payment_id"))
)
# FOR NO KEY UPDATE: excludes every other state change of the payment but not
# rows that merely refer to it (their foreign-key check takes KEY SHARE). A
# second request for the fine binds its key to this payment while holding the
# fine row, which settling wants next.
_SELECT_PAYMENT_FOR_UPDATE = _SELECT_PAYMENT.with_for_update(of=t.payments, key_share=True)
# The same, with what the fine's receipt says (settling with the receipt).
_LOCK_FOR_SETTLEMENT = (
    select(*_PAYMENT_COLUMNS, t.fines.c.violator_name, t.fines.c.plate, t.fines.c.violation)
    .join(t.fines, t.fines.c.id == t.payments.c.fine_id)
    .where(t.payments.c.id == bindparam("payment_id"))
    .with_for_update(of=t.payments, key_share=True)
)
_INSERT_EVENT = t.payment_events.insert()
# A history row stating the payment's current status, in one statement.
_NOTE_EVENT = text(
    "INSERT INTO payment_events (payment_id, at, from_status, to_status, cause, detail) "
    "SELECT id, :at, status, status, :cause, :detail FROM payments WHERE id = :payment_id "
    "RETURNING id"
).bindparams(bindparam("detail", type_=JSONB))
_LOCK_FINE = text("SELECT id FROM fines WHERE id = :fine_id FOR UPDATE")
_FINE_PAID_BY = text("SELECT id FROM payments WHERE fine_id = :fine_id AND settles_fine")
# The payment's move to succeeded and its history row, in one statement.
_MARK_SUCCEEDED = text(
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


async def get_payment(
    conn: AsyncConnection, payment_id: UUID, *, for_update: bool = False
) -> Payment:
    query = _SELECT_PAYMENT_FOR_UPDATE if for_update else _SELECT_PAYMENT
    row = (await conn.execute(query, {"payment_id": payment_id})).one_or_none()
    if row is None:
        raise NotFoundError(f"no payment {payment_id}")
    return _payment(row)


async def find_payment_by_debit_key(conn: AsyncConnection, debit_key: str) -> Payment | None:
    row = (
        await conn.execute(
            select(*_PAYMENT_COLUMNS)
            .join(t.fines, t.fines.c.id == t.payments.c.fine_id)
            .where(t.payments.c.debit_key == debit_key)
        )
    ).one_or_none()
    return _payment(row) if row else None


async def _record_event(
    conn: AsyncConnection,
    payment_id: UUID,
    from_status: str | None,
    to_status: str,
    cause: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
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
    row = (
        await conn.execute(
            select(t.api_idempotency_keys).where(
                t.api_idempotency_keys.c.client_id == client.client_id,
                t.api_idempotency_keys.c.client_key == client.key,
            )
        )
    ).one()
    if row.request_hash != client.request_hash:
        raise IdempotencyConflictError(
            f"Idempotency-Key {client.key!r} was already used with a different request"
        )
    bound: UUID = row.payment_id
    return bound


async def _existing_for_key(conn: AsyncConnection, client: ClientKey) -> Payment | None:
    row = (
        await conn.execute(
            select(t.api_idempotency_keys).where(
                t.api_idempotency_keys.c.client_id == client.client_id,
                t.api_idempotency_keys.c.client_key == client.key,
            )
        )
    ).one_or_none()
    if row is None:
        return None
    if row.request_hash != client.request_hash:
        raise IdempotencyConflictError(
            f"Idempotency-Key {client.key!r} was already used with a different request"
        )
    return await get_payment(conn, row.payment_id)


async def create_payment(
    conn: AsyncConnection,
    fine: Fine,
    bank: str,
    payer_account: str,
    now: datetime,
    *,
    channel: str = "portal",
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
        existing = await _existing_for_key(conn, client)
        if existing is not None:
            return existing, False
    # One payment decision per fine at a time.
    await conn.execute(select(t.fines.c.id).where(t.fines.c.id == fine.id).with_for_update())
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
    await conn.execute(
        insert(t.payments).values(
            id=payment_id,
            fine_id=fine.id,
            bank=bank,
            payer_account=payer_account,
            amount_vnd=fine.amount_vnd,
            status="initiated",
            debit_key=debit_key_for(payment_id),
            channel=channel,
            workflow_id=workflow_id,
            created_at=now,
            updated_at=now,
        )
    )
    await _record_event(
        conn,
        payment_id,
        None,
        "initiated",
        f"payment requested ({channel})",
        now,
        {"bank": bank, "amount_vnd": fine.amount_vnd},
    )
    if client is not None:
        bound = await _claim_client_key(conn, client, payment_id)
        assert bound == payment_id, "a fresh payment id cannot be bound already"
    return await get_payment(conn, payment_id), True


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
    assert to_status in PAYMENT_STATUSES, to_status
    assert to_status != "succeeded", "use settle_payment: success books money"
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
    await _record_event(conn, payment_id, payment.status, to_status, cause, now, detail)
    return True


async def _audit_money(
    conn: AsyncConnection,
    action: str,
    actor: str,
    payment: Payment,
    now: datetime,
    detail: dict[str, Any],
) -> None:
    """Every money movement in the audit log, in the same transaction."""
    await append_audit(
        conn,
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


@dataclass(frozen=True)
class _AuditNote:
    """An audit entry still to append (last in the transaction)."""

    action: str
    detail: dict[str, Any]


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
        await _audit_money(conn, audit.action, actor, payment, now, audit.detail)
    return outcome


@dataclass(frozen=True)
class Settlement:
    outcome: SettleOutcome
    payment: Payment  # as it was before this call
    receipt: Receipt | None  # the fine's receipt, when the outcome is SETTLED
    receipt_issued_now: bool


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
    payment = _payment(row)
    outcome, audit = await _book(conn, payment, bank_ref, now, cause)
    receipt: Receipt | None = None
    issued_now = False
    if outcome is SettleOutcome.SETTLED:
        if payment.status == "succeeded":
            receipt = await get_receipt_for_payment(conn, payment_id)
        if receipt is None:
            facts = ReceiptFacts(
                payment_id=payment_id,
                decision_number=payment.decision_number,
                amount_vnd=payment.amount_vnd,
                bank=payment.bank,
                bank_ref=payment.bank_ref if payment.status == "succeeded" else bank_ref,
                violator_name=row.violator_name,
                plate=row.plate,
                issuing_unit=payment.issuing_unit,
                violation=row.violation,
            )
            receipt = await issue_new_receipt(conn, facts, signer, now)
            issued_now = True
    if audit is not None:
        await _audit_money(conn, audit.action, actor, payment, now, audit.detail)
    return Settlement(outcome, payment, receipt, issued_now)


async def _book(
    conn: AsyncConnection, payment: Payment, bank_ref: str, now: datetime, cause: str
) -> tuple[SettleOutcome, _AuditNote | None]:
    """The settlement of ``payment`` (its row locked by the caller) but for
    its audit entry, which the caller appends last; no entry when the
    payment was settled before."""
    if payment.status == "succeeded":
        return (SettleOutcome.SETTLED if payment.settles_fine else SettleOutcome.DUPLICATE), None
    if payment.status == "refunded":
        return SettleOutcome.REFUNDED, None
    if "succeeded" not in TRANSITIONS[payment.status]:
        raise InvalidTransitionError(
            f"bank reports payment {payment.id} succeeded (ref {bank_ref}) "
            f"but it is {payment.status}"
        )
    # Lock the fine, then look (a new snapshot) for the payment that paid it.
    await conn.execute(_LOCK_FINE, {"fine_id": payment.fine_id})
    paid_by = (await conn.execute(_FINE_PAID_BY, {"fine_id": payment.fine_id})).scalar_one_or_none()
    settles = paid_by is None
    credit = REVENUE_ACCOUNT if settles else REFUNDS_PAYABLE_ACCOUNT
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
    if payment.status == "refunded":
        return False
    if payment.status != "succeeded" or payment.settles_fine:
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
                Posting(REFUNDS_PAYABLE_ACCOUNT, payment.amount_vnd),
                Posting(bank_clearing_account(payment.bank), -payment.amount_vnd),
            ),
            metadata={"payment_id": str(payment_id), "refund_ref": refund_ref},
        ),
    )
    await conn.execute(
        t.payments.update()
        .where(t.payments.c.id == payment_id)
        .values(status="refunded", updated_at=now)
    )
    await _record_event(
        conn,
        payment_id,
        "succeeded",
        "refunded",
        "duplicate debit refunded to the payer",
        now,
        {"refund_ref": refund_ref},
    )
    await _audit_money(
        conn,
        "payment.refunded",
        actor,
        payment,
        now,
        {"bank_ref": payment.bank_ref, "refund_ref": refund_ref},
    )
    return True


@dataclass(frozen=True)
class PaymentEvent:
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


async def payment_view(conn: AsyncConnection, payment_id: UUID) -> PaymentView:
    payment = await get_payment(conn, payment_id)
    events = (
        await conn.execute(
            select(t.payment_events)
            .where(t.payment_events.c.payment_id == payment_id)
            .order_by(t.payment_events.c.id)
        )
    ).all()
    receipt_row = (
        await conn.execute(
            select(t.receipts.c.series, t.receipts.c.number, t.receipts.c.signature).where(
                t.receipts.c.payment_id == payment_id
            )
        )
    ).one_or_none()
    return PaymentView(
        payment=payment,
        history=tuple(
            PaymentEvent(e.at, e.from_status, e.to_status, e.cause, dict(e.detail)) for e in events
        ),
        receipt=(
            ReceiptRef(receipt_row.series, int(receipt_row.number), receipt_row.signature)
            if receipt_row
            else None
        ),
    )


@dataclass(frozen=True)
class InDoubt:
    payment_id: UUID
    bank: str
    decision_key: str
    status: str
    created_at: datetime


async def payments_in_doubt(
    conn: AsyncConnection, bank: str | None = None, limit: int = 10_000
) -> list[InDoubt]:
    """Payments whose outcome is not known yet (initiated or verifying)."""
    query = (
        select(
            t.payments.c.id,
            t.payments.c.bank,
            t.fines.c.decision_key,
            t.payments.c.status,
            t.payments.c.created_at,
        )
        .join(t.fines, t.fines.c.id == t.payments.c.fine_id)
        .where(t.payments.c.status.in_(LIVE_STATUSES))
        .order_by(t.payments.c.created_at)
        .limit(limit)
    )
    if bank is not None:
        query = query.where(t.payments.c.bank == bank)
    return [
        InDoubt(r.id, r.bank, r.decision_key, r.status, r.created_at)
        for r in (await conn.execute(query)).all()
    ]


async def in_doubt_summary(conn: AsyncConnection) -> dict[str, tuple[int, datetime | None]]:
    """Per bank: how many payments are in doubt, and since when the oldest."""
    rows = (
        await conn.execute(
            text(
                "SELECT bank, count(*) AS n, min(created_at) AS oldest FROM payments "
                "WHERE status IN ('initiated', 'verifying') GROUP BY bank"
            )
        )
    ).all()
    return {r.bank: (int(r.n), r.oldest) for r in rows}


class AmountMismatchError(InvalidTransitionError):
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
    channel: str = "reconciliation",
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
    inserted = (
        await conn.execute(
            insert(t.payments)
            .values(
                id=payment_id,
                fine_id=fine.id,
                bank=bank,
                payer_account=payer_account,
                amount_vnd=amount_vnd,
                status="initiated",
                debit_key=external_debit_key(bank, bank_ref),
                channel=channel,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["debit_key"])
            .returning(t.payments.c.id)
        )
    ).scalar_one_or_none()
    if inserted is None:  # a concurrent recorder won
        again = await find_payment_by_debit_key(conn, external_debit_key(bank, bank_ref))
        assert again is not None
        return again, False
    await _record_event(
        conn,
        payment_id,
        None,
        "initiated",
        cause,
        now,
        {"bank": bank, "bank_ref": bank_ref, "amount_vnd": amount_vnd},
    )
    payment = await get_payment(conn, payment_id)
    await _audit_money(
        conn,
        "payment.external_debit_recorded",
        actor,
        payment,
        now,
        {"bank_ref": bank_ref, "channel": channel, "cause": cause[:500]},
    )
    return payment, True


async def next_live_payment(conn: AsyncConnection, payment_id: UUID) -> UUID | None:
    """Another payment of the same fine waiting to be driven, if any."""
    return (
        await conn.execute(
            text(
                "SELECT p2.id FROM payments p1 JOIN payments p2 ON p2.fine_id = p1.fine_id "
                "WHERE p1.id = :id AND p2.id <> p1.id AND p2.status IN ('initiated', 'verifying') "
                "AND p2.channel IN ('portal', 'counter') ORDER BY p2.created_at LIMIT 1"
            ),
            {"id": payment_id},
        )
    ).scalar_one_or_none()
