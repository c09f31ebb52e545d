"""Maker-checker approvals: a money movement or manual decision that one
person requests and a different person approves or rejects.

Lifecycle::

    pending ─┬─> approved ─┬─> executed
             ├─> rejected  └─> failed
             └─> expired

Whoever requested an approval can never decide it (``SameApproverError``,
checked here and by a database constraint). A second request for the same
kind and subject while one is open (pending or approved) returns the open one.
Every step appends to the audit log in the caller's transaction; the caller
commits.

Who executes an approved request is up to the requester's module: it either
polls (``list_approvals(status="approved", kind=...)``) or sets
``workflow_id`` when requesting, and the API's approve/reject endpoints then
signal that workflow ``decision`` with the approval id (the workflow must
re-read the approval here: the database, not the signal, is the truth).
Either way it records the outcome with ``mark_executed`` / ``mark_failed``.

Lock order: callers that also lock their subject's row (a dispute, a
discrepancy) lock it *before* calling ``decide`` / ``request_approval``,
because those append to the audit log (a global lock held until commit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t
from ledger.core.audit import append_audit, check_json_value
from ledger.core.errors import ConflictError, LedgerError, NotFoundError, ValidationError

APPROVAL_KINDS: Final = ("refund", "manual_match", "dispute_confirm", "dispute_refund")
APPROVAL_STATUSES: Final = ("pending", "approved", "rejected", "expired", "executed", "failed")
OPEN_STATUSES: Final = ("pending", "approved")
REASON_CHARS_MAX: Final = 2_000
PAYLOAD_BYTES_MAX: Final = 16 * 1024
LIST_LIMIT_MAX: Final = 500
SYSTEM_TIMEOUT: Final = "system:timeout"


class SameApproverError(LedgerError):
    """The person who requested an approval tried to decide it (HTTP 403)."""

    code = "same_approver"


class ApprovalNotPendingError(ConflictError):
    """The approval was already decided, expired or executed (HTTP 409)."""

    code = "approval_not_pending"
    non_retryable = True


@dataclass(frozen=True)
class Approval:
    id: int
    kind: str
    subject_type: str
    subject_id: str
    payload: dict[str, Any]
    reason: str
    requested_by: str
    requested_at: datetime
    status: str
    decided_by: str | None
    decided_at: datetime | None
    decision_reason: str | None
    executed_at: datetime | None
    result: dict[str, Any] | None
    workflow_id: str | None

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES


def _approval(row: Any) -> Approval:
    return Approval(
        id=int(row.id),
        kind=row.kind,
        subject_type=row.subject_type,
        subject_id=row.subject_id,
        payload=dict(row.payload),
        reason=row.reason,
        requested_by=row.requested_by,
        requested_at=row.requested_at,
        status=row.status,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_reason=row.decision_reason,
        executed_at=row.executed_at,
        result=dict(row.result) if row.result is not None else None,
        workflow_id=row.workflow_id,
    )


def check_reason(field: str, reason: object, *, required: bool) -> str:
    """A human's free-text reason: bounded, printable (newlines allowed)."""
    if reason is None:
        reason = ""
    if not isinstance(reason, str):
        raise ValidationError(field, "must be a string")
    reason = reason.strip()
    if required and not reason:
        raise ValidationError(field, "is required: say why")
    if len(reason) > REASON_CHARS_MAX:
        raise ValidationError(field, f"is longer than {REASON_CHARS_MAX} characters")
    if any(ord(c) < 32 and c not in "\n\t" for c in reason):
        raise ValidationError(field, "contains control characters")
    return reason


def _audit_view(approval: Approval) -> dict[str, Any]:
    return {
        "approval_id": approval.id,
        "kind": approval.kind,
        "subject_type": approval.subject_type,
        "subject_id": approval.subject_id,
    }


async def get_approval(
    conn: AsyncConnection, approval_id: int, *, for_update: bool = False
) -> Approval:
    query = select(t.approvals).where(t.approvals.c.id == approval_id)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise NotFoundError(f"no approval {approval_id}")
    return _approval(row)


