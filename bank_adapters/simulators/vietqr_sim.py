"""The simulated VietQR-transfer bank (protocol B, see
``bank_adapters.vietqr_bank`` for the model and the wire protocol).

``POST /v1/qr-payments`` plays the citizen's banking app paying a VietQR
code: the payload's CRC and fields are checked, the payer's balance decides,
and the transfer is credited to our account. It is idempotent on the
transfer content (which carries our payment reference); ``X-Request-ID``,
when sent, is only recorded (as ``idempotency_key`` in the ground truth).
Like real banks, the content is kept without diacritics or punctuation and
cut to ``transfer_content_length_max`` characters.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from aiohttp import web

from bank_adapters.simulators.common import (
    CORE_KEY,
    SimCore,
    bank_application,
    field_account,
    field_amount,
    field_str,
    json_error,
    read_json_object,
)
from bank_adapters.simulators.money import (
    Content,
    Keys,
    MoneyRequest,
    book_debit,
    book_refund,
    new_movement,
    payer_verdict,
    replayed,
    request_hash,
)
from bank_adapters.simulators.render import render_csv, render_mt940
from bank_adapters.simulators.store import Movement
from bank_adapters.text import bank_transfer_content
from bank_adapters.vietqr_payload import VietQRPayloadError, parse_vietqr_payload
from bank_adapters.wire import (
    QR_PAYMENTS_PATH,
    REQUEST_ID_HEADER,
    TRANSACTIONS_PAGE_SIZE_MAX,
    TRANSACTIONS_PATH,
    TRANSFERS_PATH,
    VIETQR_STATEMENTS_PATH,
    Iso8583Response,
)
from domain.formats import IDEMPOTENCY_KEY_RE

_PAGE_SIZE_DEFAULT: Final = 100
_MESSAGES: Final = {
    Iso8583Response.APPROVED: "approved",
    Iso8583Response.IN_PROGRESS: "in progress",
    Iso8583Response.INSUFFICIENT_FUNDS: "insufficient funds",
    Iso8583Response.RESTRICTED_ACCOUNT: "account restricted",
    Iso8583Response.INVALID_ACCOUNT: "beneficiary account not at this bank",
}


def _code(movement: Movement) -> Iso8583Response:
    match movement.status:
        case "succeeded":
            return Iso8583Response.APPROVED
        case "pending":
            return Iso8583Response.IN_PROGRESS
        case _:
            return Iso8583Response(movement.reason_code or Iso8583Response.DO_NOT_HONOR.value)


def _answer(movement: Movement) -> dict[str, Any]:
    code = _code(movement)
    return {
        "transaction_id": movement.bank_ref,
        "response_code": code.value,
        "message": _MESSAGES.get(code, code.name.lower()),
        "amount": movement.amount_vnd,
        "content": movement.content,
        "created_at": movement.created_at.isoformat(),
    }


def _replay(core: SimCore, kind: str, key: str, digest: str) -> web.Response | None:
    conflict = ("duplicate_reference", f"{kind} {key[:60]!r} exists with other data")
    return replayed(core, kind, key, digest, _answer, conflict)


def _declined(code: Iso8583Response) -> tuple[str, str]:
    return code.value, _MESSAGES[code]


def _when(request: web.Request, name: str) -> datetime:
    text = request.query.get(name, "")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise json_error(400, "invalid_request", f"{name} must be an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise json_error(400, "invalid_request", f"{name} must have an offset")
    return moment


async def qr_payment(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    store = core.store
    config = core.config
    body = await read_json_object(request)
    payload = field_str(body, "payload", length_max=512)
    payer = field_account(body, "payer_account")
    trace = request.headers.get(REQUEST_ID_HEADER)
    if trace is not None and not IDEMPOTENCY_KEY_RE.fullmatch(trace):
        raise json_error(400, "invalid_request", f"{REQUEST_ID_HEADER} is not a valid key")
    try:
        transfer = parse_vietqr_payload(payload)
    except VietQRPayloadError as exc:
        raise json_error(400, "invalid_qr", str(exc)) from None
    if (transfer.bank_bin, transfer.account_number) != (config.bank_bin, config.account_number):
        code = Iso8583Response.INVALID_ACCOUNT
        return web.json_response({"response_code": code.value, "message": _MESSAGES[code]})
    digest = request_hash({"a": transfer.amount_vnd, "p": payer, "c": transfer.content})
    dedupe_key = transfer.content or None
    if dedupe_key is not None:
        replay = _replay(core, "debit", dedupe_key, digest)
        if replay is not None:
            return replay
    now = core.now()
    with store.transaction():
        verdict = payer_verdict(
            store.account(payer),
            transfer.amount_vnd,
            now,
            blocked=_declined(Iso8583Response.RESTRICTED_ACCOUNT),
            short_of_funds=_declined(Iso8583Response.INSUFFICIENT_FUNDS),
        )
        content = Content(
            transfer.content,
            bank_transfer_content(transfer.content, config.transfer_content_length_max),
        )
        keys = Keys(trace, dedupe_key, digest)
        new = new_movement("debit", keys, payer, transfer.amount_vnd, content, verdict)
        movement, _ = book_debit(core, new, now)
    return web.json_response(_answer(movement), status=201)


async def outgoing_transfer(request: web.Request) -> web.Response:
    money = await MoneyRequest.read(request, REQUEST_ID_HEADER)
    core, key, body = money.core, money.key, money.body
    payee = field_account(body, "to_account")
    amount = field_amount(body, "amount")
    content = field_str(body, "content", length_max=210, required=False)
    digest = request_hash({"a": amount, "p": payee, "c": content})
    replay = _replay(core, "refund", key, digest)
    if replay is not None:
        return replay
    kept = bank_transfer_content(content, core.config.transfer_content_length_max)
    with core.store.transaction():
        new = new_movement("refund", Keys(key, key, digest), payee, amount, Content(content, kept))
        movement = book_refund(core, new, core.now())
    return web.json_response(_answer(movement), status=201)


async def transfer_status(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    store = core.store
    key = request.match_info["request_id"]
    movement = store.by_dedupe("refund", key) if IDEMPOTENCY_KEY_RE.fullmatch(key) else None
    if movement is None:
        raise json_error(404, "not_found", f"no transfer with request id {key[:100]}")
    return web.json_response(_answer(movement))


async def transactions(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    store = core.store
    start, end = _when(request, "from"), _when(request, "to")
    size_text = request.query.get("page_size", str(_PAGE_SIZE_DEFAULT))
    token = request.query.get("page_token", "0")
    if not size_text.isdigit() or not 1 <= int(size_text) <= TRANSACTIONS_PAGE_SIZE_MAX:
        raise json_error(
            400, "invalid_request", f"page_size must be in 1..{TRANSACTIONS_PAGE_SIZE_MAX}"
        )
    if not token.isdigit() or len(token) > 12:
        raise json_error(400, "invalid_request", "bad page_token")
    size = int(size_text)
    rows = store.booked_between(start, end, after_id=int(token), limit=size + 1)
    page = rows[:size]
    return web.json_response(
        {
            "transactions": [_history_entry(m) for m in page],
            "next_page_token": str(page[-1].id) if len(rows) > size else None,
        }
    )


async def statement(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    config = core.config
    statement_date = core.statement_date_or_error(request.match_info["date"])
    fmt = request.query.get("format", "mt940")
    opening, lines = core.statement_lines(statement_date)
    if fmt == "mt940":
        body = render_mt940(config.account_number, statement_date, opening, lines)
        return web.Response(body=body, content_type="text/plain", charset="utf-8")
    if fmt == "csv":
        return web.Response(body=render_csv(lines), content_type="text/csv", charset="utf-8")
    raise json_error(400, "invalid_request", "format must be mt940 or csv")


def vietqr_routes() -> list[web.RouteDef]:
    return [
        web.post(QR_PAYMENTS_PATH, qr_payment),
        web.post(TRANSFERS_PATH, outgoing_transfer),
        web.get(TRANSFERS_PATH + "/{request_id}", transfer_status),
        web.get(TRANSACTIONS_PATH, transactions),
        web.get(VIETQR_STATEMENTS_PATH + "/{date}", statement),
    ]


def _history_entry(movement: Movement) -> dict[str, Any]:
    assert movement.booked_at is not None
    return {
        "transaction_id": movement.bank_ref,
        "booked_at": movement.booked_at.isoformat(),
        "amount": movement.amount_vnd,
        "direction": movement.direction,
        "counterparty_account": movement.counterparty,
        "content": movement.content,
    }


def vietqr_bank_app(core: SimCore) -> web.Application:
    return bank_application(core, vietqr_routes())
