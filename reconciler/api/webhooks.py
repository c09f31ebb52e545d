"""``POST /webhooks/{bank}``: signed bank callbacks, turned into signals.

A callback is acted on only after its signature, timestamp and nonce check
(forged or replayed: 401, nothing changes). It is acknowledged (2xx) only
once it is durable in Temporal; otherwise 503, and the bank sends it again.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from aiohttp import web
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from bank_adapters.webhooks import (
    NonceStoreFullError,
    WebhookEvent,
    WebhookRejected,
    verify_webhook,
)
from ledger import payments as pay
from ledger.nonces import PgNonceStore
from observability.metrics import webhook_requests_total
from reconciler.api.errors import ApiError
from reconciler.api.keys import ENGINE, SAGA, SETTINGS, TEMPORAL
from reconciler.api.views import json_response
from workflows.payment import types as wt
from workflows.payment.activities import to_outcome
from workflows.payment.client import signal_bank_update, start_external_debit, start_payment

log = structlog.get_logger(__name__)

WEBHOOK_BODY_BYTES_MAX = 64 * 1024


async def bank_webhook(request: web.Request) -> web.Response:
    bank = request.match_info["bank"]
    bank_settings = request.app[SETTINGS].banks.get(bank)
    if bank_settings is None or not bank_settings.webhook_secret:
        # Never the path's value as a label: a stranger would choose it.
        webhook_requests_total.labels("unknown", "unknown_bank").inc()
        raise ApiError(404, "not_found", f"no webhooks are configured for bank {bank!r}")
    body = await request.content.read(WEBHOOK_BODY_BYTES_MAX + 1)
    if len(body) > WEBHOOK_BODY_BYTES_MAX:
        webhook_requests_total.labels(bank, "malformed").inc()
        raise ApiError(413, "body_too_large", f"webhook body over {WEBHOOK_BODY_BYTES_MAX} bytes")
    engine = request.app[ENGINE]
    try:
        event = await verify_webhook(
            bank_settings.webhook_secret.encode(),
            request.headers,
            body,
            datetime.now(UTC),
            PgNonceStore(engine, bank),
        )
    except WebhookRejected as err:
        status = 400 if err.code == "malformed_body" else 401
        log.warning("webhook.rejected", bank=bank, code=err.code, reason=err.reason)
        webhook_requests_total.labels(bank, webhook_result(err.code)).inc()
        raise ApiError(status, f"webhook_{err.code}", err.reason) from None
    except NonceStoreFullError as err:
        raise ApiError(503, "busy", str(err)) from None
    webhook_requests_total.labels(bank, "accepted").inc()
    outcome = await _deliver(request, bank, event)
    return json_response({"status": outcome})


def webhook_result(code: str) -> str:
    """A rejection's code (``bank_adapters.webhooks``) as the metric's bounded
    ``result``: a signature, a time, a reused nonce, or anything else malformed."""
    if code == "bad_signature":
        return "bad_signature"
    if code in ("stale_timestamp", "bad_timestamp"):
        return "stale"
    if code == "replayed_nonce":
        return "replayed"
    return "malformed"


async def _deliver(request: web.Request, bank: str, event: WebhookEvent) -> str:
    if event.kind != "debit":
        log.info("webhook.refund_event", bank=bank, key=event.idempotency_key, status=event.status)
        return "noted"
    client = await request.app[TEMPORAL].client()
    if client is None:
        raise ApiError(503, "temporal_unavailable", "cannot take the callback now; send it again")
    result = to_outcome(event.result)
    try:
        # Twice at most: a payment may finish between our read and our signal.
        for _ in range(2):
            async with request.app[ENGINE].connect() as conn:
                payment = await pay.find_payment_by_debit_key(conn, event.idempotency_key)
            if payment is None or payment.bank != bank:
                log.warning("webhook.unknown_payment", bank=bank, key=event.idempotency_key)
                return "ignored: unknown payment"
            if not payment.live:
                return await _after_the_fact(request, client, payment, event, result)
            if await _signal_live(request, client, payment, result):
                return "delivered"
    except RPCError as err:
        raise ApiError(503, "temporal_unavailable", "cannot take the callback now") from err
    raise ApiError(503, "busy", "the payment is changing state; send the callback again")


async def _signal_live(
    request: web.Request, client: Client, payment: pay.Payment, result: wt.BankOutcome
) -> bool:
    """Signal the payment's workflow; False when it has just finished."""
    update = wt.BankUpdate(str(payment.id), result.kind, result.bank_ref, result.reason)
    try:
        await signal_bank_update(client, payment.decision_key, update)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        async with request.app[ENGINE].connect() as conn:
            still_live = (await pay.get_payment(conn, payment.id)).live
        if not still_live:
            return False
        # Its workflow was never started (the sweeper would): start it now.
        await start_payment(client, request.app[SAGA], payment.decision_key, payment.id)
        await signal_bank_update(client, payment.decision_key, update)
    return True


async def _after_the_fact(
    request: web.Request,
    client: Client,
    payment: pay.Payment,
    event: WebhookEvent,
    result: wt.BankOutcome,
) -> str:
    if (
        result.kind == wt.OutcomeKind.SUCCEEDED
        and result.bank_ref
        and result.bank_ref != payment.bank_ref
    ):
        # A second booking for the same request (the bank debited twice), or
        # a success after we recorded a decline: handled on its own, once.
        await start_external_debit(
            client,
            request.app[SAGA],
            wt.ExternalDebitInput(
                bank=payment.bank,
                bank_ref=result.bank_ref,
                decision_key=payment.decision_key,
                amount_vnd=event.amount_vnd,
                payer_account=payment.payer_account,
                cause=f"bank reported another debit for {payment.debit_key}",
                debit_key=payment.debit_key,
            ),
        )
        return "external debit"
    return "duplicate"


def add_routes(app: web.Application) -> None:
    app.router.add_post("/webhooks/{bank}", bank_webhook)
