"""Operator views: bank-link outages (open and recent)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from aiohttp import web

from ledger.core.errors import ValidationError
from ledger.outages import PostgresOutageStore
from observability.outages import Outage
from reconciler.api.auth import require
from reconciler.api.keys import ENGINE
from reconciler.api.params import page_limit
from reconciler.api.views import json_response

OUTAGES_LIMIT_MAX = 500
OUTAGE_CURSOR_RE: Final = re.compile(r"([0-9]{1,17})\.([0-9]{1,18})")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


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


def outage_cursor(outage: Outage) -> str:
    """``<started_at in µs since the epoch>.<id>``: where the next page starts."""
    micros = (outage.started_at - _EPOCH) // timedelta(microseconds=1)
    return f"{micros}.{outage.id}"


def _outage_position(request: web.Request) -> tuple[datetime, int] | None:
    raw = request.query.get("cursor")
    if not raw:
        return None
    found = OUTAGE_CURSOR_RE.fullmatch(raw)
    if found is None:
        raise ValidationError("cursor", "is not a cursor this list gave")
    return _EPOCH + timedelta(microseconds=int(found[1])), int(found[2])


async def outages(request: web.Request) -> web.Response:
    """The open outages, and the recent ones newest first, ``limit`` a page;
    ``next_cursor`` (None on the last page) is the next page's ``cursor``."""
    require(request, "ops:read")
    limit = page_limit(request, OUTAGES_LIMIT_MAX)
    bank = request.query.get("bank") or None
    before = _outage_position(request)
    store = PostgresOutageStore(request.app[ENGINE])
    open_ = [o for o in await store.open_outages() if bank is None or o.bank == bank]
    recent = await store.recent(limit + 1, bank=bank, before=before)
    more = len(recent) > limit
    recent = recent[:limit]
    return json_response(
        {
            "open": [outage_json(o) for o in open_],
            "recent": [outage_json(o) for o in recent],
            "next_cursor": outage_cursor(recent[-1]) if more and recent else None,
        }
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/outages", outages)
