"""Payments: start one (idempotent), read its status and history, wake the
in-doubt payments of a bank whose link is back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import structlog
from aiohttp import web
from temporalio.service import RPCError

from domain.formats import is_account
from ledger import payments as pay
from ledger.access import Principal
from ledger.core.audit import append_audit
from ledger.core.checks import check_object
from ledger.core.errors import ValidationError
from ledger.fines import get_fine
from reconciler.api.auth import check_unit, require
from reconciler.api.errors import ApiError, read_json
from reconciler.api.keys import ENGINE, SAGA, SETTINGS, TEMPORAL
from reconciler.api.params import path_uuid
from reconciler.api.views import json_response, payment_view_json
from workflows.payment.client import start_link_recovery, start_payment

log = structlog.get_logger(__name__)

IDEMPOTENCY_KEY_MAX_CHARS = 200
# How long the link-recovery event waits for its report before answering 202.
RECOVERY_WAIT_SECONDS = 20.0


def _payment_body(body: object, banks: list[str]) -> tuple[str, str]:
    body = check_object(body, {"bank", "payer_account"})
    bank = body.get("bank")
    if not isinstance(bank, str) or bank not in banks:
        raise ValidationError("bank", f"must be one of: {', '.join(sorted(banks)) or '(none)'}")
    account = body.get("payer_account")
    if not is_account(account):
        raise ValidationError("payer_account", "must be 1-34 letters or digits")
    return bank, account


async def create_payment(request: web.Request) -> web.Response:
    principal = require(request, "payments:write")
    key = request.headers.get("Idempotency-Key", "").strip()
    if not key:
        raise ValidationError("Idempotency-Key", "header is required to start a payment")
    if len(key) > IDEMPOTENCY_KEY_MAX_CHARS:
        raise ValidationError("Idempotency-Key", f"is longer than {IDEMPOTENCY_KEY_MAX_CHARS}")
    settings = request.app[SETTINGS]
    bank, account = _payment_body(await read_json(request), list(settings.banks))
    decision_number = request.match_info["decision_number"]
    async with request.app[ENGINE].begin() as conn:
        fine = await get_fine(conn, decision_number)
        client_key = pay.ClientKey(
            principal.actor,
            key,
            pay.request_hash(
                {"decision_key": fine.decision_key, "bank": bank, "payer_account": account}
            ),
        )
        payment, created = await pay.create_payment(
            conn, fine, bank, account, datetime.now(UTC), client=client_key
        )
    if payment.live:
        await _start(request, payment)
    log.info(
        "payment.requested",
        payment_id=str(payment.id),
        bank=payment.bank,
        created=created,
        status=payment.status,
    )
    return json_response(
        {
            "payment_id": str(payment.id),
            "status": payment.status,
            "decision_number": payment.decision_number,
            "bank": payment.bank,
            "amount_vnd": payment.amount_vnd,
        },
        status=202,
    )


async def _start(request: web.Request, payment: pay.Payment) -> None:
    """Best effort: if Temporal is unreachable now, the payment is already
    recorded and the worker's sweeper starts its workflow later."""
    client = await request.app[TEMPORAL].client()
    if client is None:
        log.warning("payment.start_deferred", payment_id=str(payment.id), reason="no temporal")
        return
    try:
        await start_payment(client, request.app[SAGA], payment.decision_key, payment.id)
    except (RPCError, OSError) as err:
        log.warning("payment.start_deferred", payment_id=str(payment.id), error=str(err))


async def get_payment(request: web.Request) -> web.Response:
    principal = require(request, "payments:read")
    payment_id = path_uuid(request, "payment_id", "a payment id")
    async with request.app[ENGINE].connect() as conn:
        view = await pay.payment_view(conn, payment_id)
    check_unit(principal, view.payment.issuing_unit, f"no payment {payment_id}")
    return json_response(payment_view_json(request.app[SETTINGS].public_base_url, view))


async def link_recovered(request: web.Request) -> web.Response:
    """The link-recovery event, as the prober sends it: what the bank now
    confirms is settled and receipted in bulk, then every in-doubt payment
    of the bank re-checks. Answers with the report when the recovery ends
    within ``RECOVERY_WAIT_SECONDS`` (200), else 202 with its workflow id
    (it goes on; Temporal owns it)."""
    principal = require(request, "ops:write")
    status, body = await recover_link(request, principal, request.match_info["bank"])
    return json_response(body, status=status)


async def recover_link(
    request: web.Request, principal: Principal, bank: str, wait_seconds: float | None = None
) -> tuple[int, dict[str, Any]]:
    """Start (or join) ``bank``'s link recovery in ``principal``'s name,
    audited; the HTTP status and body of ``link_recovered`` (the console's
    "wake a bank" shares it)."""
    if bank not in request.app[SETTINGS].banks:
        raise ApiError(404, "not_found", f"no bank {bank!r} is configured")
    client = await request.app[TEMPORAL].client()
    if client is None:
        raise ApiError(503, "temporal_unavailable", "the workflow service is unavailable")
    handle = await start_link_recovery(client, request.app[SAGA].task_queue, bank)
    # A person's hand on money: what it settles is receipted in bulk.
    async with request.app[ENGINE].begin() as conn:
        await append_audit(
            conn,
            actor=principal.actor,
            action="bank.link_recovery_requested",
            subject_type="bank",
            subject_id=bank,
            now=datetime.now(UTC),
            detail={"workflow_id": handle.id},
        )
    wait = RECOVERY_WAIT_SECONDS if wait_seconds is None else wait_seconds
    try:
        report = await asyncio.wait_for(handle.result(), wait)
    except TimeoutError:
        return 202, {"bank": bank, "status": "running", "recovery_workflow_id": handle.id}
    return 200, {
        "bank": bank,
        "status": "completed",
        "recovery_workflow_id": handle.id,
        **vars(report),
    }


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/fines/{decision_number:.+}/payments", create_payment)
    app.router.add_get("/api/v1/payments/{payment_id}", get_payment)
    app.router.add_post("/api/v1/banks/{bank}/link-recovered", link_recovered)
