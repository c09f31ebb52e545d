"""Maker-checker approvals: a money movement or manual decision that one
person requests and a different person approves or rejects.

Lifecycle::

    pending ─┬─> approved ─┬─> executed
             ├─> rejected  └─> failed
             └─> expired

Requester and decider are people: their usernames (``ledger.core.actors``),
never a token's name, so one person holding two tokens is still one person
and an admin is too. A service account or the system can neither request nor
decide (``PersonRequiredError``). Whoever requested an approval can never
decide it (``SameApproverError``, checked here and by a database
constraint). A decision's reason is checked before anything else, and a
refused decision writes nothing, not even an audit row. A second request for
the same kind and subject while one is open (pending or approved) returns
the open one. Every step appends to the audit log in the caller's
transaction; the caller commits.

Who executes an approved request is up to the requester's module: it either
polls (``list_approvals(status="approved", kind=...)``) or sets
``workflow_id`` when requesting, and the API's approve/reject endpoints then
signal that workflow ``decision`` with the approval id (the workflow must
re-read the approval here: the database, not the signal, is the truth).
Either way it records the outcome with ``finish``: ``mark_executed`` and
``mark_failed`` are its two outcomes.

Lock order: callers that also lock their subject's row (a dispute, a
discrepancy) lock it *before* calling ``decide`` / ``request_approval``,
because those append to the audit log (a global lock held until commit).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Literal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t
from ledger.core.actors import require_person_actor
from ledger.core.audit import append_audit, check_json_value
from ledger.core.checks import check_choice, check_limit, check_reason
from ledger.core.errors import ConflictError, ForbiddenError, ValidationError
from ledger.core.paging import LIST_LIMIT_MAX, keyset_page
from ledger.core.rows import columns, one_row, row_mapper


class ApprovalKind(StrEnum):
    REFUND = "refund"
    MANUAL_MATCH = "manual_match"
    DISPUTE_CONFIRM = "dispute_confirm"
    DISPUTE_REFUND = "dispute_refund"


class ApprovalStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    EXECUTED = "executed"
    FAILED = "failed"


APPROVAL_KINDS: Final = tuple(kind.value for kind in ApprovalKind)
APPROVAL_STATUSES: Final = tuple(status.value for status in ApprovalStatus)
# Open: waiting for a decision or for its execution; one per kind and subject.
OPEN_STATUSES: Final = (ApprovalStatus.PENDING, ApprovalStatus.APPROVED)
PAYLOAD_BYTES_MAX: Final = 16 * 1024
# Of an approval's own audit entries.
SUBJECT_TYPE: Final = "approval"
SYSTEM_TIMEOUT: Final = "system:timeout"


class SameApproverError(ForbiddenError):
    """The person who requested an approval tried to decide it (HTTP 403)."""

    code = "same_approver"


class ApprovalNotPendingError(ConflictError):
    """The approval was already decided, expired or executed (HTTP 409)."""

    code = "approval_not_pending"
    non_retryable = True


@dataclass(frozen=True)
class Approval:
    """An ``approvals`` row."""

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


_COLUMNS: Final = columns(Approval, t.approvals)
_approval: Final = row_mapper(Approval)


async def _audit(
    conn: AsyncConnection,
    approval: Approval,
    actor: str,
    now: datetime,
    detail: dict[str, Any],
    action: str | None = None,
) -> None:
    """The approval's audit entry (``approval.<its status>`` unless named)."""
    await append_audit(
        conn,
        actor=actor,
        action=action or f"approval.{approval.status}",
        subject_type=SUBJECT_TYPE,
        subject_id=str(approval.id),
        now=now,
        detail={
            "approval_id": approval.id,
            "kind": approval.kind,
            "subject_type": approval.subject_type,
            "subject_id": approval.subject_id,
            **detail,
        },
    )


async def _move(
    conn: AsyncConnection,
    approval_id: int,
    actor: str,
    now: datetime,
    values: dict[str, Any],
    detail: dict[str, Any],
) -> Approval:
    """Update the (locked) approval with ``values`` and audit its new status."""
    row = (
        await conn.execute(
            t.approvals.update()
            .where(t.approvals.c.id == approval_id)
            .values(**values)
            .returning(*_COLUMNS)
        )
    ).one()
    approval = _approval(row)
    await _audit(conn, approval, actor, now, detail)
    return approval


async def get_approval(
    conn: AsyncConnection, approval_id: int, *, for_update: bool = False
) -> Approval:
    query = select(*_COLUMNS).where(t.approvals.c.id == approval_id)
    if for_update:
        query = query.with_for_update()
    return await one_row(conn, query, _approval, f"no approval {approval_id}")


async def open_approval_for(
    conn: AsyncConnection, kind: str, subject_type: str, subject_id: str
) -> Approval | None:
    """The pending or approved request of this kind for this subject, if any."""
    row = (
        await conn.execute(
            select(*_COLUMNS).where(
                t.approvals.c.kind == kind,
                t.approvals.c.subject_type == subject_type,
                t.approvals.c.subject_id == subject_id,
                t.approvals.c.status.in_(OPEN_STATUSES),
            )
        )
    ).one_or_none()
    return _approval(row) if row is not None else None


