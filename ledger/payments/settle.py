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

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from sqlalchemy import any_, bindparam, select, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.outcomes import SettleOutcome
from ledger.core import tables as t
from ledger.core.audit import SYSTEM_SAGA, append_audit_many
from ledger.core.errors import InvalidTransitionError, NotFoundError
from ledger.core.postings import (
    EntryRequest,
    Posting,
    SystemAccount,
    bank_clearing_account,
    post_entries,
    post_entry,
)
from ledger.payments.model import (
    PAYMENT_COLUMNS,
    TRANSITIONS,
    Payment,
    PaymentStatus,
    payment_from_row,
)
from ledger.payments.records import audit_money, get_payment, money_draft, record_event
from ledger.receipts.issue import (
    Receipt,
    ReceiptFacts,
    get_receipt_for_payment,
    issue_new_receipt,
    issue_new_receipts,
)
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


# Payments one ``settle_many_with_receipts`` books at most: the batch holds
# the balance shards, receipt series and audit head until it commits, and
# every other booking waits that long.
SETTLE_MANY_MAX: Final = 500


@dataclass(frozen=True)
class Confirmed:
    """A debit the bank confirmed for a payment of ours."""

    payment_id: UUID
    bank_ref: str


@dataclass(frozen=True)
class BatchSettlement:
    """What ``settle_many_with_receipts`` did: a ``Settlement`` per payment
    it booked or found booked, and why it left the others (an unknown
    payment, one whose status cannot become succeeded) untouched."""

    settled: dict[UUID, Settlement]
    refused: dict[UUID, str]


# The payments of a batch locked in id order (as ``_LOCK_FOR_SETTLEMENT``
# locks one), with what their fines' receipts say.
_LOCK_MANY_FOR_SETTLEMENT: Final = (
    select(*PAYMENT_COLUMNS, t.fines.c.violator_name, t.fines.c.plate, t.fines.c.violation)
    .join(t.fines, t.fines.c.id == t.payments.c.fine_id)
    .where(t.payments.c.id == any_(bindparam("ids", type_=ARRAY(PG_UUID(as_uuid=True)))))
    .order_by(t.payments.c.id)
    .with_for_update(of=t.payments, key_share=True)
)
_LOCK_FINES: Final = text(
    "SELECT id FROM fines WHERE id = ANY(CAST(:fine_ids AS bigint[])) ORDER BY id FOR UPDATE"
)
_FINES_PAID_BY: Final = text(
    "SELECT fine_id, id FROM payments WHERE fine_id = ANY(CAST(:fine_ids AS bigint[])) "
    "AND settles_fine"
)
_RECEIPTS_OF: Final = text(
    "SELECT payment_id FROM receipts WHERE payment_id = ANY(CAST(:ids AS uuid[]))"
)
# ``_MARK_SUCCEEDED`` for every payment of a batch, in one statement.
_MARK_MANY_SUCCEEDED: Final = text(
    """
    WITH v AS (
        SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:settles AS boolean[]),
                             CAST(:bank_refs AS text[]), CAST(:from_statuses AS text[]),
                             CAST(:causes AS text[]), CAST(CAST(:details AS text[]) AS jsonb[]))
                 WITH ORDINALITY AS v(id, settles, bank_ref, from_status, cause, detail, ord)
    ), moved AS (
        UPDATE payments p
           SET status = 'succeeded', settles_fine = v.settles, bank_ref = v.bank_ref,
               debited_at = :at, updated_at = :at
          FROM v
         WHERE p.id = v.id
        RETURNING p.id
    )
    INSERT INTO payment_events (payment_id, at, from_status, to_status, cause, detail)
    SELECT v.id, :at, v.from_status, 'succeeded', v.cause, v.detail
      FROM v JOIN moved ON moved.id = v.id
     ORDER BY v.ord
    RETURNING payment_id
    """
)


