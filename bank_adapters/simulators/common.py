"""What both simulated banks share: their configuration and state, the fault
middleware and scaffold of the bank port, statement assembly and request
validation; what they do with a money request is ``money``. Each protocol
module keeps only its wire format and its own codes; the admin API is
``admin_api``.

The admin API (a separate port, which stays up while the bank port is
"down")::

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

from bank_adapters.simulators.faults import FaultMode, flap_down
from bank_adapters.simulators.render import SimLine, day_bounds_utc
from bank_adapters.simulators.store import FaultRow, Movement, SimStore
from bank_adapters.wire import HEALTH_PATH
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


@dataclass(eq=False)
class SimCore:
    """The state both ports share: configuration, store, faults, clock."""

    config: SimConfig
    store: SimStore
    stopping: asyncio.Event
    apply_link: Callable[[], Awaitable[None]]
    wake_webhooks: Callable[[], None]
    link_up: bool = True
    url: str = ""
    # Set by the protocol: what to do when a pending movement is booked.
    settled_hook: Callable[[Movement], None] = lambda movement: None

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
    """The bank port: the protocol's ``routes``, the health check, the faults."""
    app = web.Application(client_max_size=BODY_BYTES_MAX, middlewares=[fault_middleware])
    app[CORE_KEY] = core
    app.add_routes([*routes, web.get(HEALTH_PATH, health)])
    return app


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
