"""The outbox dispatcher: delivers queued notices (receipt issued, payment in
doubt) at least once, in order, with bounded attempts."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import structlog
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = structlog.get_logger(__name__)

BATCH_SIZE_MAX = 100
ATTEMPTS_MAX = 20
SEND_TIMEOUT_SECONDS = 10


async def dispatch_once(
    engine: AsyncEngine, session: aiohttp.ClientSession, notify_url: str | None
) -> int:
    """Deliver one batch; returns how many were delivered. Rows are locked
    with SKIP LOCKED so several workers share the work without doubles."""
    delivered = 0
    async with engine.begin() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT id, kind, payload, dedupe_key, attempts FROM outbox "
                    "WHERE sent_at IS NULL AND attempts < :max ORDER BY id "
                    "LIMIT :limit FOR UPDATE SKIP LOCKED"
                ),
                {"max": ATTEMPTS_MAX, "limit": BATCH_SIZE_MAX},
            )
        ).all()
        for row in rows:
            error = await _send(session, notify_url, row.kind, row.dedupe_key, row.payload)
            if error is None:
                await conn.execute(
                    text(
                        "UPDATE outbox SET sent_at = :now, attempts = attempts + 1 WHERE id = :id"
                    ),
                    {"now": datetime.now(UTC), "id": row.id},
                )
                delivered += 1
            else:
                await conn.execute(
                    text(
                        "UPDATE outbox SET attempts = attempts + 1, last_error = :err "
                        "WHERE id = :id"
                    ),
                    {"err": error[:500], "id": row.id},
                )
    return delivered


async def _send(
    session: aiohttp.ClientSession,
    notify_url: str | None,
    kind: str,
    dedupe_key: str,
    payload: dict[str, object],
) -> str | None:
    if notify_url is None:
        log.info("outbox.notice", kind=kind, dedupe_key=dedupe_key, **payload)
        return None
    try:
        async with session.post(
            notify_url,
            json={"kind": kind, "id": dedupe_key, "data": payload},
            headers={"Idempotency-Key": dedupe_key},
            timeout=aiohttp.ClientTimeout(total=SEND_TIMEOUT_SECONDS),
        ) as resp:
            if resp.status >= 300:
                return f"HTTP {resp.status}"
    except (aiohttp.ClientError, TimeoutError) as err:
        return f"{type(err).__name__}: {err}"
    return None
