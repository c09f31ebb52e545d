"""What both simulated banks share: their configuration and state, the fault
middleware of the bank port, statement assembly, and the admin API.

The admin API (a separate port, which stays up while the bank port is
"down"), as in DESIGN §6::

    GET    /healthz
    POST   /faults        {"mode", "probability", "seconds", ...}  → 201; unknown mode → 400
    GET    /faults
    DELETE /faults        all;  DELETE /faults/{id}  one
    GET    /debits        ground truth: every debit, refund and transfer the bank
                          made or declined, with our idempotency keys
    GET    /webhooks      webhook deliveries (REST bank)
    POST   /accounts      {"account", "balance_vnd", "blocked", "settle_delay_seconds"}
    GET    /accounts/{account}
    POST   /transfers     {"payer_account", "amount_vnd", "content"}: a citizen's own
                          transfer to our account (not through our QR)

Errors are ``{"error": {"code", "message"}}`` with a 4xx status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final, Literal

from aiohttp import web

from bank_adapters.simulators.faults import (
    FaultMode,
    FaultSpecError,
    flap_down,
    parse_fault,
)
from bank_adapters.simulators.render import SimLine, day_bounds_utc
from bank_adapters.simulators.store import (
    Account,
    FaultRow,
    Movement,
    NewMovement,
    SimStore,
)
from bank_adapters.text import bank_transfer_content
from domain.business_time import VIETNAM_TZ
from domain.formats import ACCOUNT_RE, IDEMPOTENCY_KEY_RE
from domain.money import AMOUNT_VND_MAX

SimProtocol = Literal["rest", "vietqr"]
BODY_BYTES_MAX: Final = 64 * 1024
GROUND_TRUTH_ROWS_MAX: Final = 200_000
_EXTRA_CONTENTS: Final = ("CHUYEN TIEN", "PHI QUAN LY TAI KHOAN", "NOP TIEN MAT")


@dataclass(frozen=True, slots=True)
class SimConfig:
    protocol: SimProtocol
    bank_id: str
    account_number: str
    bank_bin: str
    webhook_url: str | None = None
    webhook_secret: bytes = b""
    transfer_content_length_max: int = 50
    # Numbering of the bank's movements (and so of its references) starts
    # here. Tests sharing one Temporal server give each simulator its own
    # range, since workflow ids carry bank references.
    movement_id_start: int = 1

    def __post_init__(self) -> None:
        assert 1 <= self.movement_id_start < 10**8, self.movement_id_start
        assert ACCOUNT_RE.fullmatch(self.account_number), self.account_number
        assert re.fullmatch(r"\d{6}", self.bank_bin, re.ASCII), self.bank_bin
        if self.webhook_url is not None and not self.webhook_secret:
            raise ValueError("a webhook URL needs a webhook secret")


class SimCore:
    """The state both ports share: configuration, store, faults, clock."""

    def __init__(
        self,
        config: SimConfig,
        store: SimStore,
        stopping: asyncio.Event,
        apply_link: Callable[[], Awaitable[None]],
        wake_webhooks: Callable[[], None],
    ) -> None:
        self.config = config
        self.store = store
        self.stopping = stopping
        self.apply_link = apply_link
        self.wake_webhooks = wake_webhooks
        self.link_up = True
        self.url = ""
        # Set by the protocol: what to do when a pending movement is booked.
        self.settled_hook: Callable[[Movement], None] = lambda movement: None

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    def active_faults(self, mode: FaultMode) -> list[FaultRow]:
        now = time.time()
        return [
            f
            for f in self.store.faults()
            if f.mode == mode.value and (f.until is None or f.until > now)
        ]

    def fire(self, mode: FaultMode) -> FaultRow | None:
        """The first active fault of ``mode`` whose dice say yes, if any."""
        for fault in self.active_faults(mode):
            if random.random() < fault.probability:  # noqa: S311 (fault dice, not crypto)
                return fault
        return None

    def link_should_be_down(self) -> bool:
        now = time.time()
        if any(f.params.get("applied") for f in self.active_faults(FaultMode.LINK_DOWN)):
            return True
        return any(
            flap_down(f.id, f.created_at, f.params["period_seconds"], f.probability, now)
            for f in self.active_faults(FaultMode.FLAP)
        )

    async def sleep(self, seconds: float) -> None:
        """Sleep, but wake at once when the simulator stops."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=seconds)

    def webhook_delay_seconds(self) -> float:
        fault = self.fire(FaultMode.LATE_WEBHOOK)
        return float(fault.params["delay_seconds"]) if fault is not None else 0.0

    def settle_due(self) -> list[Movement]:
        """Book the pending movements whose time has come."""
        settled: list[Movement] = []
        due = self.store.due_settlements(self.now())
        if not due:
            return settled
        with self.store.transaction():
            for movement in due:
                settled.append(self.store.settle(movement.id))
                self.settled_hook(settled[-1])
        return settled

    # --- statements -----------------------------------------------------------

    def statement_lines(self, statement_date: date) -> tuple[int, list[SimLine]]:
        """Opening balance and lines of our account for one Vietnam business
        date, with the statement faults applied."""
        start, end = day_bounds_utc(statement_date)
        opening = self.store.balance_before(start)
        lines = [_sim_line(m) for m in self.store.booked_between(start, end)]
        missing = self.fire(FaultMode.STATEMENT_MISSING_LINES)
        if missing is not None:
            dice = random.Random(f"missing:{missing.id}:{statement_date}")  # noqa: S311
            lines = [line for line in lines if dice.random() >= missing.probability]
        extra = self.fire(FaultMode.STATEMENT_EXTRA_LINES)
        if extra is not None:
            lines.extend(_extra_lines(extra, statement_date, start))
            lines.sort(key=lambda line: line.booked_at)
        return opening, lines

    def statement_date_or_error(self, text: str) -> date:
        try:
            statement_date = date.fromisoformat(text)
        except ValueError:
            raise json_error(400, "invalid_date", f"{text[:20]!r} is not YYYY-MM-DD") from None
        if statement_date > self.now().astimezone(VIETNAM_TZ).date():
            raise json_error(404, "not_found", f"no statement for {statement_date} yet")
        return statement_date


