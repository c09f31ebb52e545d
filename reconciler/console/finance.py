"""The finance staff's console pages: the approvals inbox and the disputes
(with their evidence and deadline). See docs/console.md.

* ``/console/approvals`` (``approvals:read``): requests by status (pending
  first), what is asked, by whom, since when. Approve/reject forms only for
  a person who may decide (``approvals:decide``) and did not ask: the same
  ``ledger.core.approvals.check_not_requester`` the API's decision runs, so
  a forged POST by the requester is refused there too, with nothing
  written (``reconciler.api.disputes.decide``).
* ``/console/disputes`` (``disputes:read``) and ``/console/disputes/{id}``:
  the list and one dispute with the ledger's evidence and the bank's side
  as last gathered (no bank is called), its approvals and history. Unit
  scope as in the JSON API: another unit's dispute is not found.

A dispute's deadline: an open one must be resolved, and a resolution
awaiting approval decided, within ``dispute_approval_timeout_seconds``
(the time ``DisputeWorkflow`` waits for a decision before it expires the
request), counted from its opening or from the request.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aiohttp import web

from ledger import disputes as ds
from ledger.access import Principal
from ledger.core import approvals as ap
from ledger.core.checks import check_choice
from ledger.core.errors import ConflictError, ValidationError
from reconciler.api.auth import may
from reconciler.api.disputes import check_dispute_scope, decide, in_scope
from reconciler.api.errors import Handler
from reconciler.api.keys import ENGINE, SETTINGS
from reconciler.api.params import path_id, query_after_id
from reconciler.console.pages import Staff, see_other, staff_page
from reconciler.console.render import Lang, language, message_page, render
from workflows.disputes.evidence import stored_evidence

PAGE_ROWS: Final = 50
APPROVALS_PATH: Final = "/console/approvals"
DISPUTES_PATH: Final = "/console/disputes"


def format_age(age: timedelta, lang: Lang) -> str:
    """``2 ngày 3 giờ`` / ``2 d 3 h``: days and hours, or minutes under an hour."""
    minutes = max(0, int(age.total_seconds()) // 60)
    days, hours = minutes // 1440, minutes % 1440 // 60
    units = ("ngày", "giờ", "phút") if lang == "vi" else ("d", "h", "min")
    if days:
        return f"{days} {units[0]} {hours} {units[1]}"
    if hours:
        return f"{hours} {units[1]} {minutes % 60} {units[2]}"
    return f"{minutes} {units[2]}"


def query_bank(request: web.Request) -> str | None:
    """``bank``: one of the configured banks, or none."""
    bank = request.query.get("bank")
    banks = request.app[SETTINGS].banks
    if bank and bank not in banks:
        raise ValidationError("bank", f"must be one of: {', '.join(sorted(banks))}")
    return bank or None


def query_choice(request: web.Request, name: str, choices: tuple[str, ...]) -> str | None:
    value = request.query.get(name) or None
    if value is not None:
        check_choice(name, value, choices)
    return value


def next_link(path: str, request: web.Request, last_id: int | None) -> str | None:
    """The next page's address (the filters kept), or None on the last page."""
    if last_id is None:
        return None
    query = {k: v for k, v in request.query.items() if k not in ("after_id", "lang")}
    query["after_id"] = str(last_id)
    return str(request.url.with_path(path).with_query(query).relative())


# --- approvals --------------------------------------------------------------------


def may_decide(principal: Principal, approval: ap.Approval) -> bool:
    """Whether to offer this person the approve/reject forms: never to the
    requester (the API refuses them anyway: ``check_not_requester``)."""
    if approval.status != ap.ApprovalStatus.PENDING or not may(principal, "approvals:decide"):
        return False
    try:
        ap.check_not_requester(approval, principal.actor, principal.vouched_by)
    except ap.SameApproverError:
        return False
    return True


@dataclass(frozen=True)
class ApprovalItem:
    approval: ap.Approval
    age: str
    may_decide: bool
    own: bool


@staff_page("approvals:read")
async def approvals_page(request: web.Request, staff: Staff) -> web.Response:
    status = query_choice(request, "status", ap.APPROVAL_STATUSES) or "pending"
    kind = query_choice(request, "kind", ap.APPROVAL_KINDS)
    async with request.app[ENGINE].connect() as conn:
        rows = await ap.list_approvals(
            conn, status=status, kind=kind, after_id=query_after_id(request), limit=PAGE_ROWS
        )
    now, lang = datetime.now(UTC), language(request)
    items = [
        ApprovalItem(
            a,
            format_age(now - a.requested_at, lang),
            may_decide(staff.principal, a),
            a.requested_by == staff.principal.actor,
        )
        for a in rows
    ]
    last = rows[-1].id if len(rows) == PAGE_ROWS else None
    return render(
        request,
        "finance/approvals.jinja",
        principal=staff.principal,
        csrf=staff.session.csrf_secret,
        items=items,
        chosen_status=status,
        kind=kind or "",
        statuses=ap.APPROVAL_STATUSES,
        kinds=ap.APPROVAL_KINDS,
        done=request.query.get("done", ""),
        next_url=next_link(APPROVALS_PATH, request, last),
    )


