"""Acting on one discrepancy or one dispute from its console page, through
the very calls the JSON API's handlers make (docs/console.md):

* ``POST /console/discrepancies/{id}/actions`` (``recon:write``):
  ``reconciler.api.discrepancy_actions.act`` — dismiss, request a refund or
  a manual match (a second person approves), confirm an uploaded line
  with the bank;
* ``POST /console/disputes/{id}/resolutions`` (``disputes:resolve``):
  ``reconciler.api.disputes.resolve_as`` — reject, or request a confirm or
  a refund (a second person approves);
* ``POST /console/disputes/{id}/evidence/refresh`` (``disputes:open``:
  officers too): ``reconciler.api.disputes.refresh_as`` — ask the bank
  again now.

A reason is required for every action (the refresh takes none, as in the
API). The answer is the item's page again, with what was done (the
approval asked for and who must decide it, or the new state) or what was
wrong, in the reader's language; a refusal changes nothing. Asking twice
for the same thing returns the same open approval (the ledger's
``request_approval``), so a double submit never makes a second one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

from aiohttp import web

from domain.text import unsafe_character
from ledger import disputes as ds
from ledger.core.checks import REASON_CHARS_MAX
from ledger.core.errors import (
    ConflictError,
    ForbiddenError,
    LedgerError,
    NotFoundError,
    ValidationError,
)
from ledger.reconciliation import discrepancies as disc
from reconciler.api.auth import PERMISSIONS
from reconciler.api.discrepancy_actions import act, check_action
from reconciler.api.disputes import check_dispute_scope, refresh_as, resolve_as
from reconciler.api.keys import ENGINE
from reconciler.api.params import path_id
from reconciler.api.problems import ApiError
from reconciler.console.finance import DISPUTES_PATH, render_dispute
from reconciler.console.finance_queue import QUEUE_PATH, render_item
from reconciler.console.pages import Staff, staff_page
from reconciler.console.render import language, message_page, read_form
from reconciler.console.texts import TEXTS

# Who may decide what is asked here: every role holding approvals:decide.
DECIDERS: Final = ", ".join(sorted(r for r, p in PERMISSIONS.items() if "approvals:decide" in p))
read_action_form: Final = partial(read_form, free_text=frozenset({"reason"}))


@dataclass(frozen=True)
class Asked:
    """An approval an action asked for, as the page shows it."""

    id: int
    kind: str
    status: str
    requested_by: str
    started: bool
    who: str


def form_reason(form: dict[str, str]) -> str:
    """The form's reason: required, at most ``REASON_CHARS_MAX`` characters,
    no control or invisible character but line breaks and tabs. The
    ``ValidationError``'s message is a text key (``reason_*``)."""
    reason = form.get("reason", "").strip()
    if not reason:
        raise ValidationError("reason", "reason_missing")
    if len(reason) > REASON_CHARS_MAX:
        raise ValidationError("reason", "reason_too_long")
    if unsafe_character(reason, multiline=True) is not None:
        raise ValidationError("reason", "reason_bad_char")
    return reason


def _body(form: dict[str, str], optional: tuple[str, ...]) -> dict[str, Any]:
    """The JSON API's body of an action form: its action, its reason and
    the ``optional`` fields filled in (any other field is not sent)."""
    body: dict[str, Any] = {"action": form.get("action", ""), "reason": form_reason(form)}
    for name in optional:
        if form.get(name, "").strip():
            body[name] = form[name].strip()
    return body


def explain(err: LedgerError | ApiError, texts: dict[str, str]) -> tuple[int, str]:
    """The HTTP status and the sentence of a refused action, in the reader's
    language (the ledger's own words for the particulars)."""
    if isinstance(err, ApiError):
        return err.status, texts["action_unavailable"]
    if isinstance(err, ValidationError):
        message = str(err).removeprefix(f"{err.field}: ")
        field = texts.get(f"field_{err.field}", err.field)
        return 400, texts["action_invalid"].format(field=field, message=texts.get(message, message))
    for kind, status, key in (
        (NotFoundError, 404, "action_not_found"),
        (ForbiddenError, 403, "action_forbidden"),
        (ConflictError, 409, "action_conflict"),
    ):
        if isinstance(err, kind):
            return status, texts[key].format(message=err.message)
    raise err