def _check_request(kind: str, reason: str, requested_by: str, payload: dict[str, Any]) -> str:
    """The request's reason, checked with the rest of it."""
    check_choice("kind", kind, APPROVAL_KINDS)
    reason = check_reason("reason", reason, required=True)
    if not 1 <= len(requested_by) <= 200:
        raise ValidationError("requested_by", "must be 1..200 characters")
    try:
        check_json_value(payload, "payload")
    except ValueError as err:
        raise ValidationError("payload", str(err)) from None
    if len(json.dumps(payload).encode()) > PAYLOAD_BYTES_MAX:
        raise ValidationError("payload", f"is larger than {PAYLOAD_BYTES_MAX} bytes")
    require_person_actor("requested_by", requested_by)
    return reason


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
    reason = _check_request(kind, reason, requested_by, payload)
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
                    status=ApprovalStatus.PENDING,
                    workflow_id=workflow_id,
                )
                .on_conflict_do_nothing(
                    index_elements=["kind", "subject_type", "subject_id"],
                    index_where=t.approvals.c.status.in_(OPEN_STATUSES),
                )
                .returning(*_COLUMNS)
            )
        ).one_or_none()
        if inserted is not None:
            approval = _approval(inserted)
            detail = {"reason": reason, "payload": payload}
            await _audit(conn, approval, requested_by, now, detail, "approval.requested")
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
    """Approve or reject a pending request. The reason is checked first (a
    rejection needs one); only a person decides (``PersonRequiredError``);
    the requester never does (``SameApproverError``); a decided, expired or
    executed request is refused (``ApprovalNotPendingError``). A refusal
    writes nothing."""
    text_reason = check_reason("reason", reason, required=not approve)
    require_person_actor("decided_by", decided_by)
    current = await get_approval(conn, approval_id, for_update=True)
    check_not_requester(current, decided_by)
    if current.status != ApprovalStatus.PENDING:
        raise ApprovalNotPendingError(f"approval {approval_id} is already {current.status}")
    status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
    values = {
        "status": status,
        "decided_by": decided_by,
        "decided_at": now,
        "decision_reason": text_reason or None,
    }
    detail = {"requested_by": current.requested_by, "reason": text_reason}
    return await _move(conn, approval_id, decided_by, now, values, detail)


def check_not_requester(approval: Approval, decider: str, vouched_by: str | None = None) -> None:
    """``SameApproverError`` if ``decider`` asked for ``approval``, or decides
    with a credential the requester issued them (``vouched_by``: an admin who
    reset their password cannot approve through them)."""
    if decider == approval.requested_by:
        raise SameApproverError(
            f"approval {approval.id} was requested by {decider}; "
            "a different person must approve or reject it"
        )
    if vouched_by is not None and vouched_by == approval.requested_by:
        raise SameApproverError(
            f"approval {approval.id} was requested by {vouched_by}, who issued the "
            "credential you use (set your own password first): another person must decide"
        )


async def expire(
    conn: AsyncConnection, approval_id: int, now: datetime, actor: str = SYSTEM_TIMEOUT
) -> Approval:
    """Expire a request nobody decided in time. Returns the approval as it
    now is: a request decided meanwhile keeps its decision."""
    current = await get_approval(conn, approval_id, for_update=True)
    if current.status != ApprovalStatus.PENDING:
        return current
    values = {"status": ApprovalStatus.EXPIRED, "decided_at": now}
    detail = {"requested_at": current.requested_at.isoformat()}
    return await _move(conn, approval_id, actor, now, values, detail)


async def finish(
    conn: AsyncConnection,
    approval_id: int,
    result: dict[str, Any],
    now: datetime,
    actor: str,
    *,
    status: Literal[ApprovalStatus.EXECUTED, ApprovalStatus.FAILED],
) -> Approval:
    """Record that an approved request was carried out (``EXECUTED``) or
    could not be (``FAILED``), with its ``result``; idempotent."""
    current = await get_approval(conn, approval_id, for_update=True)
    if current.status == status:
        return current
    if current.status != ApprovalStatus.APPROVED:
        raise ApprovalNotPendingError(
            f"approval {approval_id} is {current.status}, not approved: it cannot be {status}"
        )
    values = {"status": status, "executed_at": now, "result": result}
    return await _move(conn, approval_id, actor, now, values, {"result": result})


mark_executed: Final = functools.partial(finish, status=ApprovalStatus.EXECUTED)
mark_failed: Final = functools.partial(finish, status=ApprovalStatus.FAILED)


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
    check_limit(limit, LIST_LIMIT_MAX)
    if status is not None:
        check_choice("status", status, APPROVAL_STATUSES)
    if kind is not None:
        check_choice("kind", kind, APPROVAL_KINDS)
    a = t.approvals
    query = keyset_page(
        select(*_COLUMNS),
        a.c.id,
        after_id=after_id,
        limit=limit,
        filters=(
            (a.c.status, status),
            (a.c.kind, kind),
            (a.c.subject_type, subject_type),
            (a.c.subject_id, subject_id),
        ),
    )
    return [_approval(r) for r in (await conn.execute(query)).all()]
