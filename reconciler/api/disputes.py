"""Disputes and maker-checker approvals over the JSON API.

* ``POST /api/v1/disputes`` (finance, officer): record a complaint; answers
  201 with the dispute and the evidence gathered for it (the bank asked now,
  its answers kept).
* ``GET /api/v1/disputes`` and ``GET /api/v1/disputes/{id}`` (with evidence
  and history): the ledger only, never a bank (the bank's side as last
  gathered, with when).
* ``POST /api/v1/disputes/{id}/evidence/refresh`` (finance, officer): ask the
  bank again now, keep and answer the evidence.
* ``POST /api/v1/disputes/{id}/resolutions`` (finance): ``reject`` closes it
  at once; ``confirm`` / ``refund`` request an approval and start the
  DisputeWorkflow that waits for it.
* ``GET /api/v1/approvals``, ``GET /api/v1/approvals/{id}``,
  ``POST /api/v1/approvals/{id}/approve`` and ``/reject`` (approver, admin):
  the requester can never decide (403, whatever their role); a decided
  request cannot be decided again (409). The decision is recorded in the
  database first, then the waiting workflow is signalled.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Protocol, TypeVar

import aiohttp
import structlog
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection
from temporalio.service import RPCError

from bank_adapters.base import BankAdapter
from domain.formats import ACCOUNT_RE, BANK_REF_RE
from ledger import disputes as ds
from ledger.access import Principal
from ledger.access.scope import fine_units
from ledger.core import approvals as ap
from ledger.core.audit import AuditEntry
from ledger.core.checks import check_choice, check_object, check_reason
from ledger.core.errors import ValidationError
from ledger.fines import get_fine, missing_fine_message
from reconciler.api.auth import check_unit, require
from reconciler.api.errors import read_json
from reconciler.api.keys import ENGINE, SETTINGS, TEMPORAL
from reconciler.api.params import page_limit, path_id, query_after_id
from reconciler.api.views import json_response, payment_view_json
from reconciler.settings import Settings
from reconciler.wiring import build_adapters
from workflows.disputes import types as dt
from workflows.disputes.client import DisputePolicy, deliver_decision, start_dispute
from workflows.disputes.evidence import Evidence, gather_evidence, stored_evidence

log = structlog.get_logger(__name__)

PAGE_SIZE_MAX: Final = 500
_RESOLUTION_FIELDS: Final = frozenset({"action", "reason", "bank_ref", "payer_account"})


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


T = TypeVar("T", bound=_HasId)


@dataclass(frozen=True)
class EvidenceBanks:
    """Bank adapters of the API process, used only to read a debit's status."""

    adapters: Mapping[str, BankAdapter]


BANKS: Final = web.AppKey("dispute_banks", EvidenceBanks)


def dispute_policy(settings: Settings) -> DisputePolicy:
    return DisputePolicy(
        task_queue=settings.task_queue,
        timeout_seconds=settings.dispute_approval_timeout_seconds,
        reminder_interval_seconds=settings.dispute_reminder_interval_seconds,
        reminders_max=settings.dispute_reminders_max,
    )


# --- JSON ---------------------------------------------------------------------


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def dispute_json(dispute: ds.Dispute) -> dict[str, Any]:
    return {
        "id": dispute.id,
        "decision_number": dispute.decision_number,
        "bank": dispute.bank,
        "amount_vnd": dispute.amount_vnd,
        "fine_amount_vnd": dispute.fine_amount_vnd,
        "occurred_at": dispute.occurred_at.isoformat(),
        "bank_ref": dispute.bank_ref,
        "payer_account": dispute.payer_account,
        "description": dispute.description,
        "contact_phone": dispute.contact_phone,
        "contact_email": dispute.contact_email,
        "status": dispute.status,
        "opened_by": dispute.opened_by,
        "opened_at": dispute.opened_at.isoformat(),
        "updated_at": dispute.updated_at.isoformat(),
        "approval_id": dispute.approval_id,
        "resolution": dispute.resolution,
        "resolution_reason": dispute.resolution_reason,
        "resolved_by": dispute.resolved_by,
        "resolved_at": _iso(dispute.resolved_at),
        "payment_id": str(dispute.payment_id) if dispute.payment_id else None,
        "result": dispute.result,
    }


