"""Discrepancies found by reconciliation: what finance sees and acts on.

A discrepancy is opened by a run (``ledger.reconciliation.load``) for every line
that is neither matched nor healed, and for payments the bank's statement
does not have (``missing_at_bank``) or that stay in doubt too long. It is
``open`` until it resolves itself (the missing line arrives, the duplicate is
refunded automatically, the payment is decided) or a person dismisses it or
an approved request (refund, manual match) resolves it.

Functions run in the caller's transaction; the caller commits.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from uuid import UUID

from sqlalchemy import ARRAY, Select, Text, cast, false, func, literal, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.formats import is_account
from domain.keys import suspense_key
from ledger.core import tables as t
from ledger.core.approvals import (
    Approval,
    SameApproverError,
    get_approval,
    mark_executed,
    mark_failed,
    request_approval,
)
from ledger.core.audit import append_audit
from ledger.core.errors import ConflictError, NotFoundError, ValidationError
from ledger.core.postings import (
    EntryRequest,
    Posting,
    bank_clearing_account,
    post_entry,
    reverse_entry,
)
from ledger.core.rows import field_names, row_mapper
from ledger.fines import fine_status, get_fine
from ledger.payments import UNKNOWN_PAYER

DISCREPANCY_KINDS: Final = (
    "duplicate",
    "missing_at_bank",
    "amount_mismatch",
    "unknown",
    "in_doubt_too_long",
    # An uploaded line that would move or hold money: waits for the bank's
    # word or a second person's approval (``ledger.reconciliation.claims``).
    "unconfirmed",
)
DISCREPANCY_STATUSES: Final = ("open", "resolved", "dismissed")
PAGE_SIZE_MAX: Final = 500
RESOLUTION_CHARS_MAX: Final = 2_000
ACTOR_CHARS_MAX: Final = 200
SYSTEM_APPROVAL: Final = "system:approval"


class DiscrepancyClosedError(ConflictError):
    """The discrepancy is already resolved or dismissed (HTTP 409)."""

    code = "discrepancy_closed"
    non_retryable = True


@dataclass(frozen=True)
class Discrepancy:
    id: int
    # None: opened outside a reconciliation run (the payment saga, for a
    # payment in doubt too long).
    reconciliation_id: int | None
    bank: str
    statement_date: date
    kind: str
    statement_line_id: int | None
    payment_id: UUID | None
    fine_id: int | None
    decision_number: str | None
    amount_vnd: int
    status: str
    detail: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    # From the statement line, when there is one.
    bank_ref: str | None
    line_class: str | None
    in_suspense: bool

    @property
    def open(self) -> bool:
        return self.status == "open"


_d: Final = t.discrepancies
_l: Final = t.statement_lines
_f: Final = t.fines
# A discrepancy with what its line and its fine say (the fields that are not
# the table's own).
_BANK_REF: Final = func.coalesce(func.nullif(_l.c.bank_ref, ""), _d.c.detail["bank_ref"].astext)
_DISCREPANCY: Final = select(
    *(_d.c[name] for name in field_names(Discrepancy) if name in _d.c),
    _f.c.decision_number,
    _BANK_REF.label("bank_ref"),
    _l.c["class"].label("line_class"),
    func.coalesce(_l.c.in_suspense, false()).label("in_suspense"),
).select_from(
    _d.outerjoin(_l, _l.c.id == _d.c.statement_line_id).outerjoin(_f, _f.c.id == _d.c.fine_id)
)
_discrepancy: Final[Callable[[Any], Discrepancy]] = row_mapper(Discrepancy)


def discrepancy_query() -> Select[Any]:
    """The select every listing of discrepancies builds on (the work queue
    adds its own columns and filters: ``ledger.reconciliation.work_queue``)."""
    return _DISCREPANCY


def discrepancy_from_row(row: Any) -> Discrepancy:
    return _discrepancy(row)


def bank_ref_column() -> Any:
    """The bank reference as listings show it: the line's, else the detail's."""
    return _BANK_REF


async def get_discrepancy(
    conn: AsyncConnection, discrepancy_id: int, *, for_update: bool = False
) -> Discrepancy:
    query = _DISCREPANCY.where(_d.c.id == discrepancy_id)
    if for_update:
        query = query.with_for_update(of=_d)
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise NotFoundError(f"no discrepancy {discrepancy_id}")
    return _discrepancy(row)


@dataclass(frozen=True)
class DiscrepancyFilter:
    bank: str | None = None
    kind: str | None = None
    status: str | None = None
    reconciliation_id: int | None = None
    statement_date: date | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in DISCREPANCY_KINDS:
            raise ValidationError("kind", f"must be one of {', '.join(DISCREPANCY_KINDS)}")
        if self.status is not None and self.status not in DISCREPANCY_STATUSES:
            raise ValidationError("status", f"must be one of {', '.join(DISCREPANCY_STATUSES)}")


async def list_discrepancies(
    conn: AsyncConnection,
    where: DiscrepancyFilter,
    *,
    limit: int = 100,
    before_id: int | None = None,
) -> tuple[list[Discrepancy], int | None]:
    """Newest first, ``limit`` at most; returns the page and the cursor of the
    next page (``None`` when this is the last)."""
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise ValidationError("limit", f"must be between 1 and {PAGE_SIZE_MAX}")
    query = _DISCREPANCY.order_by(_d.c.id.desc()).limit(limit + 1)
    for column, value in (
        (_d.c.bank, where.bank),
        (_d.c.kind, where.kind),
        (_d.c.status, where.status),
        (_d.c.reconciliation_id, where.reconciliation_id),
        (_d.c.statement_date, where.statement_date),
    ):
        if value is not None:
            query = query.where(column == value)
    if before_id is not None:
        query = query.where(_d.c.id < before_id)
    rows = (await conn.execute(query)).all()
    page = [_discrepancy(r) for r in rows[:limit]]
    return page, (page[-1].id if len(rows) > limit else None)


def _check_resolution(text_value: str) -> str:
    value = text_value.strip()
    if not value:
        raise ValidationError("reason", "is required: say why")
    if len(value) > RESOLUTION_CHARS_MAX:
        raise ValidationError("reason", f"is longer than {RESOLUTION_CHARS_MAX} characters")
    return value


async def close_discrepancy(
    conn: AsyncConnection,
    discrepancy_id: int,
    status: str,
    actor: str,
    resolution: str,
    now: datetime,
) -> Discrepancy:
    """Resolve or dismiss an open discrepancy (once)."""
    assert status in ("resolved", "dismissed"), status
    resolution = _check_resolution(resolution)
    current = await get_discrepancy(conn, discrepancy_id, for_update=True)
    if not current.open:
        raise DiscrepancyClosedError(f"discrepancy {discrepancy_id} is already {current.status}")
    await conn.execute(
        update(_d)
        .where(_d.c.id == discrepancy_id)
        .values(
            status=status,
            resolved_at=now,
            updated_at=now,
            resolved_by=actor[:ACTOR_CHARS_MAX],
            resolution=resolution,
        )
    )
    return await get_discrepancy(conn, discrepancy_id)


async def note_request(
    conn: AsyncConnection,
    discrepancy_id: int,
    request: dict[str, Any],
    now: datetime,
) -> None:
    """Remember on the discrepancy what was requested for it (approval id,
    action, who), newest last."""
    noted = func.coalesce(_d.c.detail["requests"], cast(literal("[]", Text), JSONB))
    appended = noted.op("||")(cast(literal(_json([request]), Text), JSONB))
    await conn.execute(
        update(_d)
        .where(_d.c.id == discrepancy_id)
        .values(
            updated_at=now,
            detail=func.jsonb_set(_d.c.detail, cast(["requests"], ARRAY(Text)), appended),
        )
    )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


async def open_counts(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    """Open discrepancies by (bank, kind), for the gauge."""
    rows = await conn.execute(
        select(_d.c.bank, _d.c.kind, func.count().label("n"))
        .where(_d.c.status == "open")
        .group_by(_d.c.bank, _d.c.kind)
    )
    return {(r.bank, r.kind): int(r.n) for r in rows}


# --- requests that need a second person's approval -------------------------------

REFUND: Final = "refund"
MANUAL_MATCH: Final = "manual_match"
SUBJECT_TYPE: Final = "discrepancy"


class DiscrepancyActionError(ConflictError):
    """The discrepancy is not in a state this action can apply to (HTTP 409)."""

    code = "discrepancy_action_refused"
    non_retryable = True


@dataclass(frozen=True)
class HeldMoney:
    """A statement line's money a refund or a manual match would move: held
    in suspense (the bank's own line), or only claimed (an uploaded line,
    ``uploaded_by`` the person who uploaded it)."""

    discrepancy: Discrepancy
    line_id: int
    bank: str
    bank_ref: str
    amount_vnd: int
    counterparty: str
    suspense_entry_key: str
    uploaded_by: str | None = None


_HELD_LINE: Final = select(
    _l.c.id, _l.c.bank, _l.c.bank_ref, _l.c.amount_vnd, _l.c.counterparty, _l.c.direction,
    _l.c.in_suspense, _l.c.action, _l.c.uploaded, t.statement_imports.c.uploaded_by,
).join(t.statement_imports, t.statement_imports.c.id == _l.c.import_id)  # fmt: skip


async def _held_money(conn: AsyncConnection, item: Discrepancy, *, refund: bool) -> HeldMoney:
    if not item.open:
        raise DiscrepancyClosedError(f"discrepancy {item.id} is already {item.status}")
    if item.statement_line_id is None:
        raise DiscrepancyActionError(
            f"discrepancy {item.id} ({item.kind}) has no statement line: no money to move"
        )
    line = (await conn.execute(_HELD_LINE.where(_l.c.id == item.statement_line_id))).one()
    if line.uploaded and refund:
        raise DiscrepancyActionError(
            f"statement line {line.bank_ref} was uploaded by {line.uploaded_by}, not given by "
            "the bank: a refund needs the bank's own record of the debit (reconcile the "
            "bank's statement of that day)"
        )
    if line.direction != "credit" or not (line.in_suspense or line.uploaded):
        reason = "is money out" if line.direction != "credit" else "is not held in suspense"
        raise DiscrepancyActionError(
            f"statement line {line.bank_ref} {reason}"
            + (f" (its automatic action: {line.action})" if line.action else "")
        )
    return HeldMoney(
        discrepancy=item,
        line_id=int(line.id),
        bank=line.bank,
        bank_ref=line.bank_ref,
        amount_vnd=int(line.amount_vnd),
        counterparty=line.counterparty,
        suspense_entry_key=suspense_key(line.bank, line.bank_ref),
        uploaded_by=line.uploaded_by if line.uploaded else None,
    )


async def request_refund(
    conn: AsyncConnection,
    discrepancy_id: int,
    actor: str,
    reason: str,
    now: datetime,
    *,
    payee_account: str | None,
    workflow_id: str,
) -> Approval:
    """Ask a second person to approve sending the line's money back to the
    payer: the account the bank's statement names, never another one (a
    typed ``payee_account`` must be that one)."""
    item = await get_discrepancy(conn, discrepancy_id, for_update=True)
    held = await _held_money(conn, item, refund=True)
    payee = held.counterparty
    if not is_account(payee):
        raise DiscrepancyActionError(
            f"the bank's statement names no account for {held.bank_ref} "
            f"({payee or 'no counterparty'!r}): the money cannot be sent back from here"
        )
    if payee_account is not None and payee_account != payee:
        raise ValidationError(
            "payee_account",
            f"is {payee_account!r} but the bank's statement says the money came from "
            f"{payee!r}: a refund goes back to that account only",
        )
    details = {"payee_account": payee}
    return await _ask(conn, REFUND, held, details, reason, actor, now, workflow_id)


async def request_manual_match(
    conn: AsyncConnection,
    discrepancy_id: int,
    actor: str,
    reason: str,
    now: datetime,
    *,
    decision_number: str,
    workflow_id: str,
) -> Approval:
    """Ask a second person to approve booking the line's money as the payment
    of a fine (a receipt if the fine is unpaid, else a refund). An uploaded
    line's payer is not known (a file never names where money goes), and
    the person who uploaded it can never approve (``check_decider``)."""
    item = await get_discrepancy(conn, discrepancy_id, for_update=True)
    held = await _held_money(conn, item, refund=False)
    fine = await get_fine(conn, decision_number)
    if fine.amount_vnd != held.amount_vnd:
        raise DiscrepancyActionError(
            f"fine {fine.decision_number} is {fine.amount_vnd} đồng but the bank received "
            f"{held.amount_vnd}: request a refund instead"
        )
    if held.uploaded_by is not None and await fine_status(conn, fine.id) != "unpaid":
        raise DiscrepancyActionError(
            f"fine {fine.decision_number} is not unpaid: an uploaded line matched to it would "
            "be a second payment to send back, and an uploaded file never moves money out"
        )
    details: dict[str, Any] = {
        "decision_key": fine.decision_key,
        "decision_number": fine.decision_number,
        "payer_account": (held.uploaded_by is None and held.counterparty) or UNKNOWN_PAYER,
    }
    if held.uploaded_by is not None:
        details["uploaded_by"] = held.uploaded_by
    return await _ask(conn, MANUAL_MATCH, held, details, reason, actor, now, workflow_id)


def check_decider(approval: Approval, decided_by: str) -> None:
    """The person who uploaded the line a request is about can never approve
    it, as the requester cannot (``approvals``): a claim needs someone else's
    word. Raised before the decision is recorded."""
    if approval.subject_type == SUBJECT_TYPE and approval.payload.get("uploaded_by") == decided_by:
        raise SameApproverError(
            f"{decided_by} uploaded the statement line approval {approval.id} is about: "
            "someone else must decide"
        )


async def _ask(
    conn: AsyncConnection,
    kind: str,
    held: HeldMoney,
    details: dict[str, Any],
    reason: str,
    actor: str,
    now: datetime,
    workflow_id: str,
) -> Approval:
    """Ask a second person to approve ``kind`` for the held money (its
    ``details`` after what every request names), and note the request on
    the discrepancy."""
    discrepancy_id = held.discrepancy.id
    approval = await request_approval(
        conn,
        kind,
        SUBJECT_TYPE,
        str(discrepancy_id),
        {
            "action": kind,
            "discrepancy_id": discrepancy_id,
            "bank": held.bank,
            "bank_ref": held.bank_ref,
            "amount_vnd": held.amount_vnd,
            **details,
        },
        reason,
        actor,
        now,
        workflow_id=workflow_id,
    )
    if approval.requested_at != now:
        return approval  # the open request asked before (a double submit): noted then
    noted = {"action": kind, "approval_id": approval.id, "by": actor, "at": now.isoformat()}
    await note_request(conn, discrepancy_id, noted, now)
    return approval


class NotApprovedError(ConflictError):
    """Money moves only on an approval that is approved in the database."""

    code = "not_approved"
    non_retryable = True


async def approved_request(conn: AsyncConnection, approval_id: int) -> Approval:
    approval = await get_approval(conn, approval_id)
    if approval.status not in ("approved", "executed"):
        raise NotApprovedError(f"approval {approval_id} is {approval.status}, not approved")
    if approval.subject_type != SUBJECT_TYPE:
        raise NotApprovedError(f"approval {approval_id} is not about a discrepancy")
    return approval


async def _resolve_by_approval(
    conn: AsyncConnection,
    approval: Approval,
    result: dict[str, Any],
    resolution: str,
    now: datetime,
) -> None:
    discrepancy_id = int(approval.subject_id)
    actor = approval.decided_by or SYSTEM_APPROVAL
    item = await get_discrepancy(conn, discrepancy_id, for_update=True)
    if item.open:
        await close_discrepancy(conn, discrepancy_id, "resolved", actor, resolution, now)
    await mark_executed(conn, approval.id, result, now, SYSTEM_APPROVAL)
    await append_audit(
        conn,
        actor=SYSTEM_APPROVAL,
        action=f"discrepancy.{approval.kind}_done",
        subject_type=SUBJECT_TYPE,
        subject_id=str(discrepancy_id),
        now=now,
        detail={"approval_id": approval.id, **result},
    )


async def book_refund(
    conn: AsyncConnection, approval_id: int, refund_ref: str, now: datetime
) -> None:
    """The bank confirmed the refund: take the money out of suspense (once),
    close the discrepancy, record the approval as carried out."""
    approval = await approved_request(conn, approval_id)
    payload = approval.payload
    bank, bank_ref, amount = payload["bank"], payload["bank_ref"], int(payload["amount_vnd"])
    clearing = bank_clearing_account(bank)
    await post_entry(
        conn,
        EntryRequest(
            idempotency_key=f"discrepancy:{approval.subject_id}:refund",
            kind="refund",
            description=f"refund of {bank_ref} held in suspense (discrepancy "
            f"{approval.subject_id})",
            postings=(Posting("suspense", amount), Posting(clearing, -amount)),
            metadata={
                "refund_ref": refund_ref,
                "bank": bank,
                "bank_ref": bank_ref,
                "discrepancy_id": int(approval.subject_id),
                "approval_id": approval.id,
            },
        ),
    )
    await _resolve_by_approval(
        conn,
        approval,
        {"refund_ref": refund_ref, "amount_vnd": amount},
        f"refunded to {payload['payee_account']} (bank ref {refund_ref})",
        now,
    )


async def release_for_match(conn: AsyncConnection, approval_id: int, now: datetime) -> None:
    """Before the matched debit is booked as the fine's payment, take it out
    of suspense (the reversal's key is the one disputes use too, so it
    happens once whoever does it), close the discrepancy, record the approval
    as carried out."""
    approval = await approved_request(conn, approval_id)
    payload = approval.payload
    bank, bank_ref = payload["bank"], payload["bank_ref"]
    entries = t.journal_entries
    held = (
        await conn.execute(
            select(entries.c.id).where(entries.c.idempotency_key == suspense_key(bank, bank_ref))
        )
    ).scalar_one_or_none()
    if held is None:
        # Not posted to suspense yet: it will not be now (the payment books it).
        await conn.execute(
            update(_l)
            .where(
                _l.c.bank == bank,
                _l.c.bank_ref == bank_ref,
                _l.c.in_suspense,
                _l.c.suspense_entry_id.is_(None),
            )
            .values(in_suspense=False)
        )
    else:
        await reverse_entry(
            conn,
            int(held),
            f"suspense-release:{bank}:{bank_ref}",
            f"{bank_ref} matched by hand to {payload['decision_number']} "
            f"(discrepancy {approval.subject_id})",
        )
    await _resolve_by_approval(
        conn,
        approval,
        {"decision_number": payload["decision_number"], "amount_vnd": payload["amount_vnd"]},
        f"matched by hand to fine {payload['decision_number']}",
        now,
    )


async def record_failure(
    conn: AsyncConnection, approval_id: int, reason: str, now: datetime
) -> None:
    """The approved request could not be carried out: the discrepancy stays
    open with the reason; the approval is failed."""
    approval = await get_approval(conn, approval_id)
    await mark_failed(conn, approval_id, {"reason": reason[:500]}, now, SYSTEM_APPROVAL)
    await note_request(
        conn,
        int(approval.subject_id),
        {"action": approval.kind, "approval_id": approval_id, "failed": reason[:500]},
        now,
    )
