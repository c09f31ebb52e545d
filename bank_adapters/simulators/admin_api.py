"""The admin API of a simulated bank (its own port, up while the bank port is
"down"); the interface is listed in ``common``'s docstring and is stable:
tests, benchmarks and the chaos harness drive banks through it."""

from __future__ import annotations

import random
import time
from dataclasses import asdict
from typing import Any

from aiohttp import web

from bank_adapters.simulators.common import (
    BODY_BYTES_MAX,
    CORE_KEY,
    GROUND_TRUTH_ROWS_MAX,
    SimCore,
    field_account,
    field_amount,
    field_str,
    json_error,
    read_json_object,
)
from bank_adapters.simulators.faults import FaultMode, FaultSpecError, parse_fault
from bank_adapters.simulators.money import Content, Keys, book_credit, new_movement
from bank_adapters.simulators.store import Account, FaultRow, Movement
from bank_adapters.text import bank_transfer_content
from domain.formats import ACCOUNT_RE


def record_transfer(core: SimCore, payer_account: str, amount_vnd: int, content: str) -> Movement:
    """A citizen's own transfer to our account: booked at once."""
    kept = bank_transfer_content(content, core.config.transfer_content_length_max)
    new = new_movement("transfer", Keys(), payer_account, amount_vnd, Content(content, kept))
    with core.store.transaction():
        return book_credit(core, new, core.now())


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
    return web.json_response({"account": asdict(core.store.account(account))})


@_admin_routes.get("/accounts/{account}")
async def get_account(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    account = request.match_info["account"]
    if not ACCOUNT_RE.fullmatch(account):
        raise json_error(400, "invalid_request", "account must be 1-34 letters or digits")
    return web.json_response({"account": asdict(core.store.account(account))})


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