def approval_json(approval: ap.Approval) -> dict[str, Any]:
    return {
        "id": approval.id,
        "kind": approval.kind,
        "subject_type": approval.subject_type,
        "subject_id": approval.subject_id,
        "payload": approval.payload,
        "reason": approval.reason,
        "requested_by": approval.requested_by,
        "requested_at": approval.requested_at.isoformat(),
        "status": approval.status,
        "decided_by": approval.decided_by,
        "decided_at": _iso(approval.decided_at),
        "decision_reason": approval.decision_reason,
        "executed_at": _iso(approval.executed_at),
        "result": approval.result,
    }


def audit_json(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "action": entry.action,
        "subject_type": entry.subject_type,
        "subject_id": entry.subject_id,
        "detail": entry.detail,
    }


def evidence_json(base_url: str, evidence: Evidence) -> dict[str, Any]:
    ledger = evidence.ledger
    return {
        "fine": {
            "decision_number": ledger.fine.decision_number,
            "amount_vnd": ledger.fine.amount_vnd,
            "status": ledger.fine_status,
        },
        "payments": [payment_view_json(base_url, view) for view in ledger.payments],
        "debit_payment_id": str(ledger.debit_payment.id) if ledger.debit_payment else None,
        "statement_lines": [
            {
                "id": line.id,
                "bank": line.bank,
                "bank_ref": line.bank_ref,
                "booked_at": line.booked_at.isoformat(),
                "amount_vnd": line.amount_vnd,
                "direction": line.direction,
                "counterparty": line.counterparty,
                "content": line.content,
                "class": line.line_class,
                "payment_id": str(line.payment_id) if line.payment_id else None,
                "matched_by": line.matched_by,
                "uploaded": line.uploaded,
            }
            for line in ledger.statement_lines
        ],
        "bank": {
            "gathered_at": _iso(evidence.gathered_at),
            "debit": evidence.debit.to_json() if evidence.debit is not None else None,
            "reachable": evidence.bank_reachable,
            "note": evidence.bank_note,
            "checks": [
                {
                    "payment_id": check.payment_id,
                    "bank": check.bank,
                    "outcome": check.outcome,
                    "bank_ref": check.bank_ref,
                    "detail": check.detail,
                }
                for check in evidence.bank_checks
            ],
        },
    }


# --- helpers ---------------------------------------------------------------------


async def _evidence(request: web.Request, dispute_id: int, asked_by: str | None) -> dict[str, Any]:
    """The dispute with its evidence: the bank asked now by ``asked_by`` (and
    its answers kept), or, with None, as last gathered (no bank is called)."""
    settings = request.app[SETTINGS]
    if asked_by is None:
        dispute, evidence = await stored_evidence(request.app[ENGINE], dispute_id)
    else:
        dispute, evidence = await gather_evidence(
            request.app[ENGINE],
            request.app[BANKS].adapters,
            dispute_id,
            settings.evidence_bank_timeout_seconds,
            gathered_by=asked_by,
            now=datetime.now(UTC),
        )
    return {
        **dispute_json(dispute),
        "evidence": evidence_json(settings.public_base_url, evidence),
    }


# --- disputes -------------------------------------------------------------------------


def dispute_input(request: web.Request, body: object) -> ds.DisputeInput:
    """A dispute body checked against this API's banks and money bounds."""
    settings = request.app[SETTINGS]
    return ds.DisputeInput.from_json(
        body, list(settings.banks), settings.max_amount_vnd, datetime.now(UTC)
    )