async def settle_many_with_receipts(
    conn: AsyncConnection,
    confirmed: Sequence[Confirmed],
    now: datetime,
    cause: str,
    signer: ReceiptSigner,
    *,
    actor: str = SYSTEM_SAGA,
) -> BatchSettlement:
    """``settle_with_receipt`` for a batch of payments, in the caller's
    transaction, with a fixed number of statements whatever the batch's
    size: the rows written are those ``settle_with_receipt`` writes for
    each payment, one after the other in the order given (which payment of
    a fine settles it, the receipts' numbers, the audit chain). Idempotent
    like it: a payment booked before is returned as it is (and gets its
    receipt if it had none).

    Each payment alone would queue on the global locks (its fine's balance
    shard rows, the unit's receipt series, the audit head) through its own
    commit; a batch takes each once, which is what lets the link recovery
    receipt thousands of payments in seconds.

    Lock order, the one every writer of a payment keeps, class by class and
    each class in a fixed order: the payments (by id), their fines (by id),
    the balance shards (by account, then shard: ``post_entries``), the
    receipt series (by name: ``issue_new_receipts``), the audit head, last.
    A single settlement takes one lock of each class in the same order, so
    a batch and the payment workflows' own settlements never deadlock.
    """
    if not 1 <= len(confirmed) <= SETTLE_MANY_MAX:
        raise ValueError(f"settle 1..{SETTLE_MANY_MAX} payments at once, not {len(confirmed)}")
    if len({c.payment_id for c in confirmed}) != len(confirmed):
        raise ValueError("a payment appears twice in one batch")
    ids = sorted(c.payment_id for c in confirmed)
    rows = {row.id: row for row in (await conn.execute(_LOCK_MANY_FOR_SETTLEMENT, {"ids": ids}))}
    settled: dict[UUID, Settlement] = {}
    refused: dict[UUID, str] = {}
    to_book: list[tuple[Payment, str]] = []
    # Payments that settle their fine and may still need their receipt.
    receipt_due: list[tuple[Payment, str]] = []
    for item in confirmed:
        row = rows.get(item.payment_id)
        if row is None:
            refused[item.payment_id] = "no such payment"
            continue
        payment = payment_from_row(row)
        if payment.status == PaymentStatus.SUCCEEDED:
            if payment.settles_fine:
                receipt_due.append((payment, item.bank_ref))
            else:
                settled[payment.id] = Settlement(SettleOutcome.DUPLICATE, payment, None, False)
        elif payment.status == PaymentStatus.REFUNDED:
            settled[payment.id] = Settlement(SettleOutcome.REFUNDED, payment, None, False)
        elif PaymentStatus.SUCCEEDED not in TRANSITIONS[payment.status]:
            refused[payment.id] = (
                f"bank reports it succeeded (ref {item.bank_ref}) but it is {payment.status}"
            )
        else:
            to_book.append((payment, item.bank_ref))
    bookings = await _book_many(conn, to_book, now, cause)
    for (payment, bank_ref), booking in zip(to_book, bookings, strict=True):
        if booking.outcome is SettleOutcome.SETTLED:
            receipt_due.append((payment, bank_ref))
        else:
            settled[payment.id] = Settlement(booking.outcome, payment, None, False)
    # Numbered in the order given, whichever way each came to be due.
    place = {item.payment_id: i for i, item in enumerate(confirmed)}
    receipt_due.sort(key=lambda due: place[due[0].id])
    receipts = await _receipts_for(conn, receipt_due, rows, now, signer)
    for payment, _ in receipt_due:
        receipt, issued_now = receipts[payment.id]
        settled[payment.id] = Settlement(SettleOutcome.SETTLED, payment, receipt, issued_now)
    if bookings:
        drafts = [
            money_draft(b.audit.action, actor, payment, now, b.audit.detail)
            for (payment, _), b in zip(to_book, bookings, strict=True)
        ]
        await append_audit_many(conn, drafts)
    return BatchSettlement(settled, refused)


