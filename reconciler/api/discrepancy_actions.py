"""``POST /api/v1/discrepancies/{id}/actions`` ``{action, reason, ...}``.

* ``dismiss`` (finance): closes it at once, with the reason, in the audit log;
* ``request_refund`` (finance): asks for a second person's approval to send
  the money back to the payer (``payee_account`` defaults to the statement's
  counterparty); once approved, a workflow refunds it through the bank and
  takes it out of suspense;
* ``request_manual_match`` ``{decision_number}`` (finance): asks for approval
  to book the money as the payment of that fine (receipt, or refund if the
  fine turns out paid); once approved, a workflow does it;
* ``confirm_with_bank`` (finance; an ``unconfirmed`` line, uploaded by a
  person): fetches the bank's own statement of that day and reconciles it;
  if the bank has the line, the bank's line acts (with the bank's amount and
  account) and the claim closes (202 with the reconciliation).

The request is recorded (approval + audit) before anything moves; whoever
asks can never approve (``ledger.core.approvals``), nor can whoever uploaded
the line. A refund goes only to the account the bank's statement names.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

import structlog
from aiohttp import web
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError

from ledger.core.approvals import Approval
from ledger.core.audit import append_audit
from ledger.core.checks import check_choice, check_object
from ledger.core.errors import ValidationError
from ledger.reconciliation import discrepancies as disc
from ledger.reconciliation.runs import Run
from reconciler.api.auth import require
from reconciler.api.errors import ApiError, read_json
from reconciler.api.keys import ENGINE, SAGA, SETTINGS, TEMPORAL
from reconciler.api.params import path_id
from reconciler.api.recon_views import discrepancy_json, run_json
from reconciler.api.views import json_response
from reconciler.settings import Settings
from workflows.reconciliation import types as rt
from workflows.reconciliation.client import WorkflowServiceUnavailableError, start_reconciliation
from workflows.reconciliation.discrepancy import DiscrepancyActionWorkflow, workflow_id_for

log = structlog.get_logger(__name__)

ACTIONS: Final = ("dismiss", "request_refund", "request_manual_match", "confirm_with_bank")
_FIELDS: Final = frozenset({"action", "reason", "payee_account", "decision_number"})


def check_action(body: object) -> dict[str, Any]:
    """An action's body: a known action and a reason (the JSON API's and
    the console's forms' alike)."""
    body = check_object(body, _FIELDS)
    check_choice("action", body.get("action"), ACTIONS)
    reason = body.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise ValidationError("reason", "is required: say why")
    return body


@dataclass(frozen=True)
class ActionDone:
    """What an action did: the item as it now is, and the approval it asked
    for (``request_*``) or the reconciliation it started
    (``confirm_with_bank``: the run, and whether it joined one running)."""

    item: disc.Discrepancy
    approval: dict[str, Any] | None = None
    run: Run | None = None
    joined_running: bool = False


async def act(
    request: web.Request, discrepancy_id: int, actor: str, body: dict[str, Any]
) -> ActionDone:
    """Carry out one checked action (``check_action``) on one discrepancy:
    the JSON API's handler and the console's forms both act here."""
    if body["action"] == "dismiss":
        item = await dismiss(request, discrepancy_id, actor, body["reason"])
        log.info("discrepancy.dismissed", discrepancy_id=discrepancy_id, by=actor)
        return ActionDone(item)
    if body["action"] == "confirm_with_bank":
        return await confirm_with_bank(request, discrepancy_id, actor)
    item, approval = await request_action(request, discrepancy_id, actor, body)
    return ActionDone(item, approval)


async def dismiss(
    request: web.Request, discrepancy_id: int, actor: str, reason: str
) -> disc.Discrepancy:
    now = datetime.now(UTC)
    async with request.app[ENGINE].begin() as conn:
        item = await disc.close_discrepancy(conn, discrepancy_id, "dismissed", actor, reason, now)
        await append_audit(
            conn,
            actor=actor,
            action="discrepancy.dismissed",
            subject_type="discrepancy",
            subject_id=str(discrepancy_id),
            now=now,
            detail={
                "kind": item.kind,
                "bank": item.bank,
                "bank_ref": item.bank_ref,
                "amount_vnd": item.amount_vnd,
                "reason": reason.strip()[:2000],
            },
        )
    return item


async def post_action(request: web.Request) -> web.Response:
    principal = require(request, "recon:write")
    discrepancy_id = path_id(request, "discrepancy_id")
    body = check_action(await read_json(request))
    done = await act(request, discrepancy_id, principal.actor, body)
    answer: dict[str, Any] = {"discrepancy": discrepancy_json(done.item), "approval": done.approval}
    if done.run is not None:
        answer["reconciliation"] = {
            **run_json(request.app[SETTINGS].public_base_url, done.run),
            "joined_running": done.joined_running,
        }
    return json_response(answer, status=200 if body["action"] == "dismiss" else 202)


async def request_action(
    request: web.Request, discrepancy_id: int, actor: str, body: dict[str, Any]
) -> tuple[disc.Discrepancy, dict[str, Any]]:
    """Record the request for approval, then start the workflow that waits
    for the decision and carries it out. If the workflow cannot be started
    now, the request stays recorded; asking again starts it."""
    settings = request.app[SETTINGS]
    now = datetime.now(UTC)
    workflow_id = workflow_id_for(discrepancy_id)
    if body["action"] == "request_refund":
        payee = body.get("payee_account")
        if payee is not None and not isinstance(payee, str):
            raise ValidationError("payee_account", "must be a string")
        ask = functools.partial(disc.request_refund, payee_account=payee)
    else:
        number = body.get("decision_number")
        if not isinstance(number, str) or not number.strip():
            raise ValidationError("decision_number", "is required for a manual match")
        ask = functools.partial(disc.request_manual_match, decision_number=number)
    async with request.app[ENGINE].begin() as conn:
        approval = await ask(
            conn, discrepancy_id, actor, body["reason"], now, workflow_id=workflow_id
        )
        item = await disc.get_discrepancy(conn, discrepancy_id)
    started = await _start_waiting(request, discrepancy_id, approval, settings)
    log.info(
        "discrepancy.action_requested",
        discrepancy_id=discrepancy_id,
        action=approval.kind,
        approval_id=approval.id,
        workflow_started=started,
    )
    return item, {
        "id": approval.id,
        "kind": approval.kind,
        "status": approval.status,
        "requested_by": approval.requested_by,
        "workflow_id": workflow_id,
        "workflow_started": started,
    }


async def _start_waiting(
    request: web.Request, discrepancy_id: int, approval: Approval, settings: Settings
) -> bool:
    client = await request.app[TEMPORAL].client()
    if client is None:
        return False
    try:
        await client.start_workflow(
            DiscrepancyActionWorkflow.run,
            rt.DiscrepancyActionInput(
                discrepancy_id=discrepancy_id,
                approval_id=approval.id,
                action=approval.kind,
                timeout_seconds=settings.recon_approval_timeout_seconds,
            ),
            id=workflow_id_for(discrepancy_id),
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        return True  # already waiting for this (open) request
    except (RPCError, OSError) as err:
        log.warning("discrepancy.workflow_deferred", discrepancy_id=discrepancy_id, error=str(err))
        return False
    return True


async def confirm_with_bank(request: web.Request, discrepancy_id: int, actor: str) -> ActionDone:
    """Ask the bank: reconcile its own statement of the claimed line's day.
    What the bank has acts as the bank says; the claim closes by itself
    when the bank's statement has its reference (or stays open if not)."""
    async with request.app[ENGINE].connect() as conn:
        item = await disc.get_discrepancy(conn, discrepancy_id)
    if not item.open:
        raise disc.DiscrepancyClosedError(f"discrepancy {discrepancy_id} is already {item.status}")
    if item.kind != "unconfirmed":
        raise disc.DiscrepancyActionError(
            f"discrepancy {discrepancy_id} ({item.kind}) already comes from the bank's statement"
        )
    client = await request.app[TEMPORAL].client()
    if client is None:
        raise ApiError(503, "temporal_unavailable", "the workflow service is unavailable; retry")
    try:
        run, started = await start_reconciliation(
            client,
            request.app[ENGINE],
            request.app[SAGA],
            item.bank,
            item.statement_date,
            trigger="api",
            requested_by=actor,
            now=datetime.now(UTC),
        )
    except WorkflowServiceUnavailableError as err:
        raise ApiError(503, "temporal_unavailable", str(err)) from err
    log.info("discrepancy.confirm_with_bank", discrepancy_id=discrepancy_id, run=run.id, by=actor)
    return ActionDone(item, run=run, joined_running=not started)