async def open_dispute_as(
    request: web.Request, principal: Principal, inp: ds.DisputeInput
) -> dict[str, Any]:
    """Record the dispute (a fine of another unit does not exist for a
    unit-scoped caller), then gather the evidence; the JSON API and the
    console's dispute page both open disputes here."""
    async with request.app[ENGINE].begin() as conn:
        if principal.units:
            fine = await get_fine(conn, inp.decision_number)
            check_unit(principal, fine.issuing_unit, missing_fine_message(inp.decision_number))
        dispute = await ds.open_dispute(conn, inp, principal.actor, datetime.now(UTC))
    log.info("dispute.opened", dispute_id=dispute.id, bank=dispute.bank, by=principal.actor)
    return await _evidence(request, dispute.id, principal.actor)


async def create_dispute(request: web.Request) -> web.Response:
    principal = require(request, "disputes:open")
    inp = dispute_input(request, await read_json(request))
    return json_response(await open_dispute_as(request, principal, inp), status=201)


async def refresh_evidence(request: web.Request) -> web.Response:
    principal = require(request, "disputes:open")
    dispute_id = path_id(request, "dispute_id")
    await check_dispute_scope(request, principal, dispute_id)
    return json_response(await _evidence(request, dispute_id, principal.actor))


async def refresh_as(request: web.Request, principal: Principal, dispute_id: int) -> None:
    """Ask the bank again now, as ``principal`` (its answers kept); the
    console's refresh form. Unit scope as the JSON route's."""
    await check_dispute_scope(request, principal, dispute_id)
    await _evidence(request, dispute_id, principal.actor)


async def list_disputes(request: web.Request) -> web.Response:
    principal = require(request, "disputes:read")
    filters = ("status", "bank", "decision_number")
    return await _page(
        request, "disputes", ds.list_disputes, filters, dispute_json, in_scope(principal)
    )


def in_scope(
    principal: Principal,
) -> Callable[[AsyncConnection, Sequence[ds.Dispute]], Awaitable[list[ds.Dispute]]] | None:
    """For a unit-scoped caller: the disputes of a page whose fines are theirs."""
    if not principal.units:
        return None

    async def keep(conn: AsyncConnection, rows: Sequence[ds.Dispute]) -> list[ds.Dispute]:
        units = await fine_units(conn, {d.fine_id for d in rows})
        return [d for d in rows if principal.sees_unit(units[d.fine_id])]

    return keep


async def check_dispute_scope(request: web.Request, principal: Principal, dispute_id: int) -> None:
    """A dispute of a fine outside the caller's units is not found (404)."""
    if not principal.units:
        return
    async with request.app[ENGINE].connect() as conn:
        dispute = await ds.get_dispute(conn, dispute_id)
        units = await fine_units(conn, {dispute.fine_id})
    check_unit(principal, units[dispute.fine_id], f"no dispute {dispute_id}")


async def get_dispute(request: web.Request) -> web.Response:
    principal = require(request, "disputes:read")
    dispute_id = path_id(request, "dispute_id")
    await check_dispute_scope(request, principal, dispute_id)
    body = await _evidence(request, dispute_id, None)
    async with request.app[ENGINE].connect() as conn:
        approvals = await ap.list_approvals(
            conn, subject_type="dispute", subject_id=str(dispute_id), limit=PAGE_SIZE_MAX
        )
        trail = await ds.history(conn, dispute_id)
    body["approvals"] = [approval_json(a) for a in approvals]
    body["history"] = [audit_json(e) for e in trail]
    return json_response(body)


def _resolution_body(body: object) -> dict[str, Any]:
    body = check_object(body, _RESOLUTION_FIELDS)
    check_choice("action", body.get("action"), ds.ACTIONS)
    for name, pattern in (("bank_ref", BANK_REF_RE), ("payer_account", ACCOUNT_RE)):
        value = body.get(name)
        if value is not None and not (isinstance(value, str) and pattern.fullmatch(value)):
            raise ValidationError(name, "is not valid")
    return body


