"""``GET /readyz``: which part the API needs is reachable now.

Public, so a stranger may call it as often as they like: one check of
PostgreSQL and one of Temporal run at a time, and their result is reused
for ``FRESH_SECONDS``; a flood of probes costs the database and Temporal
at most one round trip each per second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Final

import structlog
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciler.api.keys import ENGINE, TEMPORAL
from reconciler.api.temporal_link import TemporalLink
from reconciler.api.unavailable import RETRY_AFTER_SECONDS

log = structlog.get_logger(__name__)

# A readiness probe must answer before its caller gives up on it.
CHECK_SECONDS: Final = 3.0
FRESH_SECONDS: Final = 1.0


async def _database_ok(engine: AsyncEngine) -> bool:
    try:
        async with asyncio.timeout(CHECK_SECONDS):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except (OSError, SQLAlchemyError, TimeoutError) as err:
        log.warning("readyz.database_unavailable", error=f"{type(err).__name__}: {err}")
        return False
    return True


class Readiness:
    """The last check's parts, shared by the probes that come meanwhile."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = asyncio.Lock()
        self._checked_at: float | None = None
        self._parts: dict[str, str] = {}
        self.checks = 0  # how many times the parts were really asked

    async def parts(self, engine: AsyncEngine, temporal: TemporalLink) -> dict[str, str]:
        async with self._lock:
            now = self._clock()
            if self._checked_at is None or now - self._checked_at >= FRESH_SECONDS:
                database, workflows = await asyncio.gather(_database_ok(engine), temporal.healthy())
                self._parts = {
                    "database": "ok" if database else "unavailable",
                    "temporal": "ok" if workflows else "unavailable",
                }
                self._checked_at = self._clock()
                self.checks += 1
            return dict(self._parts)


READINESS: Final = web.AppKey("readiness", Readiness)


async def readyz(request: web.Request) -> web.Response:
    """200 while the database answers: fine lookups, receipts and reports
    need nothing else, so the API stays in a balancer's rotation while
    Temporal is down, and says so (``"temporal": "unavailable"``). 503
    (with ``Retry-After``) when the database is down, naming it."""
    parts = await request.app[READINESS].parts(request.app[ENGINE], request.app[TEMPORAL])
    if parts["database"] == "ok":
        return web.json_response({"status": "ready", **parts})
    # "error" as every other 4xx/5xx has it, the parts beside it.
    error = {"code": "not_ready", "message": "database unavailable"}
    response = web.json_response({"status": "not_ready", **parts, "error": error}, status=503)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
