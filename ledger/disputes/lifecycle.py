"""Disputes: a citizen's complaint ("my account was debited, I have no
receipt"), the evidence the ledger holds about it, and its resolution.

Lifecycle::

    open ─┬─> rejected                         (finance, with a reason)
          └─> awaiting_approval ─┬─> executing ─┬─> confirmed   (receipted)
                    ^            │              ├─> refunded
                    │            │              └─> open        (execution failed)
                    └── open <───┴─ (approval rejected or expired)

Confirm and refund move money, so they need a second person's approval
(``ledger.core.approvals``); the ``DisputeWorkflow`` carries them out. Every step
is in the audit log (subject ``dispute``), which is also the dispute's
history. Each function runs in the caller's transaction.

Lock order (see ``ledger.core.audit``): the dispute row, then its approval, then
payments; the audit head last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from uuid import UUID

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.formats import ACCOUNT_RE, BANK_REF_RE
from domain.keys import SUSPENSE_ACCOUNT, external_debit_key, suspense_key
from ledger import payments as pay
from ledger.core import approvals as ap
from ledger.core import tables as t
from ledger.core.audit import AuditEntry, append_audit, audit_trail
from ledger.core.checks import check_reason
from ledger.core.errors import ConflictError, NotFoundError, ValidationError
from ledger.core.postings import (
    EntryRequest,
    Posting,
    bank_clearing_account,
    post_entry,
    reverse_entry,
)
from ledger.fines import Fine, fine_status, get_fine, normalise_decision_number

DISPUTE_STATUSES: Final = (
    "open",
    "awaiting_approval",
    "executing",
    "confirmed",
    "refunded",
    "rejected",
)
FINAL_STATUSES: Final = ("confirmed", "refunded", "rejected")
ACTIONS: Final = ("confirm", "refund", "reject")
APPROVAL_KIND: Final = {"confirm": "dispute_confirm", "refund": "dispute_refund"}
DESCRIPTION_CHARS_MAX: Final = 2_000
LIST_LIMIT_MAX: Final = 500
EVIDENCE_PAYMENTS_MAX: Final = 20
EVIDENCE_LINES_MAX: Final = 50
EVIDENCE_WINDOW: Final = timedelta(days=3)
OCCURRED_FUTURE_SLACK: Final = timedelta(minutes=10)
_FIELDS: Final = frozenset(
    {
        "decision_number",
        "bank",
        "amount_vnd",
        "occurred_at",
        "bank_ref",
        "description",
        "payer_account",
    }
)


class DisputeStateError(ConflictError):
    """The dispute is not in a state that allows this (HTTP 409)."""

    code = "dispute_state"


def workflow_id_for(dispute_id: int) -> str:
    return f"dispute/{dispute_id}"


def refund_key_for(dispute_id: int) -> str:
    """The bank idempotency key of the refund of a debit the ledger never
    booked: derived from the dispute, so every retry is the same refund."""
    return f"dispute-{dispute_id}-refund"


# --- input ---------------------------------------------------------------------


def _optional_match(body: dict[str, Any], name: str, pattern: re.Pattern[str], hint: str) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not pattern.fullmatch(value.strip()):
        raise ValidationError(name, hint)
    return value.strip()


def parse_amount(value: object, field: str, max_amount_vnd: int) -> int:
    # bool is an int subclass; a float or a string is refused even if whole.
    if type(value) is not int:
        raise ValidationError(field, "must be a whole number of đồng as a JSON integer")
    if not 1 <= value <= max_amount_vnd:
        raise ValidationError(field, f"must be in 1..{max_amount_vnd}")
    return value


def parse_time(value: object, field: str, now: datetime) -> datetime:
    if not isinstance(value, str) or len(value) > 64:
        raise ValidationError(field, "must be an ISO 8601 time with a timezone")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValidationError(field, "must be an ISO 8601 time with a timezone") from None
    if moment.tzinfo is None:
        raise ValidationError(field, "needs a timezone, e.g. 2026-03-01T09:30:00+07:00")
    moment = moment.astimezone(UTC)
    if moment > now + OCCURRED_FUTURE_SLACK:
        raise ValidationError(field, "is in the future")
    return moment


@dataclass(frozen=True)
class DisputeInput:
    decision_number: str
    bank: str
    amount_vnd: int
    occurred_at: datetime
    description: str
    bank_ref: str | None = None
    payer_account: str | None = None

    @classmethod
    def from_json(
        cls, body: object, banks: list[str], max_amount_vnd: int, now: datetime
    ) -> DisputeInput:
        """Validate an API body; every problem names its field."""
        if not isinstance(body, dict):
            raise ValidationError("body", "must be a JSON object")
        unknown = sorted(set(body) - _FIELDS)
        if unknown:
            raise ValidationError(unknown[0], "is not a known field")
        number = body.get("decision_number")
        if not isinstance(number, str):
            raise ValidationError("decision_number", "is required (e.g. 01234/QĐ-XPHC)")
        normalise_decision_number(number)
        bank = body.get("bank")
        if not isinstance(bank, str) or bank not in banks:
            raise ValidationError("bank", f"must be one of: {', '.join(sorted(banks)) or '-'}")
        description = check_reason("description", body.get("description"), required=True)
        if len(description) > DESCRIPTION_CHARS_MAX:
            raise ValidationError("description", f"is over {DESCRIPTION_CHARS_MAX} characters")
        return cls(
            decision_number=number.strip(),
            bank=bank,
            amount_vnd=parse_amount(body.get("amount_vnd"), "amount_vnd", max_amount_vnd),
            occurred_at=parse_time(body.get("occurred_at"), "occurred_at", now),
            description=description,
            bank_ref=_optional_match(body, "bank_ref", BANK_REF_RE, "must be the bank's reference"),
            payer_account=_optional_match(
                body, "payer_account", ACCOUNT_RE, "must be 1-34 letters or digits"
            ),
        )


# --- the dispute ----------------------------------------------------------------


@dataclass(frozen=True)
class Dispute:
    id: int
    fine_id: int
    decision_number: str
    decision_key: str
    fine_amount_vnd: int
    bank: str
    amount_vnd: int
    occurred_at: datetime
    bank_ref: str | None
    payer_account: str | None
    description: str
    status: str
    opened_by: str
    opened_at: datetime
    updated_at: datetime
    approval_id: int | None
    resolution: str | None
    resolution_reason: str | None
    resolved_by: str | None
    resolved_at: datetime | None
    payment_id: UUID | None
    result: dict[str, Any] | None


_COLUMNS = (
    t.disputes,
    t.fines.c.decision_number,
    t.fines.c.decision_key,
    t.fines.c.amount_vnd.label("fine_amount_vnd"),
)


def _dispute(row: Any) -> Dispute:
    return Dispute(
        id=int(row.id),
        fine_id=int(row.fine_id),
        decision_number=row.decision_number,
        decision_key=row.decision_key,
        fine_amount_vnd=int(row.fine_amount_vnd),
        bank=row.bank,
        amount_vnd=int(row.amount_vnd),
        occurred_at=row.occurred_at,
        bank_ref=row.bank_ref,
        payer_account=row.payer_account,
        description=row.description,
        status=row.status,
        opened_by=row.opened_by,
        opened_at=row.opened_at,
        updated_at=row.updated_at,
        approval_id=int(row.approval_id) if row.approval_id is not None else None,
        resolution=row.resolution,
        resolution_reason=row.resolution_reason,
        resolved_by=row.resolved_by,
        resolved_at=row.resolved_at,
        payment_id=row.payment_id,
        result=dict(row.result) if row.result is not None else None,
    )


async def get_dispute(
    conn: AsyncConnection, dispute_id: int, *, for_update: bool = False
) -> Dispute:
    query = (
        select(*_COLUMNS)
        .join(t.fines, t.fines.c.id == t.disputes.c.fine_id)
        .where(t.disputes.c.id == dispute_id)
    )
    if for_update:
        query = query.with_for_update(of=t.disputes)
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise NotFoundError(f"no dispute {dispute_id}")
    return _dispute(row)


async def list_disputes(
    conn: AsyncConnection,
    *,
    status: str | None = None,
    bank: str | None = None,
    decision_number: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[Dispute]:
    """Oldest first, ``limit`` ≤ 500 from ``after_id`` (keyset paging)."""
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise ValidationError("limit", f"must be in 1..{LIST_LIMIT_MAX}")
    if status is not None and status not in DISPUTE_STATUSES:
        raise ValidationError("status", f"must be one of {', '.join(DISPUTE_STATUSES)}")
    query = (
        select(*_COLUMNS)
        .join(t.fines, t.fines.c.id == t.disputes.c.fine_id)
        .where(t.disputes.c.id > after_id)
        .order_by(t.disputes.c.id)
        .limit(limit)
    )
    if status is not None:
        query = query.where(t.disputes.c.status == status)
    if bank is not None:
        query = query.where(t.disputes.c.bank == bank)
    if decision_number is not None:
        key = normalise_decision_number(decision_number)
        query = query.where(t.fines.c.decision_key == key)
    return [_dispute(r) for r in (await conn.execute(query)).all()]


async def _audit(
    conn: AsyncConnection,
    dispute_id: int,
    action: str,
    actor: str,
    now: datetime,
    detail: dict[str, Any],
) -> AuditEntry:
    return await append_audit(
        conn,
        actor=actor,
        action=f"dispute.{action}",
        subject_type="dispute",
        subject_id=str(dispute_id),
        now=now,
        detail=detail,
    )


async def open_dispute(
    conn: AsyncConnection, inp: DisputeInput, opened_by: str, now: datetime
) -> Dispute:
    """Record a complaint. One unresolved dispute per bank debit (bank_ref)."""
    fine = await get_fine(conn, inp.decision_number)
    dispute_id = (
        await conn.execute(
            insert(t.disputes)
            .values(
                fine_id=fine.id,
                bank=inp.bank,
                amount_vnd=inp.amount_vnd,
                occurred_at=inp.occurred_at,
                bank_ref=inp.bank_ref,
                payer_account=inp.payer_account,
                description=inp.description,
                status="open",
                opened_by=opened_by,
                opened_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing()
            .returning(t.disputes.c.id)
        )
    ).scalar_one_or_none()
    if dispute_id is None:
        existing = (
            await conn.execute(
                select(t.disputes.c.id).where(
                    t.disputes.c.bank == inp.bank,
                    t.disputes.c.bank_ref == inp.bank_ref,
                    t.disputes.c.status.not_in(FINAL_STATUSES),
                )
            )
        ).scalar_one_or_none()
        raise DisputeStateError(
            f"dispute {existing} about {inp.bank} debit {inp.bank_ref} is still unresolved"
        )
    await _audit(
        conn,
        int(dispute_id),
        "opened",
        opened_by,
        now,
        {
            "decision_number": fine.decision_number,
            "bank": inp.bank,
            "amount_vnd": inp.amount_vnd,
            "occurred_at": inp.occurred_at.isoformat(),
            "bank_ref": inp.bank_ref,
            "payer_account": inp.payer_account,
            "description": inp.description,
        },
    )
    return await get_dispute(conn, int(dispute_id))


async def reject_dispute(
    conn: AsyncConnection, dispute_id: int, reason: str, rejected_by: str, now: datetime
) -> Dispute:
    """Close a complaint without moving money (no approval needed)."""
    reason = check_reason("reason", reason, required=True)
    dispute = await get_dispute(conn, dispute_id, for_update=True)
    if dispute.status == "rejected":
        return dispute
    if dispute.status != "open":
        raise DisputeStateError(f"dispute {dispute_id} is {dispute.status}, not open")
    await conn.execute(
        t.disputes.update()
        .where(t.disputes.c.id == dispute_id)
        .values(
            status="rejected",
            resolution="reject",
            resolution_reason=reason,
            resolved_by=rejected_by,
            resolved_at=now,
            updated_at=now,
        )
    )
    await _audit(conn, dispute_id, "rejected", rejected_by, now, {"reason": reason})
    return await get_dispute(conn, dispute_id)


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


async def _check_resolution(
    conn: AsyncConnection, dispute: Dispute, action: str, bank_ref: str, payer: str | None
) -> None:
    """Refuse a request that could not be carried out, before anyone approves it."""
    payment = await payment_for_debit(conn, dispute.bank, bank_ref)
    if payment is not None and payment.fine_id != dispute.fine_id:
        raise DisputeStateError(
            f"{dispute.bank} debit {bank_ref} paid fine {payment.decision_number}, "
            f"not {dispute.decision_number}"
        )
    if action == "confirm":
        if dispute.amount_vnd != dispute.fine_amount_vnd:
            raise DisputeStateError(
                f"the debit of {dispute.amount_vnd} đồng does not match the fine's "
                f"{dispute.fine_amount_vnd} đồng, so it cannot pay the fine: refund it"
            )
        if payment is None and payer is None:
            raise ValidationError(
                "payer_account",
                "is needed to book a debit the ledger has no record of "
                "(should it be a duplicate, it is refunded to this account)",
            )
        return
    if payment is None:
        if payer is None:
            raise ValidationError(
                "payer_account", "is needed to refund a debit the ledger has no record of"
            )
        return
    if payment.settles_fine:
        raise DisputeStateError(
            f"{dispute.bank} debit {bank_ref} paid the fine and has its receipt: "
            "it cannot be refunded"
        )
    if payment.status == "refunded":
        raise DisputeStateError(f"{dispute.bank} debit {bank_ref} was already refunded")
    if payment.status != "succeeded":
        raise DisputeStateError(
            f"{dispute.bank} debit {bank_ref} is still {payment.status}: wait for the bank"
        )


async def request_resolution(
    conn: AsyncConnection,
    dispute_id: int,
    action: str,
    reason: str,
    requested_by: str,
    now: datetime,
    *,
    bank_ref: str | None = None,
    payer_account: str | None = None,
) -> tuple[Dispute, ap.Approval]:
    """Ask for a confirm or refund; a second person must approve it. Asking
    again for the same action while it waits returns the same request."""
    assert action in APPROVAL_KIND, action
    dispute = await get_dispute(conn, dispute_id, for_update=True)
    kind = APPROVAL_KIND[action]
    if dispute.status == "awaiting_approval" and dispute.approval_id is not None:
        current = await ap.get_approval(conn, dispute.approval_id)
        if current.kind == kind and current.status == "pending":
            return dispute, current
    if dispute.status != "open":
        raise DisputeStateError(f"dispute {dispute_id} is {dispute.status}, not open")
    for name, given, known in (
        ("bank_ref", bank_ref, dispute.bank_ref),
        ("payer_account", payer_account, dispute.payer_account),
    ):
        if given is not None and known is not None and given != known:
            raise ValidationError(name, f"differs from the dispute's {known!r}")
    ref = bank_ref or dispute.bank_ref
    if ref is None:
        raise ValidationError(
            "bank_ref", f"the bank's reference of the debit is needed to {action}"
        )
    payer = payer_account or dispute.payer_account
    await _check_resolution(conn, dispute, action, ref, payer)
    payload = {
        "action": action,
        "bank": dispute.bank,
        "bank_ref": ref,
        "amount_vnd": dispute.amount_vnd,
        "decision_number": dispute.decision_number,
        "payer_account": payer,
    }
    approval = await ap.request_approval(
        conn,
        kind,
        "dispute",
        str(dispute_id),
        payload,
        reason,
        requested_by,
        now,
        workflow_id=workflow_id_for(dispute_id),
    )
    await conn.execute(
        t.disputes.update()
        .where(t.disputes.c.id == dispute_id)
        .values(
            status="awaiting_approval",
            approval_id=approval.id,
            bank_ref=ref,
            payer_account=payer,
            updated_at=now,
        )
    )
    await _audit(
        conn,
        dispute_id,
        "resolution_requested",
        requested_by,
        now,
        {"action": action, "approval_id": approval.id, "reason": approval.reason},
    )
    return await get_dispute(conn, dispute_id), approval


async def _reopen(
    conn: AsyncConnection,
    dispute: Dispute,
    approval: ap.Approval,
    cause: str,
    actor: str,
    now: datetime,
) -> None:
    if dispute.approval_id != approval.id or dispute.status not in (
        "awaiting_approval",
        "executing",
    ):
        return
    await conn.execute(
        t.disputes.update()
        .where(t.disputes.c.id == dispute.id)
        .values(status="open", updated_at=now)
    )
    await _audit(
        conn,
        dispute.id,
        "reopened",
        actor,
        now,
        {"approval_id": approval.id, "approval_status": approval.status, "cause": cause},
    )


async def decide_approval(
    conn: AsyncConnection,
    approval_id: int,
    approve: bool,
    decided_by: str,
    reason: str | None,
    now: datetime,
) -> ap.Approval:
    """``approvals.decide`` plus what the decision means for a dispute: an
    approved confirm/refund is executing, a rejected one leaves the dispute
    open again. Any other kind of approval is only decided here."""
    peek = await ap.get_approval(conn, approval_id)
    dispute = None
    if peek.subject_type == "dispute":
        dispute = await get_dispute(conn, int(peek.subject_id), for_update=True)
    approval = await ap.decide(conn, approval_id, approve, decided_by, reason, now)
    if dispute is None:
        return approval
    if not approve:
        await _reopen(conn, dispute, approval, "the approval was rejected", decided_by, now)
    elif dispute.approval_id == approval.id and dispute.status == "awaiting_approval":
        await conn.execute(
            t.disputes.update()
            .where(t.disputes.c.id == dispute.id)
            .values(status="executing", updated_at=now)
        )
    return approval


async def expire_approval(
    conn: AsyncConnection, dispute_id: int, approval_id: int, now: datetime
) -> ap.Approval:
    """Nobody decided in time: the request expires and the dispute is open
    again. A decision made meanwhile stands (returned as it is)."""
    dispute = await get_dispute(conn, dispute_id, for_update=True)
    approval = await ap.expire(conn, approval_id, now)
    if approval.status == "expired":
        await _reopen(conn, dispute, approval, "nobody decided in time", ap.SYSTEM_TIMEOUT, now)
    return approval


async def complete(
    conn: AsyncConnection,
    dispute_id: int,
    approval_id: int,
    outcome: str,
    payment_id: UUID | None,
    result: dict[str, Any],
    now: datetime,
    actor: str,
) -> Dispute:
    """The approved resolution was carried out: the dispute is final."""
    assert outcome in ("confirmed", "refunded"), outcome
    dispute = await get_dispute(conn, dispute_id, for_update=True)
    approval = await ap.mark_executed(conn, approval_id, result, now, actor)
    if dispute.status in FINAL_STATUSES:
        return dispute
    await conn.execute(
        t.disputes.update()
        .where(t.disputes.c.id == dispute_id)
        .values(
            status=outcome,
            resolution=approval.payload.get("action"),
            resolution_reason=approval.reason,
            resolved_by=approval.requested_by,
            resolved_at=now,
            payment_id=payment_id,
            result={**result, "approved_by": approval.decided_by},
            updated_at=now,
        )
    )
    await _audit(
        conn,
        dispute_id,
        outcome,
        actor,
        now,
        {
            "approval_id": approval_id,
            "payment_id": str(payment_id) if payment_id else None,
            **result,
        },
    )
    return await get_dispute(conn, dispute_id)


async def fail(
    conn: AsyncConnection,
    dispute_id: int,
    approval_id: int,
    reason: str,
    now: datetime,
    actor: str,
) -> Dispute:
    """The approved resolution could not be carried out: finance must look
    again (the dispute is open, the approval failed)."""
    dispute = await get_dispute(conn, dispute_id, for_update=True)
    approval = await ap.mark_failed(conn, approval_id, {"error": reason[:1000]}, now, actor)
    await _reopen(conn, dispute, approval, f"execution failed: {reason[:500]}", actor, now)
    return await get_dispute(conn, dispute_id)


async def _suspense_entry(
    conn: AsyncConnection, bank: str, bank_ref: str
) -> tuple[int, int] | None:
    """(entry id, amount in clearing) of the debit's suspense entry, if any."""
    row = (
        await conn.execute(
            text(
                "SELECT e.id, p.amount_vnd FROM journal_entries e "
                "JOIN postings p ON p.entry_id = e.id "
                "JOIN accounts a ON a.id = p.account_id AND a.code = :clearing "
                "WHERE e.idempotency_key = :key"
            ),
            {"key": suspense_key(bank, bank_ref), "clearing": bank_clearing_account(bank)},
        )
    ).one_or_none()
    return (int(row.id), int(row.amount_vnd)) if row is not None else None