async def resolve_dispute(request: web.Request) -> web.Response:
    principal = require(request, "disputes:resolve")
    dispute_id = path_id(request, "dispute_id")
    dispute, approval, started = await resolve_as(
        request, principal, dispute_id, await read_json(request)
    )
    if approval is None:
        return json_response({"dispute": dispute_json(dispute), "approval": None})
    return json_response(
        {
            "dispute": dispute_json(dispute),
            "approval": approval_json(approval),
            "workflow_started": started,
        },
        status=202,
    )


async def resolve_as(
    request: web.Request, principal: Principal, dispute_id: int, body: object
) -> tuple[ds.Dispute, ap.Approval | None, bool]:
    """A resolution by ``principal``: ``reject`` closes the dispute now (no
    approval); ``confirm`` / ``refund`` ask for a second person's approval
    (asking again while it waits returns the same request) and start the
    workflow waiting for it. Returns the dispute, the approval and whether
    the workflow started. The JSON API and the console's forms both resolve
    here."""
    body = _resolution_body(body)
    now = datetime.now(UTC)
    action = str(body["action"])
    reason = body.get("reason")
    if not isinstance(reason, str):
        raise ValidationError("reason", "is required: say why")
    await check_dispute_scope(request, principal, dispute_id)
    async with request.app[ENGINE].begin() as conn:
        if action == "reject":
            dispute = await ds.reject_dispute(conn, dispute_id, reason, principal.actor, now)
            return dispute, None, False
        dispute, approval = await ds.request_resolution(
            conn,
            dispute_id,
            action,
            reason,
            principal.actor,
            now,
            bank_ref=body.get("bank_ref"),
            payer_account=body.get("payer_account"),
        )
    return dispute, approval, await _start_workflow(request, dispute.id, approval)


async def _start_workflow(request: web.Request, dispute_id: int, approval: ap.Approval) -> bool:
    """Best effort: without Temporal now, the approve endpoint starts the
    workflow with the decision (signal-with-start)."""
    client = await request.app[TEMPORAL].client()
    if client is None:
        log.warning("dispute.workflow_deferred", dispute_id=dispute_id, reason="no temporal")
        return False
    try:
        await start_dispute(client, dispute_policy(request.app[SETTINGS]), dispute_id, approval)
    except (RPCError, OSError) as err:
        log.warning("dispute.workflow_deferred", dispute_id=dispute_id, error=str(err))
        return False
    return True


# --- approvals -------------------------------------------------------------------------


async def list_approvals(request: web.Request) -> web.Response:
    require(request, "approvals:read")
    filters = ("status", "kind", "subject_type", "subject_id")
    return await _page(request, "approvals", ap.list_approvals, filters, approval_json)


async def _page(
    request: web.Request,
    name: str,
    list_rows: Callable[..., Awaitable[Sequence[T]]],
    filters: tuple[str, ...],
    to_json: Callable[[T], dict[str, Any]],
    keep: Callable[[AsyncConnection, Sequence[T]], Awaitable[list[T]]] | None = None,
) -> web.Response:
    """One page of a listing in id order: the ``filters`` from the query,
    ``after_id`` and ``limit``; ``next_after_id`` is null on the last page.
    ``keep`` narrows a page to what the caller may see: the page may then
    hold fewer rows than ``limit`` while ``next_after_id`` goes on."""
    limit = page_limit(request, PAGE_SIZE_MAX)
    async with request.app[ENGINE].connect() as conn:
        rows = await list_rows(
            conn,
            **{f: request.query.get(f) for f in filters},
            after_id=query_after_id(request),
            limit=limit,
        )
        shown = await keep(conn, rows) if keep is not None else rows
    return json_response(
        {
            name: [to_json(r) for r in shown],
            "next_after_id": rows[-1].id if len(rows) == limit else None,
        }
    )