def _asked(approval: Any, started: bool, texts: dict[str, str]) -> Asked:
    return Asked(
        id=approval["id"],
        kind=approval["kind"],
        status=approval["status"],
        requested_by=approval["requested_by"],
        started=started,
        who=texts["must_approve_who"].format(roles=DECIDERS, requester=approval["requested_by"]),
    )


async def _found(load: Callable[[], Awaitable[object]]) -> bool:
    try:
        await load()
    except NotFoundError:
        return False
    return True


async def _discrepancy(request: web.Request, discrepancy_id: int) -> None:
    async with request.app[ENGINE].connect() as conn:
        await disc.get_discrepancy(conn, discrepancy_id)


@staff_page("recon:write", read=read_action_form)
async def discrepancy_action(request: web.Request, staff: Staff) -> web.Response:
    discrepancy_id = path_id(request, "discrepancy_id")
    if not await _found(partial(_discrepancy, request, discrepancy_id)):
        return message_page(request, 404, "not_found_title", "item_not_found")
    texts = TEXTS[language(request)]
    try:
        body = check_action(_body(staff.form, ("payee_account", "decision_number")))
        done = await act(request, discrepancy_id, staff.principal.actor, body)
    except (LedgerError, ApiError) as err:
        status, error = explain(err, texts)
        return await render_item(request, staff, discrepancy_id, status, error=error)
    if done.approval is not None:
        asked = _asked(done.approval, bool(done.approval["workflow_started"]), texts)
        return await render_item(request, staff, discrepancy_id, 202, asked=asked)
    if done.run is not None:
        said = texts["done_confirm_started"].format(run=done.run.id, day=done.run.statement_date)
        return await render_item(request, staff, discrepancy_id, 202, done=said)
    return await render_item(request, staff, discrepancy_id, done=texts["done_dismissed"])


async def _dispute(request: web.Request, staff: Staff, dispute_id: int) -> None:
    """The dispute, if it exists and is in the person's scope (else
    ``NotFoundError``, the same for both)."""
    async with request.app[ENGINE].connect() as conn:
        await ds.get_dispute(conn, dispute_id)
    await check_dispute_scope(request, staff.principal, dispute_id)


@staff_page("disputes:resolve", read=read_action_form)
async def dispute_resolution(request: web.Request, staff: Staff) -> web.Response:
    dispute_id = path_id(request, "dispute_id")
    if not await _found(partial(_dispute, request, staff, dispute_id)):
        return message_page(request, 404, "not_found_title", "item_not_found")
    texts = TEXTS[language(request)]
    try:
        body = _body(staff.form, ("bank_ref", "payer_account"))
        _, approval, started = await resolve_as(request, staff.principal, dispute_id, body)
    except (LedgerError, ApiError) as err:
        status, error = explain(err, texts)
        return await render_dispute(request, staff, dispute_id, status, error=error)
    if approval is None:
        return await render_dispute(request, staff, dispute_id, done=texts["done_rejected"])
    shown = {
        "id": approval.id,
        "kind": approval.kind,
        "status": approval.status,
        "requested_by": approval.requested_by,
    }
    asked = _asked(shown, started, texts)
    return await render_dispute(request, staff, dispute_id, 202, asked=asked)


@staff_page("disputes:open")
async def dispute_refresh(request: web.Request, staff: Staff) -> web.Response:
    dispute_id = path_id(request, "dispute_id")
    if not await _found(partial(_dispute, request, staff, dispute_id)):
        return message_page(request, 404, "not_found_title", "item_not_found")
    await refresh_as(request, staff.principal, dispute_id)
    done = TEXTS[language(request)]["done_refreshed"]
    return await render_dispute(request, staff, dispute_id, done=done)


def add_routes(app: web.Application) -> None:
    app.router.add_post(QUEUE_PATH + "/{discrepancy_id}/actions", discrepancy_action)
    app.router.add_post(DISPUTES_PATH + "/{dispute_id}/resolutions", dispute_resolution)
    app.router.add_post(DISPUTES_PATH + "/{dispute_id}/evidence/refresh", dispute_refresh)