def _sim_line(movement: Movement) -> SimLine:
    assert movement.booked_at is not None
    return SimLine(
        bank_ref=movement.bank_ref,
        booked_at=movement.booked_at,
        amount_vnd=movement.amount_vnd,
        direction=movement.direction,
        counterparty=movement.counterparty,
        content=movement.content,
        end_to_end_ref=movement.idempotency_key,
    )


def _extra_lines(fault: FaultRow, statement_date: date, day_start: datetime) -> list[SimLine]:
    dice = random.Random(f"extra:{fault.id}:{statement_date}")  # noqa: S311
    lines = []
    for n in range(int(fault.params["count"])):
        credit = dice.random() < 0.5
        lines.append(
            SimLine(
                bank_ref=f"EX{statement_date:%y%m%d}{fault.id % 100:02d}{n:06d}",
                booked_at=day_start + timedelta(seconds=dice.randrange(86_400)),
                amount_vnd=dice.randrange(1_000, 2_000_000),
                direction="C" if credit else "D",
                counterparty=f"{dice.randrange(10**12):013d}" if credit else "",
                content=_EXTRA_CONTENTS[0] if credit else _EXTRA_CONTENTS[1 + n % 2],
            )
        )
    return lines


# --- HTTP helpers ---------------------------------------------------------------------


def json_error(status: int, code: str, message: str) -> web.HTTPException:
    """An exception carrying the JSON error body, to ``raise``."""
    body = json.dumps({"error": {"code": code, "message": message}})
    error_class = {
        400: web.HTTPBadRequest,
        404: web.HTTPNotFound,
        409: web.HTTPConflict,
        422: web.HTTPUnprocessableEntity,
        500: web.HTTPInternalServerError,
    }[status]
    return error_class(text=body, content_type="application/json")


async def read_json_object(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, RecursionError):
        raise json_error(400, "invalid_json", "body is not JSON") from None
    if not isinstance(body, dict):
        raise json_error(400, "invalid_json", "body must be a JSON object")
    return body