async def open_approval_for(
    conn: AsyncConnection, kind: str, subject_type: str, subject_id: str
) -> Approval | None:
    """The pending or approved request of this kind for this subject, if any."""
    row = (
        await conn.execute(
            select(t.approvals).where(
                t.approvals.c.kind == kind,
                t.approvals.c.subject_type == subject_type,
                t.approvals.c.subject_id == subject_id,
                t.approvals.c.status.in_(OPEN_STATUSES),
            )
        )
    ).one_or_none()
    return _approval(row) if row is not None else None


async def request_approval(
    conn: AsyncConnection,
    kind: str,
    subject_type: str,
    subject_id: str,
    payload: dict[str, Any],
    reason: str,
    requested_by: str,
    now: datetime,
    *,
    workflow_id: str | None = None,
) -> Approval:
    """Ask for a second person's approval, or return the open request of
    this kind for this subject (whoever asked first stays the requester)."""
    if kind not in APPROVAL_KINDS:
        raise ValidationError("kind", f"must be one of {', '.join(APPROVAL_KINDS)}")
    reason = check_reason("reason", reason, required=True)
    if not 1 <= len(requested_by) <= 200:
        raise ValidationError("requested_by", "must be 1..200 characters")
    try:
        check_json_value(payload, "payload")
    except ValueError as err:
        raise ValidationError("payload", str(err)) from None
    if len(json.dumps(payload).encode()) > PAYLOAD_BYTES_MAX:
        raise ValidationError("payload", f"is larger than {PAYLOAD_BYTES_MAX} bytes")
    for _ in range(3):  # the open one may close between our insert and read
        inserted = (
            await conn.execute(
                insert(t.approvals)
                .values(
                    kind=kind,
                    subject_type=subject_type,
                    subject_id=subject_id,
                    payload=payload,
                    reason=reason,
                    requested_by=requested_by,
                    requested_at=now,
                    status="pending",
                    workflow_id=workflow_id,
                )
                .on_conflict_do_nothing(
                    index_elements=["kind", "subject_type", "subject_id"],
                    index_where=t.approvals.c.status.in_(OPEN_STATUSES),
                )
                .returning(t.approvals)
            )
        ).one_or_none()
        if inserted is not None:
            approval = _approval(inserted)
            await append_audit(
                conn,
                actor=requested_by,
                action="approval.requested",
                subject_type="approval",
                subject_id=str(approval.id),
                now=now,
                detail={**_audit_view(approval), "reason": reason, "payload": payload},
            )
            return approval
        existing = await open_approval_for(conn, kind, subject_type, subject_id)
        if existing is not None:
            return existing
    raise ConflictError(f"could not open an approval for {subject_type} {subject_id}; try again")


async def decide(
    conn: AsyncConnection,
    approval_id: int,
    approve: bool,
    decided_by: str,
    reason: str | None,
    now: datetime,
) -> Approval:
    """Approve or reject a pending request. The requester can never decide
    (``SameApproverError``); a decided, expired or executed request is
    refused (``ApprovalNotPendingError``). A rejection needs a reason."""
    current = await get_approval(conn, approval_id, for_update=True)
    if decided_by == current.requested_by:
        raise SameApproverError(
            f"approval {approval_id} was requested by {decided_by}; "
            "a different person must approve or reject it"
        )
    if current.status != "pending":
        raise ApprovalNotPendingError(f"approval {approval_id} is already {current.status}")
    text_reason = check_reason("reason", reason, required=not approve)
    status = "approved" if approve else "rejected"
    row = (
        await conn.execute(
            t.approvals.update()
            .where(t.approvals.c.id == approval_id)
            .values(
                status=status,
                decided_by=decided_by,
                decided_at=now,
                decision_reason=text_reason or None,
            )
            .returning(t.approvals)
        )
    ).one()
    approval = _approval(row)
    await append_audit(
        conn,
        actor=decided_by,
        action=f"approval.{status}",
        subject_type="approval",
        subject_id=str(approval_id),
        now=now,
        detail={
            **_audit_view(approval),
            "requested_by": approval.requested_by,
            "reason": text_reason,
        },
    )
    return approval