async def check_unbooked_refund(conn: AsyncConnection, dispute: Dispute) -> None:
    """Before refunding a debit the ledger has no payment for: if
    reconciliation already holds it in suspense, it must be this amount."""
    assert dispute.bank_ref is not None
    held = await _suspense_entry(conn, dispute.bank, dispute.bank_ref)
    if held is not None and held[1] != dispute.amount_vnd:
        raise DisputeStateError(
            f"the statement shows {held[1]} đồng for {dispute.bank} debit {dispute.bank_ref}, "
            f"not {dispute.amount_vnd}: the refund was not sent"
        )


async def book_unrecorded_refund(
    conn: AsyncConnection, dispute: Dispute, refund_ref: str, now: datetime, actor: str
) -> None:
    """Book the refund of a bank debit no payment books: the debit is held in
    suspense (as reconciliation does with money nobody identified; if it did
    already, that entry is reused), and the refund takes it out of suspense.
    Idempotent (entry keys)."""
    assert dispute.bank_ref is not None
    clearing = bank_clearing_account(dispute.bank)
    amount = dispute.amount_vnd
    meta = {"bank": dispute.bank, "bank_ref": dispute.bank_ref, "dispute_id": dispute.id}
    await post_entry(
        conn,
        EntryRequest(
            idempotency_key=suspense_key(dispute.bank, dispute.bank_ref),
            kind="suspense",
            description=f"disputed debit {dispute.bank_ref} (dispute {dispute.id})",
            postings=(Posting(clearing, amount), Posting(SUSPENSE_ACCOUNT, -amount)),
            metadata=meta,
        ),
    )
    refund = await post_entry(
        conn,
        EntryRequest(
            idempotency_key=f"dispute:{dispute.id}:refund",
            kind="refund",
            description=f"refund of disputed debit {dispute.bank_ref} (dispute {dispute.id})",
            postings=(Posting(SUSPENSE_ACCOUNT, amount), Posting(clearing, -amount)),
            metadata={**meta, "refund_ref": refund_ref},
        ),
    )
    if refund.created:
        await _audit(
            conn,
            dispute.id,
            "refund_booked",
            actor,
            now,
            {
                "bank": dispute.bank,
                "bank_ref": dispute.bank_ref,
                "refund_ref": refund_ref,
                "amount_vnd": amount,
            },
        )