def field_str(body: dict[str, Any], name: str, *, length_max: int, required: bool = True) -> str:
    value = body.get(name, None if required else "")
    if not isinstance(value, str) or (required and not value) or len(value) > length_max:
        raise json_error(
            400, "invalid_request", f"{name} must be a string of at most {length_max} characters"
        )
    if not value.isprintable():
        raise json_error(400, "invalid_request", f"{name} contains unprintable characters")
    return value


def field_account(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not ACCOUNT_RE.fullmatch(value):
        raise json_error(400, "invalid_request", f"{name} must be 1-34 letters or digits")
    return value


def field_amount(body: dict[str, Any], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= AMOUNT_VND_MAX:
        raise json_error(
            400, "invalid_request", f"{name} must be whole đồng in 1..{AMOUNT_VND_MAX}"
        )
    return value


def require_vnd(body: dict[str, Any]) -> None:
    if body.get("currency", "VND") != "VND":
        raise json_error(400, "invalid_request", "currency must be VND")


def header_key(request: web.Request, name: str) -> str:
    value = request.headers.get(name, "")
    if not IDEMPOTENCY_KEY_RE.fullmatch(value):
        raise json_error(400, "invalid_request", f"header {name} must be 1-100 [A-Za-z0-9._:-]")
    return value


def garble(response: web.StreamResponse) -> web.Response:
    body = response.body if isinstance(response, web.Response) else None
    data = bytes(body) if isinstance(body, bytes | bytearray) else b"{}"
    return web.Response(
        body=data[: len(data) // 2] + b"\x00\xff<<garbled>>",
        status=response.status,
        content_type=response.content_type,
    )


CORE_KEY: Final = web.AppKey("core", SimCore)


@web.middleware
async def fault_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Applies the request-level faults around every bank-port request. All
    POSTs on the bank port move money; the others only read."""
    core = request.app[CORE_KEY]
    money = request.method == "POST"
    latency = core.fire(FaultMode.LATENCY)
    if latency is not None:
        await core.sleep(latency.params["latency_ms"] / 1000)
    http_500 = core.fire(FaultMode.HTTP_500)
    if http_500 is not None and not (money and http_500.params["after_debit"]):
        raise json_error(500, "internal_error", "simulated HTTP 500 (nothing done)")
    core.settle_due()
    response = await handler(request)
    if http_500 is not None:
        raise json_error(500, "internal_error", "simulated HTTP 500 (after the debit)")
    if money:
        hang = core.fire(FaultMode.TIMEOUT_AFTER_DEBIT)
        if hang is not None:
            await core.sleep(hang.params["hang_seconds"])
    if core.fire(FaultMode.LOST_RESPONSE) is not None and request.transport is not None:
        # Cut the connection after the work is done: the client hears nothing.
        request.transport.abort()
        return response
    if core.fire(FaultMode.MALFORMED) is not None:
        return garble(response)
    return response


def bank_application(core: SimCore, routes: list[web.RouteDef]) -> web.Application:
    app = web.Application(client_max_size=BODY_BYTES_MAX, middlewares=[fault_middleware])
    app[CORE_KEY] = core
    app.add_routes(routes)
    return app


# --- admin API ------------------------------------------------------------------------


def record_transfer(core: SimCore, payer_account: str, amount_vnd: int, content: str) -> Movement:
    """A citizen's own transfer to our account: booked at once."""
    with core.store.transaction():
        movement = core.store.insert(
            NewMovement(
                kind="transfer",
                idempotency_key=None,
                dedupe_key=None,
                request_hash=None,
                amount_vnd=amount_vnd,
                direction="C",
                counterparty=payer_account,
                content_raw=content,
                content=bank_transfer_content(content, core.config.transfer_content_length_max),
                status="succeeded",
            ),
            core.now(),
        )
        core.store.add_balance(payer_account, -amount_vnd)
    return movement


_admin_routes = web.RouteTableDef()


@_admin_routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    return web.json_response(
        {
            "status": "ok",
            "protocol": core.config.protocol,
            "bank_id": core.config.bank_id,
            "url": core.url,
            "link_up": core.link_up,
            "account_number": core.config.account_number,
            "bank_bin": core.config.bank_bin,
        }
    )


@_admin_routes.post("/faults")
async def add_fault(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    try:
        spec = parse_fault(await read_json_object(request))
    except FaultSpecError as exc:
        raise json_error(400, exc.code, exc.message) from None
    params = dict(spec.params)
    if spec.mode is FaultMode.LINK_DOWN:
        params["applied"] = random.random() < spec.probability  # noqa: S311
    now = time.time()
    until = now + spec.seconds if spec.seconds is not None else None
    fault = core.store.add_fault(spec.mode.value, spec.probability, now, until, params)
    await core.apply_link()
    return web.json_response({"fault": _fault_json(fault)}, status=201)


@_admin_routes.get("/faults")
async def list_faults(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    return web.json_response({"faults": [_fault_json(f) for f in core.store.faults()]})


@_admin_routes.delete("/faults")
async def clear_faults(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    deleted = core.store.delete_faults()
    await core.apply_link()
    return web.json_response({"deleted": deleted})


@_admin_routes.delete("/faults/{fault_id:\\d{1,9}}")
async def delete_fault(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    deleted = core.store.delete_faults(int(request.match_info["fault_id"]))
    await core.apply_link()
    if not deleted:
        raise json_error(404, "not_found", "no such fault")
    return web.json_response({"deleted": deleted})


@_admin_routes.get("/debits")
async def debits(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    core.settle_due()
    rows = core.store.all_movements(GROUND_TRUTH_ROWS_MAX)
    return web.json_response({"debits": [m.to_json() for m in rows]})


@_admin_routes.get("/webhooks")
async def webhooks(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    return web.json_response({"webhooks": core.store.webhooks(GROUND_TRUTH_ROWS_MAX)})


@_admin_routes.post("/accounts")
async def put_account(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    body = await read_json_object(request)
    account = field_account(body, "account")
    balance = body.get("balance_vnd")
    blocked = body.get("blocked", False)
    delay = body.get("settle_delay_seconds", 0)
    if not isinstance(balance, int) or isinstance(balance, bool) or abs(balance) > 10**16:
        raise json_error(400, "invalid_request", "balance_vnd must be whole đồng")
    if not isinstance(blocked, bool):
        raise json_error(400, "invalid_request", "blocked must be true or false")
    if not isinstance(delay, int | float) or isinstance(delay, bool) or not 0 <= delay <= 3600:
        raise json_error(400, "invalid_request", "settle_delay_seconds must be in 0..3600")
    with core.store.transaction():
        core.store.put_account(Account(account, balance, blocked, float(delay)))
    return web.json_response({"account": _account_json(core.store.account(account))})


@_admin_routes.get("/accounts/{account}")
async def get_account(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    account = request.match_info["account"]
    if not ACCOUNT_RE.fullmatch(account):
        raise json_error(400, "invalid_request", "account must be 1-34 letters or digits")
    return web.json_response({"account": _account_json(core.store.account(account))})


@_admin_routes.post("/transfers")
async def transfer(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    body = await read_json_object(request)
    movement = record_transfer(
        core,
        field_account(body, "payer_account"),
        field_amount(body, "amount_vnd"),
        field_str(body, "content", length_max=500, required=False),
    )
    return web.json_response({"transfer": movement.to_json()}, status=201)


def admin_application(core: SimCore) -> web.Application:
    app = web.Application(client_max_size=BODY_BYTES_MAX)
    app[CORE_KEY] = core
    app.add_routes(_admin_routes)
    return app


def _fault_json(fault: FaultRow) -> dict[str, Any]:
    return {
        "id": fault.id,
        "mode": fault.mode,
        "probability": fault.probability,
        "until": fault.until,
        **fault.params,
    }


def _account_json(account: Account) -> dict[str, Any]:
    return {
        "account": account.account,
        "balance_vnd": account.balance_vnd,
        "blocked": account.blocked,
        "settle_delay_seconds": account.settle_delay_seconds,
    }