async def expire(
    conn: AsyncConnection, approval_id: int, now: datetime, actor: str = SYSTEM_TIMEOUT
) -> Approval:
    """Expire a request nobody decided in time. Returns the approval as it
    now is: a request decided meanwhile keeps its decision."""
    current = await get_approval(conn, approval_id, for_update=True)
    if current.status != "pending":
        return current
    row = (
        await conn.execute(
            t.approvals.update()
            .where(t.approvals.c.id == approval_id)
            .values(status="expired", decided_at=now)
            .returning(t.approvals)
        )
    ).one()
    approval = _approval(row)
    await append_audit(
        conn,
        actor=actor,
        action="approval.expired",
        subject_type="approval",
        subject_id=str(approval_id),
        now=now,
        detail={**_audit_view(approval), "requested_at": approval.requested_at.isoformat()},
    )
    return approval


async def _finish(
    conn: AsyncConnection,
    approval_id: int,
    status: str,
    result: dict[str, Any],
    now: datetime,
    actor: str,
) -> Approval:
    current = await get_approval(conn, approval_id, for_update=True)
    if current.status == status:
        return current
    if current.status != "approved":
        raise ApprovalNotPendingError(
            f"approval {approval_id} is {current.status}, not approved: it cannot be {status}"
        )
    row = (
        await conn.execute(
            t.approvals.update()
            .where(t.approvals.c.id == approval_id)
            .values(status=status, executed_at=now, result=result)
            .returning(t.approvals)
        )
    ).one()
    approval = _approval(row)
    await append_audit(
        conn,
        actor=actor,
        action=f"approval.{status}",
        subject_type="approval",
        subject_id=str(approval_id),
        now=now,
        detail={**_audit_view(approval), "result": result},
    )
    return approval


async def mark_executed(
    conn: AsyncConnection,
    approval_id: int,
    result: dict[str, Any],
    now: datetime,
    actor: str,
) -> Approval:
    """Record that an approved request was carried out (idempotent)."""
    return await _finish(conn, approval_id, "executed", result, now, actor)


async def mark_failed(
    conn: AsyncConnection,
    approval_id: int,
    result: dict[str, Any],
    now: datetime,
    actor: str,
) -> Approval:
    """Record that an approved request could not be carried out (idempotent)."""
    return await _finish(conn, approval_id, "failed", result, now, actor)


async def list_approvals(
    conn: AsyncConnection,
    *,
    status: str | None = None,
    kind: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    after_id: int = 0,
    limit: int = 100,
) -> list[Approval]:
    """Oldest first, ``limit`` ≤ 500 from ``after_id`` (keyset paging)."""
    if not 1 <= limit <= LIST_LIMIT_MAX:
        raise ValidationError("limit", f"must be in 1..{LIST_LIMIT_MAX}")
    if status is not None and status not in APPROVAL_STATUSES:
        raise ValidationError("status", f"must be one of {', '.join(APPROVAL_STATUSES)}")
    if kind is not None and kind not in APPROVAL_KINDS:
        raise ValidationError("kind", f"must be one of {', '.join(APPROVAL_KINDS)}")
    a = t.approvals
    query = select(a).where(a.c.id > after_id).order_by(a.c.id).limit(limit)
    if status is not None:
        query = query.where(a.c.status == status)
    if kind is not None:
        query = query.where(a.c.kind == kind)
    if subject_type is not None:
        query = query.where(a.c.subject_type == subject_type)
    if subject_id is not None:
        query = query.where(a.c.subject_id == subject_id)
    return [_approval(r) for r in (await conn.execute(query)).all()]