def _decision(approve: bool) -> Handler:
    @staff_page("approvals:decide")
    async def post(request: web.Request, staff: Staff) -> web.Response:
        approval_id = path_id(request, "approval_id")
        reason = staff.form.get("reason") or None
        try:
            await decide(request, staff.principal, approval_id, approve, reason)
        except ap.SameApproverError:
            return message_page(request, 403, "own_request_title", "own_request_message")
        except ConflictError:
            return message_page(request, 409, "decided_title", "decided_message")
        verb = "approved" if approve else "rejected"
        return see_other(f"{APPROVALS_PATH}?done={verb}")

    return post


approve = _decision(True)
reject = _decision(False)


# --- disputes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    at: datetime | None
    overdue: bool


def dispute_deadline(
    dispute: ds.Dispute, approval: ap.Approval | None, timeout: timedelta, now: datetime
) -> Deadline:
    """When the dispute must be dealt with (see the module's docstring);
    none once it is final or executing."""
    if dispute.status == ds.DisputeStatus.OPEN:
        at = dispute.opened_at + timeout
    elif dispute.status == ds.DisputeStatus.AWAITING_APPROVAL and approval is not None:
        at = approval.requested_at + timeout
    else:
        return Deadline(None, False)
    return Deadline(at, now > at)


def _timeout(request: web.Request) -> timedelta:
    return timedelta(seconds=request.app[SETTINGS].dispute_approval_timeout_seconds)


@dataclass(frozen=True)
class DisputeItem:
    dispute: ds.Dispute
    age: str
    deadline: Deadline


@staff_page("disputes:read")
async def disputes_page(request: web.Request, staff: Staff) -> web.Response:
    status = query_choice(request, "status", ds.DISPUTE_STATUSES)
    bank = query_bank(request)
    keep = in_scope(staff.principal)
    async with request.app[ENGINE].connect() as conn:
        rows = await ds.list_disputes(
            conn, status=status, bank=bank, after_id=query_after_id(request), limit=PAGE_ROWS
        )
        shown = await keep(conn, rows) if keep is not None else rows
        # At most a page of them: the requests the shown disputes await.
        pending = {
            d.approval_id: await ap.get_approval(conn, d.approval_id)
            for d in shown
            if d.approval_id is not None and d.status == ds.DisputeStatus.AWAITING_APPROVAL
        }
    now, lang, timeout = datetime.now(UTC), language(request), _timeout(request)
    items = [
        DisputeItem(
            d,
            format_age(now - d.opened_at, lang),
            dispute_deadline(d, pending.get(d.approval_id or 0), timeout, now),
        )
        for d in shown
    ]
    last = rows[-1].id if len(rows) == PAGE_ROWS else None
    return render(
        request,
        "finance/disputes.jinja",
        principal=staff.principal,
        csrf=staff.session.csrf_secret,
        items=items,
        chosen_status=status or "",
        bank=bank or "",
        statuses=ds.DISPUTE_STATUSES,
        banks=sorted(request.app[SETTINGS].banks),
        next_url=next_link(DISPUTES_PATH, request, last),
    )


@staff_page("disputes:read")
async def dispute_page(request: web.Request, staff: Staff) -> web.Response:
    dispute_id = path_id(request, "dispute_id")
    await check_dispute_scope(request, staff.principal, dispute_id)
    return await render_dispute(request, staff, dispute_id)


async def render_dispute(
    request: web.Request, staff: Staff, dispute_id: int, status: int = 200, **shown: Any
) -> web.Response:
    """One dispute's page (in the person's scope: the caller checked);
    ``shown``: what an action on it did (``done``, the ``asked`` approval)
    or why it was refused (``error``)."""
    dispute, evidence = await stored_evidence(request.app[ENGINE], dispute_id)
    async with request.app[ENGINE].connect() as conn:
        approvals = await ap.list_approvals(
            conn, subject_type="dispute", subject_id=str(dispute_id), limit=100
        )
        trail = await ds.history(conn, dispute_id)
    now = datetime.now(UTC)
    current = next((a for a in approvals if a.id == dispute.approval_id), None)
    context: dict[str, Any] = {
        "principal": staff.principal,
        "csrf": staff.session.csrf_secret,
        "d": dispute,
        "evidence": evidence,
        "approvals": approvals,
        "trail": trail,
        "age": format_age(now - dispute.opened_at, language(request)),
        "deadline": dispute_deadline(dispute, current, _timeout(request), now),
        "actions": ds.ACTIONS,
        "error": None,
        "done": None,
        "asked": None,
        **shown,
    }
    return render(request, "finance/dispute.jinja", status=status, **context)


def add_routes(app: web.Application) -> None:
    routes: list[tuple[str, str, Callable[..., Any]]] = [
        ("GET", APPROVALS_PATH, approvals_page),
        ("POST", APPROVALS_PATH + "/{approval_id}/approve", approve),
        ("POST", APPROVALS_PATH + "/{approval_id}/reject", reject),
        ("GET", DISPUTES_PATH, disputes_page),
        ("GET", DISPUTES_PATH + "/{dispute_id}", dispute_page),
    ]
    for method, path, handler in routes:
        app.router.add_route(method, path, handler)
