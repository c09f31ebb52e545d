"""The dispute record: its statuses and actions, the ``Dispute`` row (with
its fine), opening and rejecting one, listing them, and its history (the
audit log, subject ``dispute``, with that of its approvals).

Every function runs in the caller's transaction (the caller commits).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import approvals as ap
from ledger.core import tables as t
from ledger.core.audit import AuditEntry, append_audit, audit_trail
from ledger.core.checks import check_choice, check_limit, check_reason
from ledger.core.errors import ConflictError
from ledger.core.paging import LIST_LIMIT_MAX, keyset_page
from ledger.core.rows import columns, one_row, row_mapper
from ledger.disputes.input import DisputeInput
from ledger.fines import get_fine, normalise_decision_number


class DisputeStatus(StrEnum):
    OPEN = "open"
    AWAITING_APPROVAL = "awaiting_approval"
    EXECUTING = "executing"
    CONFIRMED = "confirmed"
    REFUNDED = "refunded"
    REJECTED = "rejected"


class DisputeAction(StrEnum):
    """What finance can do about a complaint (``disputes.resolution``)."""

    CONFIRM = "confirm"  # the debit paid the fine: book it, issue the receipt
    REFUND = "refund"  # give the money back
    REJECT = "reject"  # nothing to do, no money moves


# Of the dispute's audit entries and of its approvals.
SUBJECT_TYPE: Final = "dispute"
DISPUTE_STATUSES: Final = tuple(status.value for status in DisputeStatus)
FINAL_STATUSES: Final = (
    DisputeStatus.CONFIRMED,
    DisputeStatus.REFUNDED,
    DisputeStatus.REJECTED,
)
ACTIONS: Final = tuple(action.value for action in DisputeAction)
# The actions that move money, and the approval each needs.
APPROVAL_KIND: Final[dict[str, ap.ApprovalKind]] = {
    DisputeAction.CONFIRM: ap.ApprovalKind.DISPUTE_CONFIRM,
    DisputeAction.REFUND: ap.ApprovalKind.DISPUTE_REFUND,
}


class DisputeStateError(ConflictError):
    """The dispute is not in a state that allows this (HTTP 409)."""

    code = "dispute_state"
    non_retryable = True


def workflow_id_for(dispute_id: int) -> str:
    return f"dispute/{dispute_id}"


def refund_key_for(dispute_id: int) -> str:
    """The bank idempotency key of the refund of a debit the ledger never
    booked: derived from the dispute, so every retry is the same refund."""
    return f"dispute-{dispute_id}-refund"


@dataclass(frozen=True)
class Dispute:
    """A ``disputes`` row with its fine's decision number and amount."""

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
    contact_phone: str | None
    contact_email: str | None
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


_SELECT: Final = select(
    *columns(
        Dispute,
        t.disputes,
        decision_number=t.fines.c.decision_number,
        decision_key=t.fines.c.decision_key,
        fine_amount_vnd=t.fines.c.amount_vnd,
    )
).join(t.fines, t.fines.c.id == t.disputes.c.fine_id)
_dispute: Final = row_mapper(Dispute)


async def get_dispute(
    conn: AsyncConnection, dispute_id: int, *, for_update: bool = False
) -> Dispute:
    query = _SELECT.where(t.disputes.c.id == dispute_id)
    if for_update:
        query = query.with_for_update(of=t.disputes)
    return await one_row(conn, query, _dispute, f"no dispute {dispute_id}")


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
    check_limit(limit, LIST_LIMIT_MAX)
    if status is not None:
        check_choice("status", status, DISPUTE_STATUSES)
    key = normalise_decision_number(decision_number) if decision_number is not None else None
    query = keyset_page(
        _SELECT,
        t.disputes.c.id,
        after_id=after_id,
        limit=limit,
        filters=(
            (t.disputes.c.status, status),
            (t.disputes.c.bank, bank),
            (t.fines.c.decision_key, key),
        ),
    )
    return [_dispute(r) for r in (await conn.execute(query)).all()]


async def audit_dispute(
    conn: AsyncConnection,
    dispute_id: int,
    action: str,
    actor: str,
    now: datetime,
    detail: dict[str, Any],
) -> AuditEntry:
    """The dispute's audit entry ``dispute.<action>``: a step of its history."""
    return await append_audit(
        conn,
        actor=actor,
        action=f"dispute.{action}",
        subject_type=SUBJECT_TYPE,
        subject_id=str(dispute_id),
        now=now,
        detail=detail,
    )


async def set_status(
    conn: AsyncConnection, dispute_id: int, status: DisputeStatus, now: datetime, **values: Any
) -> None:
    """Move the (locked) dispute to ``status``, with other ``values``."""
    await conn.execute(
        t.disputes.update()
        .where(t.disputes.c.id == dispute_id)
        .values(status=status, updated_at=now, **values)
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
                contact_phone=inp.contact_phone,
                contact_email=inp.contact_email,
                status=DisputeStatus.OPEN,
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
    detail = {
        "decision_number": fine.decision_number,
        "bank": inp.bank,
        "amount_vnd": inp.amount_vnd,
        "occurred_at": inp.occurred_at.isoformat(),
        "bank_ref": inp.bank_ref,
        "payer_account": inp.payer_account,
        "description": inp.description,
        # Which kinds, never the contact itself: the chain keeps what it
        # holds for good, a citizen's phone number need not be there.
        "contact": inp.contact_given,
    }
    await audit_dispute(conn, int(dispute_id), "opened", opened_by, now, detail)
    return await get_dispute(conn, int(dispute_id))


async def reject_dispute(
    conn: AsyncConnection, dispute_id: int, reason: str, rejected_by: str, now: datetime
) -> Dispute:
    """Close a complaint without moving money (no approval needed)."""
    reason = check_reason("reason", reason, required=True)
    dispute = await get_dispute(conn, dispute_id, for_update=True)
    if dispute.status == DisputeStatus.REJECTED:
        return dispute
    if dispute.status != DisputeStatus.OPEN:
        raise DisputeStateError(f"dispute {dispute_id} is {dispute.status}, not open")
    await set_status(
        conn,
        dispute_id,
        DisputeStatus.REJECTED,
        now,
        resolution=DisputeAction.REJECT,
        resolution_reason=reason,
        resolved_by=rejected_by,
        resolved_at=now,
    )
    await audit_dispute(conn, dispute_id, "rejected", rejected_by, now, {"reason": reason})
    return await get_dispute(conn, dispute_id)


async def history(conn: AsyncConnection, dispute_id: int) -> list[AuditEntry]:
    """The dispute's audit rows and those of its approvals, oldest first."""
    approvals = await ap.list_approvals(
        conn, subject_type=SUBJECT_TYPE, subject_id=str(dispute_id), limit=LIST_LIMIT_MAX
    )
    subjects = [(SUBJECT_TYPE, str(dispute_id))]
    subjects += [(ap.SUBJECT_TYPE, str(a.id)) for a in approvals]
    return await audit_trail(conn, subjects)
