"""Operator views: bank-link outages (open and recent)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ledger.outages import PostgresOutageStore
from observability.outages import Outage
from reconciler.api.auth import require
from reconciler.api.keys import ENGINE
from reconciler.api.params import page_limit
from reconciler.api.views import json_response

OUTAGES_LIMIT_MAX = 500


def outage_json(outage: Outage) -> dict[str, Any]:
    return {
        "id": outage.id,
        "bank": outage.bank,
        "started_at": outage.started_at.isoformat(),
        "ended_at": outage.ended_at.isoformat() if outage.ended_at else None,
        "cause": outage.cause,
        "open": outage.is_open,
        "duration_seconds": outage.duration_seconds,
    }


async def outages(request: web.Request) -> web.Response:
    require(request, "ops:read")
    limit = page_limit(request, OUTAGES_LIMIT_MAX)
    bank = request.query.get("bank") or None
    store = PostgresOutageStore(request.app[ENGINE])
    open_ = [o for o in await store.open_outages() if bank is None or o.bank == bank]
    recent = await store.recent(limit, bank=bank)
    return json_response(
        {"open": [outage_json(o) for o in open_], "recent": [outage_json(o) for o in recent]}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/outages", outages)