async def _book_many(
    conn: AsyncConnection, to_book: Sequence[tuple[Payment, str]], now: datetime, cause: str
) -> list[_Booking]:
    """``_book`` for payments whose status lets them succeed (rows locked by
    the caller), in order: the first of a fine's payments settles it unless
    a payment settled it before; the others are duplicates."""
    if not to_book:
        return []
    fine_ids = sorted({payment.fine_id for payment, _ in to_book})
    await conn.execute(_LOCK_FINES, {"fine_ids": fine_ids})
    paid_by: dict[int, UUID] = {
        int(row.fine_id): row.id
        for row in await conn.execute(_FINES_PAID_BY, {"fine_ids": fine_ids})
    }
    bookings: list[_Booking] = []
    for payment, bank_ref in to_book:
        booking = _Booking.of(payment, bank_ref, cause, paid_by.get(payment.fine_id))
        paid_by.setdefault(payment.fine_id, payment.id)
        bookings.append(booking)
    await post_entries(conn, [b.entry for b in bookings])
    marks = [b.mark for b in bookings]
    moved = await conn.execute(
        _MARK_MANY_SUCCEEDED,
        {
            "ids": [m["payment_id"] for m in marks],
            "settles": [m["settles"] for m in marks],
            "bank_refs": [m["bank_ref"] for m in marks],
            "from_statuses": [str(m["from_status"]) for m in marks],
            "causes": [m["cause"] for m in marks],
            "details": [json.dumps(m["detail"], ensure_ascii=False) for m in marks],
            "at": now,
        },
    )
    assert len(moved.all()) == len(marks), "the payment rows are locked by the caller"
    return bookings


async def _receipts_for(
    conn: AsyncConnection,
    due: Sequence[tuple[Payment, str]],
    rows: Mapping[UUID, Any],
    now: datetime,
    signer: ReceiptSigner,
) -> dict[UUID, tuple[Receipt, bool]]:
    """The receipt of each payment that settles its fine: the one it has,
    or one issued now (in the order of ``due``)."""
    if not due:
        return {}
    found: dict[UUID, tuple[Receipt, bool]] = {}
    booked_before = [p.id for p, _ in due if p.status == PaymentStatus.SUCCEEDED]
    if booked_before:
        with_receipt = await conn.execute(_RECEIPTS_OF, {"ids": booked_before})
        for (payment_id,) in with_receipt:
            receipt = await get_receipt_for_payment(conn, payment_id)
            assert receipt is not None, payment_id
            found[payment_id] = (receipt, False)
    facts = [
        _receipt_facts(payment, rows[payment.id], bank_ref)
        for payment, bank_ref in due
        if payment.id not in found
    ]
    if facts:
        for receipt in await issue_new_receipts(conn, facts, signer, now):
            found[receipt.payment_id] = (receipt, True)
    return found


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
    booking = _Booking.of(payment, bank_ref, cause, paid_by)
    await post_entry(conn, booking.entry)
    moved = await conn.execute(_MARK_SUCCEEDED, {**booking.mark, "at": now})
    assert moved.scalar_one_or_none() is not None, "the payment row is locked by the caller"
    return booking.outcome, booking.audit


@dataclass(frozen=True)
class _Booking:
    """What booking a confirmed debit writes: its journal entry, the
    payment's move to succeeded (``_MARK_SUCCEEDED``'s parameters but the
    time) and its audit note."""

    outcome: SettleOutcome
    entry: EntryRequest
    mark: dict[str, Any]
    audit: _AuditNote

    @classmethod
    def of(cls, payment: Payment, bank_ref: str, cause: str, paid_by: UUID | None) -> _Booking:
        """The booking of ``payment``'s debit ``bank_ref``: it settles the
        fine unless ``paid_by`` (the payment that settled it) is known."""
        settles = paid_by is None
        credit = SystemAccount.FINES_REVENUE if settles else SystemAccount.REFUNDS_PAYABLE
        entry = EntryRequest(
            idempotency_key=f"pay:{payment.id}",
            kind="fine_payment" if settles else "duplicate_payment",
            description=f"{payment.decision_number} via {payment.bank} ref {bank_ref}",
            postings=(
                Posting(bank_clearing_account(payment.bank), payment.amount_vnd),
                Posting(credit, -payment.amount_vnd),
            ),
            metadata={"payment_id": str(payment.id), "bank_ref": bank_ref},
        )
        detail: dict[str, Any] = {"bank_ref": bank_ref}
        if not settles:
            detail["fine_paid_by"] = str(paid_by)
            cause = f"{cause}; the fine was already paid by {paid_by}: to be refunded"
        mark = {
            "payment_id": payment.id,
            "settles": settles,
            "bank_ref": bank_ref,
            "from_status": payment.status,
            "cause": cause,
            "detail": detail,
        }
        audit = _AuditNote(
            "payment.settled" if settles else "payment.duplicate",
            {"bank_ref": bank_ref, "cause": cause[:500], **detail},
        )
        return cls(
            SettleOutcome.SETTLED if settles else SettleOutcome.DUPLICATE, entry, mark, audit
        )


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