async def get_approval(request: web.Request) -> web.Response:
    require(request, "approvals:read")
    async with request.app[ENGINE].connect() as conn:
        approval = await ap.get_approval(conn, path_id(request, "approval_id"))
    return json_response(approval_json(approval))


async def _decide(request: web.Request, approve: bool) -> web.Response:
    principal = require(request, "approvals:decide")
    approval_id = path_id(request, "approval_id")
    body: Any = await read_json(request) if request.can_read_body else {}
    if not isinstance(body, dict) or set(body) - {"reason"}:
        raise ValidationError("body", 'may only hold {"reason": "..."}')
    approval, signalled = await decide(request, principal, approval_id, approve, body.get("reason"))
    return json_response({**approval_json(approval), "workflow_signalled": signalled})


async def decide(
    request: web.Request,
    principal: Principal,
    approval_id: int,
    approve: bool,
    reason: object,
) -> tuple[ap.Approval, bool]:
    """The decision of a person, never the requester (nor through a
    credential the requester issued them); the JSON API and the console's
    approvals inbox both decide here. Every check comes before any write: a
    refused decision leaves no trace but a log line. Returns the approval
    and whether its workflow was signalled."""
    check_reason("reason", reason, required=not approve)
    assert reason is None or isinstance(reason, str)
    now = datetime.now(UTC)
    try:
        async with request.app[ENGINE].begin() as conn:
            # No lock here: who asked never changes, and the dispute row must be
            # locked before the approval (ledger.core.approvals, lock order).
            current = await ap.get_approval(conn, approval_id)
            ap.check_not_requester(current, principal.actor, principal.vouched_by)
            approval = await ds.decide_approval(
                conn, approval_id, approve, principal.actor, reason, now
            )
    except ap.SameApproverError:
        log.warning("approval.self_decision_refused", approval_id=approval_id, by=principal.actor)
        raise
    return approval, await _deliver(request, approval, principal.actor)


async def _deliver(request: web.Request, approval: ap.Approval, decided_by: str) -> bool:
    """The decision is committed; now wake the workflow waiting for it. If
    that fails, the workflow still finds the decision at its next reminder
    tick or at its timeout (it re-reads the database)."""
    client = await request.app[TEMPORAL].client()
    if client is None:
        log.warning("approval.signal_deferred", approval_id=approval.id, reason="no temporal")
        return False
    decision = dt.ApprovalDecision(
        approval.id, approval.status == "approved", decided_by, approval.decision_reason or ""
    )
    try:
        return await deliver_decision(
            client, dispute_policy(request.app[SETTINGS]), approval, decision
        )
    except (RPCError, OSError) as err:
        log.warning("approval.signal_deferred", approval_id=approval.id, error=str(err))
        return False


async def approve(request: web.Request) -> web.Response:
    return await _decide(request, True)


async def reject(request: web.Request) -> web.Response:
    return await _decide(request, False)


# --- wiring ------------------------------------------------------------------------------


async def _bank_adapters(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        app[BANKS] = EvidenceBanks(build_adapters(app[SETTINGS], session))
        yield


def add_routes(app: web.Application) -> None:
    app.cleanup_ctx.append(_bank_adapters)
    app.router.add_post("/api/v1/disputes", create_dispute)
    app.router.add_get("/api/v1/disputes", list_disputes)
    app.router.add_get("/api/v1/disputes/{dispute_id}", get_dispute)
    app.router.add_post("/api/v1/disputes/{dispute_id}/evidence/refresh", refresh_evidence)
    app.router.add_post("/api/v1/disputes/{dispute_id}/resolutions", resolve_dispute)
    app.router.add_get("/api/v1/approvals", list_approvals)
    app.router.add_get("/api/v1/approvals/{approval_id}", get_approval)
    app.router.add_post("/api/v1/approvals/{approval_id}/approve", approve)
    app.router.add_post("/api/v1/approvals/{approval_id}/reject", reject)
