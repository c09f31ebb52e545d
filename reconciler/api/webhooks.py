"""``POST /webhooks/{bank}``: signed bank callbacks, turned into signals.

A callback is acted on only after its signature, timestamp and nonce check
(forged or replayed: 401, nothing changes). A verified callback is kept in
the ledger (``bank_events``) with its nonce, in one transaction, before it
is acted on: the payment's workflow settles a signalled outcome only on
that record (or on the bank's answer when asked). It is acknowledged (2xx)
only once it is durable in Temporal; otherwise 503, its nonce is released,
and the bank's retry of the same delivery is taken.

A success for another amount than the payment's settles nothing: it is
kept, finance gets an amount-mismatch discrepancy, and the payment's
workflow is woken to ask the bank.
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
from ledger.nonces import TxNonceStore, release_nonce
from ledger.reconciliation.raised import open_webhook_amount_mismatch
from observability.metrics import webhook_requests_total
from reconciler.api.bodies import parse_json, read_body
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
    # Whole (a callback split across TCP packets is one body), within the
    # route's cap (413, not a signature failure) and deadline; then held to
    # the strict JSON rules, so no NUL or lone surrogate reaches the database.
    try:
        body = await read_body(request)
        parse_json(body)
    except ApiError:
        webhook_requests_total.labels(bank, "malformed").inc()
        raise
    engine = request.app[ENGINE]
    now = datetime.now(UTC)
    try:
        # The nonce and the event commit together, before anything acts on it.
        async with engine.begin() as conn:
            event = await verify_webhook(
                bank_settings.webhook_secret.encode(),
                request.headers,
                body,
                now,
                TxNonceStore(conn, bank),
            )
            await pay.record_bank_event(conn, _bank_event(bank, event), now)
    except WebhookRejected as err:
        status = 400 if err.code == "malformed_body" else 401
        log.warning("webhook.rejected", bank=bank, code=err.code, reason=err.reason)
        webhook_requests_total.labels(bank, webhook_result(err.code)).inc()
        raise ApiError(status, f"webhook_{err.code}", err.reason) from None
    except NonceStoreFullError as err:
        raise ApiError(503, "busy", str(err)) from None
    try:
        outcome = await _deliver(request, bank, event)
    except BaseException:
        # Not taken: the bank sends it again, and that delivery must not be
        # refused as a replay (the event stays recorded: the same event id).
        await release_nonce(engine, bank, event.nonce)
        raise
    webhook_requests_total.labels(bank, "accepted").inc()
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


def _bank_event(bank: str, event: WebhookEvent) -> pay.BankEvent:
    return pay.BankEvent(
        bank=bank,
        event_id=event.event_id,
        kind=event.kind,
        idempotency_key=event.idempotency_key,
        bank_ref=event.bank_ref,
        status=event.status,
        outcome=to_outcome(event.result).kind.value,
        amount_vnd=event.amount_vnd,
        occurred_at=event.occurred_at,
    )


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
            mismatch = await _amount_mismatch(request, payment, event, result)
            if await _signal_live(request, client, payment, result):
                return mismatch or "delivered"
    except RPCError as err:
        raise ApiError(503, "temporal_unavailable", "cannot take the callback now") from err
    raise ApiError(503, "busy", "the payment is changing state; send the callback again")


async def _amount_mismatch(
    request: web.Request, payment: pay.Payment, event: WebhookEvent, result: wt.BankOutcome
) -> str | None:
    """A success for another amount than the payment's: finance's to look
    at; the workflow, woken, finds no evidence of it and asks the bank."""
    if result.kind != wt.OutcomeKind.SUCCEEDED or event.amount_vnd == payment.amount_vnd:
        return None
    async with request.app[ENGINE].begin() as conn:
        opened = await open_webhook_amount_mismatch(
            conn,
            payment.id,
            event_id=event.event_id,
            bank_ref=event.bank_ref,
            webhook_amount_vnd=event.amount_vnd,
            now=datetime.now(UTC),
        )
    log.warning(
        "webhook.amount_mismatch",
        payment_id=str(payment.id),
        payment_amount_vnd=payment.amount_vnd,
        webhook_amount_vnd=event.amount_vnd,
        discrepancy_id=opened,
    )
    return "amount mismatch: checked with the bank"


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
