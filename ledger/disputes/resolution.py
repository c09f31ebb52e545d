"""Resolving a dispute with maker-checker: confirm and refund move money, so
one person asks (``request_resolution``) and another decides
(``decide_approval``, or nobody in time: ``expire_approval``); the
``DisputeWorkflow`` carries out an approved one and records the outcome
(``complete``, ``fail``).

Lifecycle::

    open ─┬─> rejected                         (finance, with a reason)
          └─> awaiting_approval ─┬─> executing ─┬─> confirmed   (receipted)
                    ^            │              ├─> refunded
                    │            │              └─> open        (execution failed)
                    └── open <───┴─ (approval rejected or expired)

Every function runs in the caller's transaction. Lock order (see
``ledger.core.audit``): the dispute row, then its approval, then payments;
the audit head last.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from ledger import payments as pay
from ledger.core import approvals as ap
from ledger.core.errors import ValidationError
from ledger.disputes.bank_record import check_amount, known_debit_record
from ledger.disputes.evidence import payment_for_debit
from ledger.disputes.record import (
    APPROVAL_KIND,
    FINAL_STATUSES,
    SUBJECT_TYPE,
    Dispute,
    DisputeAction,
    DisputeStateError,
    DisputeStatus,
    audit_dispute,
    get_dispute,
    set_status,
    workflow_id_for,
)
from ledger.reconciliation.discrepancies import check_decider


def _check_confirm(dispute: Dispute, amount_vnd: int) -> None:
    if amount_vnd != dispute.fine_amount_vnd:
        raise DisputeStateError(
            f"the debit of {amount_vnd} đồng does not match the fine's "
            f"{dispute.fine_amount_vnd} đồng, so it cannot pay the fine: refund it"
        )


def _check_refund(dispute: Dispute, payment: pay.Payment | None, bank_ref: str) -> None:
    if payment is None:
        return
    if payment.settles_fine:
        raise DisputeStateError(
            f"{dispute.bank} debit {bank_ref} paid the fine and has its receipt: "
            "it cannot be refunded"
        )
    if payment.status == pay.PaymentStatus.REFUNDED:
        raise DisputeStateError(f"{dispute.bank} debit {bank_ref} was already refunded")
    if payment.status != pay.PaymentStatus.SUCCEEDED:
        raise DisputeStateError(
            f"{dispute.bank} debit {bank_ref} is still {payment.status}: wait for the bank"
        )


async def _bank_side(
    conn: AsyncConnection, dispute: Dispute, action: str, bank_ref: str
) -> tuple[int, str | None]:
    """Refuse a request that could not be carried out, before anyone approves
    it; the amount and payer the request names: the bank's, when the ledger
    knows its record (a booked payment, or the bank's statement line), else
    the complaint's amount and no payer (the workflow asks the bank before
    anything moves, and moves nothing on another amount)."""
    payment = await payment_for_debit(conn, dispute.bank, bank_ref)
    if payment is not None and payment.fine_id != dispute.fine_id:
        raise DisputeStateError(
            f"{dispute.bank} debit {bank_ref} paid fine {payment.decision_number}, "
            f"not {dispute.decision_number}"
        )
    amount, payer = dispute.amount_vnd, None
    if payment is not None:
        amount, payer = payment.amount_vnd, payment.payer_account
    else:
        record = await known_debit_record(conn, dispute, bank_ref)
        if record is not None:
            check_amount(dispute, record)
            amount, payer = record.amount_vnd, record.payer_account
    if action == DisputeAction.CONFIRM:
        _check_confirm(dispute, amount)
    else:
        _check_refund(dispute, payment, bank_ref)
    return amount, payer


def _debit_of(
    dispute: Dispute, action: str, bank_ref: str | None, payer_account: str | None
) -> tuple[str, str | None]:
    """The bank reference of the debit to resolve (as given, or as the
    complaint said), and the payer account typed (kept as the complaint's
    word only: money goes where the bank says); given ones must not
    contradict the complaint."""
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
    return ref, payer_account or dispute.payer_account


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
    if dispute.status == DisputeStatus.AWAITING_APPROVAL and dispute.approval_id is not None:
        current = await ap.get_approval(conn, dispute.approval_id)
        if current.kind == kind and current.status == ap.ApprovalStatus.PENDING:
            return dispute, current
    if dispute.status != DisputeStatus.OPEN:
        raise DisputeStateError(f"dispute {dispute_id} is {dispute.status}, not open")
    ref, typed_payer = _debit_of(dispute, action, bank_ref, payer_account)
    amount, payer = await _bank_side(conn, dispute, action, ref)
    payload = {
        "action": action,
        "bank": dispute.bank,
        "bank_ref": ref,
        "amount_vnd": amount,
        "decision_number": dispute.decision_number,
        # The bank's (None: not known yet; the workflow asks the bank).
        "payer_account": payer,
    }
    approval = await ap.request_approval(
        conn,
        kind,
        SUBJECT_TYPE,
        str(dispute_id),
        payload,
        reason,
        requested_by,
        now,
        workflow_id=workflow_id_for(dispute_id),
    )
    await set_status(
        conn,
        dispute_id,
        DisputeStatus.AWAITING_APPROVAL,
        now,
        approval_id=approval.id,
        bank_ref=ref,
        payer_account=typed_payer,
    )
    detail = {"action": action, "approval_id": approval.id, "reason": approval.reason}
    await audit_dispute(conn, dispute_id, "resolution_requested", requested_by, now, detail)
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
        DisputeStatus.AWAITING_APPROVAL,
        DisputeStatus.EXECUTING,
    ):
        return
    await set_status(conn, dispute.id, DisputeStatus.OPEN, now)
    detail = {"approval_id": approval.id, "approval_status": approval.status, "cause": cause}
    await audit_dispute(conn, dispute.id, "reopened", actor, now, detail)


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
    # Whoever uploaded a statement line can no more approve a request about
    # it than the requester can.
    check_decider(peek, decided_by)
    dispute = None
    if peek.subject_type == SUBJECT_TYPE:
        dispute = await get_dispute(conn, int(peek.subject_id), for_update=True)
    approval = await ap.decide(conn, approval_id, approve, decided_by, reason, now)
    if dispute is None:
        return approval
    if not approve:
        await _reopen(conn, dispute, approval, "the approval was rejected", decided_by, now)
    elif dispute.approval_id == approval.id and dispute.status == DisputeStatus.AWAITING_APPROVAL:
        await set_status(conn, dispute.id, DisputeStatus.EXECUTING, now)
    return approval


async def expire_approval(
    conn: AsyncConnection, dispute_id: int, approval_id: int, now: datetime
) -> ap.Approval:
    """Nobody decided in time: the request expires and the dispute is open
    again. A decision made meanwhile stands (returned as it is)."""
    dispute = await get_dispute(conn, dispute_id, for_update=True)
    approval = await ap.expire(conn, approval_id, now)
    if approval.status == ap.ApprovalStatus.EXPIRED:
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
    assert outcome in (DisputeStatus.CONFIRMED, DisputeStatus.REFUNDED), outcome
    dispute = await get_dispute(conn, dispute_id, for_update=True)
    approval = await ap.mark_executed(conn, approval_id, result, now, actor)
    if dispute.status in FINAL_STATUSES:
        return dispute
    await set_status(
        conn,
        dispute_id,
        DisputeStatus(outcome),
        now,
        resolution=approval.payload.get("action"),
        resolution_reason=approval.reason,
        resolved_by=approval.requested_by,
        resolved_at=now,
        payment_id=payment_id,
        result={**result, "approved_by": approval.decided_by},
    )
    detail = {
        "approval_id": approval_id,
        "payment_id": str(payment_id) if payment_id else None,
        **result,
    }
    await audit_dispute(conn, dispute_id, outcome, actor, now, detail)
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