async def release_suspense(
    conn: AsyncConnection, dispute: Dispute, now: datetime, actor: str
) -> bool:
    """The confirmed debit is now booked by its payment: if reconciliation
    had put it in suspense meanwhile, reverse that entry (once)."""
    if dispute.bank_ref is None:
        return False
    held = await _suspense_entry(conn, dispute.bank, dispute.bank_ref)
    if held is None:
        return False
    released = await reverse_entry(
        conn,
        held[0],
        f"suspense-release:{dispute.bank}:{dispute.bank_ref}",
        f"disputed debit {dispute.bank_ref} booked by its payment (dispute {dispute.id})",
    )
    if released.created:
        await _audit(
            conn,
            dispute.id,
            "suspense_released",
            actor,
            now,
            {"bank": dispute.bank, "bank_ref": dispute.bank_ref, "amount_vnd": held[1]},
        )
    return released.created


# --- evidence from the ledger -----------------------------------------------------


@dataclass(frozen=True)
class StatementLineEvidence:
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


@dataclass(frozen=True)
class LedgerEvidence:
    fine: Fine
    fine_status: str
    payments: tuple[pay.PaymentView, ...]
    debit_payment: pay.Payment | None  # the payment booking the disputed bank_ref
    statement_lines: tuple[StatementLineEvidence, ...]


