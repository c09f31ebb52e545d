"""The simulated REST/JSON account-debit bank (protocol A, see
``bank_adapters.rest_bank`` for the wire protocol).

Every debit is of the payer's account at this bank, credited to our
collection account; declines come from the payer's balance or a blocked
account (``POST /accounts`` on the admin port). An account with
``settle_delay_seconds`` answers ``ACSP`` (pending) and books later. Final
statuses are sent to the webhook URL, signed (see ``bank_adapters.webhooks``).
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from bank_adapters.simulators.common import (
    CORE_KEY,
    SimCore,
    bank_application,
    field_account,
    field_amount,
    field_str,
    json_error,
)
from bank_adapters.simulators.money import (
    SUCCEEDED,
    Content,
    Keys,
    MoneyRequest,
    Verdict,
    book_debit,
    book_refund,
    new_movement,
    payer_verdict,
    replayed,
    request_hash,
)
from bank_adapters.simulators.render import render_camt053
from bank_adapters.simulators.store import Movement, SimStore
from bank_adapters.wire import (
    IDEMPOTENCY_KEY_HEADER,
    REST_DEBITS_PATH,
    REST_REFUNDS_PATH,
    REST_STATEMENTS_PATH,
    RestReason,
    RestStatus,
)
from domain.formats import IDEMPOTENCY_KEY_RE

_STATUS = {
    "succeeded": RestStatus.ACCEPTED_SETTLED,
    "pending": RestStatus.ACCEPTED_IN_PROCESS,
    "declined": RestStatus.REJECTED,
}
_CONTENT_LENGTH_MAX = 140  # camt.053 Ustrd


def _answer(movement: Movement) -> dict[str, Any]:
    ref_field = "debit_id" if movement.kind == "debit" else "refund_id"
    return {
        ref_field: movement.bank_ref,
        "idempotency_key": movement.idempotency_key,
        "status": _STATUS[movement.status].value,
        "reason_code": movement.reason_code,
        "reason": movement.reason,
        "amount": movement.amount_vnd,
        "currency": "VND",
        "created_at": movement.created_at.isoformat(),
    }


def enqueue_webhook(core: SimCore, movement: Movement) -> None:
    """Queue the signed callback for a final status (in the caller's transaction)."""
    if core.config.webhook_url is None or movement.status == "pending":
        return
    payload = {
        "event_id": f"evt_{movement.id}_{movement.status}",
        "type": f"{movement.kind}.updated",
        "idempotency_key": movement.idempotency_key,
        "bank_ref": movement.bank_ref,
        "status": _STATUS[movement.status].value,
        "reason_code": movement.reason_code,
        "reason": movement.reason,
        "amount": movement.amount_vnd,
        "currency": "VND",
        "occurred_at": (movement.booked_at or movement.created_at).isoformat(),
    }
    core.store.enqueue_webhook(movement.id, payload, time.time() + core.webhook_delay_seconds())


def _replay(core: SimCore, kind: str, key: str, digest: str) -> web.Response | None:
    conflict = ("idempotency_key_reused", f"{key} was used for a different {kind} request")
    return replayed(core, kind, key, digest, _answer, conflict)


async def create_debit(request: web.Request) -> web.Response:
    money = await MoneyRequest.read(request, IDEMPOTENCY_KEY_HEADER)
    core, key, body = money.core, money.key, money.body
    amount = field_amount(body, "amount")
    debtor = field_account(body, "debtor_account")
    reference = field_str(body, "reference", length_max=64)
    description = field_str(body, "description", length_max=140, required=False)
    digest = request_hash({"a": amount, "d": debtor, "r": reference, "t": description})
    replay = _replay(core, "debit", key, digest)
    if replay is not None:
        return replay
    now = core.now()
    content = f"{reference} {description}".strip()[:_CONTENT_LENGTH_MAX]
    with core.store.transaction():
        verdict = payer_verdict(
            core.store.account(debtor),
            amount,
            now,
            blocked=(RestReason.ACCOUNT_BLOCKED.value, "account blocked"),
            short_of_funds=(RestReason.INSUFFICIENT_FUNDS.value, "insufficient funds"),
        )
        new = new_movement(
            "debit", Keys(key, key, digest), debtor, amount, Content(content, content), verdict
        )
        movement, duplicate = book_debit(core, new, now)
        enqueue_webhook(core, movement)
        if duplicate is not None:
            # The bank notifies both bookings (each with its own bank ref).
            enqueue_webhook(core, duplicate)
    core.wake_webhooks()
    return web.json_response(_answer(movement), status=201)


def _original_reference(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """The debit a refund is of: by our idempotency key or by the bank's id."""
    original_key = body.get("original_idempotency_key")
    original_ref = body.get("original_debit_id")
    for name, value in (
        ("original_idempotency_key", original_key),
        ("original_debit_id", original_ref),
    ):
        if value is not None and not (
            isinstance(value, str) and IDEMPOTENCY_KEY_RE.fullmatch(value)
        ):
            raise json_error(400, "invalid_request", f"{name} is not a valid reference")
    if original_key is None and original_ref is None:
        raise json_error(
            400, "invalid_request", "original_idempotency_key or original_debit_id required"
        )
    return original_key, original_ref


def _refund_verdict(store: SimStore, original: Movement | None, amount: int) -> Verdict:
    if original is None or original.status != "succeeded" or original.direction != "C":
        return Verdict("declined", RestReason.NOT_FOUND.value, "original debit not found")
    if store.refunded_vnd(original.id) + amount > original.amount_vnd:
        return Verdict(
            "declined",
            RestReason.AMOUNT_EXCEEDS_ORIGINAL.value,
            "refund exceeds what is left of the debit",
        )
    return SUCCEEDED


async def create_refund(request: web.Request) -> web.Response:
    money = await MoneyRequest.read(request, IDEMPOTENCY_KEY_HEADER)
    core, key, body = money.core, money.key, money.body
    amount = field_amount(body, "amount")
    reason_text = field_str(body, "reason", length_max=140, required=False)
    original_key, original_ref = _original_reference(body)
    digest = request_hash({"a": amount, "k": original_key, "r": original_ref})
    replay = _replay(core, "refund", key, digest)
    if replay is not None:
        return replay
    now = core.now()
    store = core.store
    with store.transaction():
        original = (
            store.by_dedupe("debit", original_key)
            if original_key is not None
            else store.by_bank_ref(str(original_ref))
        )
        payee = original.counterparty if original is not None else ""
        content = f"HOAN TIEN {original.bank_ref if original else ''} {reason_text}".strip()
        new = new_movement(
            "refund",
            Keys(key, key, digest),
            payee,
            amount,
            Content(content, content[:_CONTENT_LENGTH_MAX]),
            _refund_verdict(store, original, amount),
            original_id=original.id if original is not None else None,
        )
        movement = book_refund(core, new, now)
        enqueue_webhook(core, movement)
    core.wake_webhooks()
    return web.json_response(_answer(movement), status=201)


def lookup(kind: str) -> Any:
    async def handler(request: web.Request) -> web.Response:
        store = request.app[CORE_KEY].store
        key = request.match_info["key"]
        movement = store.by_dedupe(kind, key) if IDEMPOTENCY_KEY_RE.fullmatch(key) else None
        if movement is None:
            raise json_error(404, "not_found", f"no {kind} with idempotency key {key[:100]}")
        return web.json_response(_answer(movement))

    return handler


async def statement(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    statement_date = core.statement_date_or_error(request.match_info["date"])
    opening, lines = core.statement_lines(statement_date)
    body = render_camt053(
        core.config.account_number, statement_date, opening, lines, created_at=core.now()
    )
    return web.Response(body=body, content_type="application/xml")


def rest_routes() -> list[web.RouteDef]:
    return [
        web.post(REST_DEBITS_PATH, create_debit),
        web.get(REST_DEBITS_PATH + "/{key}", lookup("debit")),
        web.post(REST_REFUNDS_PATH, create_refund),
        web.get(REST_REFUNDS_PATH + "/{key}", lookup("refund")),
        web.get(REST_STATEMENTS_PATH + "/{date}", statement),
    ]


def rest_bank_app(core: SimCore) -> web.Application:
    core.settled_hook = lambda movement: enqueue_webhook(core, movement)
    return bank_application(core, rest_routes())
