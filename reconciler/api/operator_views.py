"""The operators' JSON views behind the console's operator pages:

* ``GET /api/v1/banks/health`` (``ops:read``): each configured bank up or
  down now (an open outage), since when, uptime over 24 h and 7 d (from
  the outage records), its outages of the last 7 days, and the number of
  payments in doubt at each hour of the last 24 h;
* ``GET /api/v1/payments/in-doubt?bank=&limit=&cursor=`` (``payments:read``):
  the in-doubt queue, oldest first, with age, status checks and the bank's
  last answer (``ledger.in_doubt``); unit scope in SQL;
* ``POST /api/v1/payments/{payment_id}/recheck`` (``ops:write``): "re-check
  now": the payment's workflow asks the bank for its status at once (a
  signal that only wakes its verifying loop; it moves no money). Audited.
  A payment that does not exist (or is out of the caller's units) is a 404,
  one no longer in doubt a 409 naming its status; repeating it is harmless
  (a woken loop checks once).

Registered before ``reconciler.api.payments`` so that ``/payments/in-doubt``
is not read as a payment id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from aiohttp import web
from temporalio.service import RPCError, RPCStatusCode

from ledger import payments as pay
from ledger.access import Principal
from ledger.core.audit import append_audit
from ledger.core.errors import NotFoundError, ValidationError
from ledger.in_doubt import IN_DOUBT_LIMIT_MAX, InDoubtItem, list_in_doubt
from ledger.link_health import BankHealth, InDoubtPoint, banks_health, in_doubt_hourly
from reconciler.api.auth import check_unit, require
from reconciler.api.errors import ApiError
from reconciler.api.keys import ENGINE, READER, SETTINGS, TEMPORAL
from reconciler.api.lists import payment_position, position_cursor
from reconciler.api.operations import outage_json
from reconciler.api.params import page_limit, path_uuid
from reconciler.api.views import json_response
from workflows.payment.client import request_recheck

log = structlog.get_logger(__name__)


def health_json(health: BankHealth) -> dict[str, Any]:
    return {
        "bank": health.bank,
        "up": health.up,
        "down_since": None if health.down_since is None else health.down_since.isoformat(),
        "uptime_24h": round(health.uptime_24h, 6),
        "uptime_7d": round(health.uptime_7d, 6),
        "outages_7d": [outage_json(o) for o in health.outages_7d],
        "last_probe": None
        if (probe := health.last_probe) is None
        else {
            "probed_at": probe.probed_at.isoformat(),
            "ok": probe.ok,
            "latency_ms": probe.latency_ms,
            "cause": probe.cause,
        },
    }


async def link_health(request: web.Request) -> tuple[list[BankHealth], list[InDoubtPoint]]:
    """Every configured bank's health now and the in-doubt count per hour."""
    now = datetime.now(UTC)
    banks = sorted(request.app[SETTINGS].banks)
    health = await banks_health(request.app[ENGINE], banks, now)
    hourly = await request.app[READER].run(lambda conn: in_doubt_hourly(conn, now))
    return health, hourly


async def banks_health_view(request: web.Request) -> web.Response:
    require(request, "ops:read")
    health, hourly = await link_health(request)
    return json_response(
        {
            "banks": [health_json(h) for h in health],
            "in_doubt_hourly": [{"at": p.at.isoformat(), "count": p.count} for p in hourly],
        }
    )


def in_doubt_json(item: InDoubtItem, now: datetime) -> dict[str, Any]:
    since = item.verifying_since or item.created_at
    return {
        "payment_id": str(item.payment_id),
        "decision_number": item.decision_number,
        "issuing_unit": item.issuing_unit,
        "bank": item.bank,
        "amount_vnd": item.amount_vnd,
        "status": item.status,
        "created_at": item.created_at.isoformat(),
        "verifying_since": None
        if item.verifying_since is None
        else item.verifying_since.isoformat(),
        "age_seconds": max(0, int((now - since).total_seconds())),
        "attempts": item.attempts,
        "last_answer": item.last_answer,
        "last_answer_detail": item.last_answer_detail,
        "last_answer_at": None if item.last_answer_at is None else item.last_answer_at.isoformat(),
    }


async def in_doubt_page(
    request: web.Request, principal: Principal
) -> tuple[list[InDoubtItem], str | None]:
    """A page of the queue from the request's ``bank``, ``limit`` and
    ``cursor`` (each checked: a bad one is a ValidationError naming it)."""
    bank = request.query.get("bank") or None
    banks = request.app[SETTINGS].banks
    if bank is not None and bank not in banks:
        raise ValidationError("bank", f"must be one of: {', '.join(sorted(banks)) or '(none)'}")
    limit = page_limit(request, IN_DOUBT_LIMIT_MAX)
    after = payment_position(request)
    rows = await request.app[READER].run(
        lambda conn: list_in_doubt(conn, bank=bank, units=principal.units, after=after, limit=limit)
    )
    last = rows[-1] if len(rows) == limit else None
    return rows, None if last is None else position_cursor(last.created_at, last.payment_id)


async def in_doubt_list(request: web.Request) -> web.Response:
    principal = require(request, "payments:read")
    rows, cursor = await in_doubt_page(request, principal)
    now = datetime.now(UTC)
    return json_response({"payments": [in_doubt_json(r, now) for r in rows], "next_cursor": cursor})


async def recheck_payment(
    request: web.Request, principal: Principal, payment_id: UUID
) -> dict[str, Any]:
    """Ask the payment's workflow to re-check it now (see the module doc)."""
    try:
        async with request.app[ENGINE].connect() as conn:
            payment = await pay.get_payment(conn, payment_id)
    except NotFoundError:
        raise ApiError(404, "not_found", f"no payment {payment_id}") from None
    check_unit(principal, payment.issuing_unit, f"no payment {payment_id}")
    if not payment.live:
        raise ApiError(
            409,
            "not_in_doubt",
            f"payment {payment_id} is {payment.status}: its outcome is known, nothing to re-check",
        )
    if payment.status != "verifying":
        # Still being sent: its workflow retries the send itself (there is
        # no status to check until the bank took the debit).
        raise ApiError(
            409,
            "not_verifying",
            f"payment {payment_id} is still being sent to the bank: nothing to re-check yet",
        )
    client = await request.app[TEMPORAL].client()
    if client is None:
        raise ApiError(503, "temporal_unavailable", "the workflow service is unavailable")
    try:
        await request_recheck(client, payment.decision_key, payment.id)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        raise ApiError(
            409,
            "no_workflow",
            f"payment {payment_id} has no running workflow yet; the sweeper starts it",
        ) from None
    async with request.app[ENGINE].begin() as conn:
        await append_audit(
            conn,
            actor=principal.actor,
            action="payment.recheck_requested",
            subject_type="payment",
            subject_id=str(payment_id),
            now=datetime.now(UTC),
            detail={"bank": payment.bank, "status": payment.status},
        )
    log.info("payment.recheck_requested", payment_id=str(payment_id), by=principal.actor)
    return {"payment_id": str(payment_id), "status": payment.status, "recheck": "requested"}


async def recheck(request: web.Request) -> web.Response:
    principal = require(request, "ops:write")
    payment_id = path_uuid(request, "payment_id", "a payment id")
    return json_response(await recheck_payment(request, principal, payment_id), status=202)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/banks/health", banks_health_view)
    app.router.add_get("/api/v1/payments/in-doubt", in_doubt_list)
    app.router.add_post("/api/v1/payments/{payment_id}/recheck", recheck)