_LINES_SQL = text(
    """
    SELECT sl.id, sl.bank, sl.bank_ref, sl.booked_at, sl.amount_vnd, sl.direction,
           sl.counterparty, sl.content, sl.class AS line_class, sl.payment_id,
           CASE WHEN sl.bank = :bank AND sl.bank_ref = :bank_ref THEN 'bank_ref'
                WHEN sl.fine_id = :fine_id THEN 'fine'
                ELSE 'decision_and_amount' END AS matched_by
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
    lines = tuple(
        StatementLineEvidence(
            id=int(r.id),
            bank=r.bank,
            bank_ref=r.bank_ref,
            booked_at=r.booked_at,
            amount_vnd=int(r.amount_vnd),
            direction=r.direction,
            counterparty=r.counterparty,
            content=r.content,
            line_class=r.line_class,
            payment_id=r.payment_id,
            matched_by=r.matched_by,
        )
        for r in rows
    )
    return LedgerEvidence(fine, await fine_status(conn, fine.id), tuple(views), debit, lines)


async def history(conn: AsyncConnection, dispute_id: int) -> list[AuditEntry]:
    """The dispute's audit rows and those of its approvals, oldest first."""
    approvals = await ap.list_approvals(
        conn, subject_type="dispute", subject_id=str(dispute_id), limit=LIST_LIMIT_MAX
    )
    subjects = [("dispute", str(dispute_id))] + [("approval", str(a.id)) for a in approvals]
    return await audit_trail(conn, subjects)
