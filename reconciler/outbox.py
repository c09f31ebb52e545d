"""The outbox dispatcher: delivers queued notices (receipt issued, payment in
doubt) at least once, in order, with bounded attempts. The queue itself is
the ledger's (``ledger.core.outbox``)."""

from __future__ import annotations

from datetime import UTC, datetime

import aiohttp
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core import outbox

log = structlog.get_logger(__name__)

SEND_TIMEOUT_SECONDS = 10


async def dispatch_once(
    engine: AsyncEngine, session: aiohttp.ClientSession, notify_url: str | None
) -> int:
    """Deliver one batch; returns how many were delivered. The batch stays
    locked while it is sent, so several workers share the work without
    doubles (``outbox.claim_batch``)."""
    delivered = 0
    async with engine.begin() as conn:
        for notice in await outbox.claim_batch(conn):
            error = await _send(session, notify_url, notice.kind, notice.dedupe_key, notice.payload)
            if error is None:
                await outbox.mark_sent(conn, notice.id, datetime.now(UTC))
                delivered += 1
            else:
                await outbox.mark_failed(conn, notice.id, error)
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
