"""The outbox dispatcher: delivers queued notices (receipt issued, payment in
doubt) at least once, in order, with bounded attempts. The queue itself is
the ledger's (``ledger.core.outbox``).

A "receipt issued" notice gets the citizen's signed PDF link
(``reconciler.citizen_links``) when it is sent, if a link key is set. With
no ``notify_url`` a notice is only logged, and then a URL's token or
signature (``s=``, ``sig=``) is redacted: whoever reads the log must not be
able to open a citizen's receipt.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Final

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core import outbox
from reconciler.citizen_links import CitizenLinks
from reconciler.logs import uncached_logger

log = uncached_logger(__name__)

SEND_TIMEOUT_SECONDS = 10
_SECRET_QUERY_RE: Final = re.compile(r"([?&](?:s|sig|token)=)[^&#\s]*")


async def dispatch_once(
    engine: AsyncEngine,
    session: aiohttp.ClientSession,
    notify_url: str | None,
    links: CitizenLinks | None = None,
) -> int:
    """Deliver one batch; returns how many were delivered. The batch stays
    locked while it is sent, so several workers share the work without
    doubles (``outbox.claim_batch``)."""
    delivered = 0
    async with engine.begin() as conn:
        for notice in await outbox.claim_batch(conn):
            payload = _with_link(notice.kind, notice.payload, links)
            error = await _send(session, notify_url, notice.kind, notice.dedupe_key, payload)
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
        log.info("outbox.notice", kind=kind, dedupe_key=dedupe_key, **redacted(payload))
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


def _with_link(
    kind: str, payload: dict[str, object], links: CitizenLinks | None
) -> dict[str, object]:
    series, number = payload.get("series"), payload.get("number")
    if kind != "receipt_issued" or links is None:
        return payload
    if not isinstance(series, str) or not isinstance(number, int):
        return payload
    return {**payload, "pdf_url": links.url(series, number, time.time())}


def redact(text: str) -> str:
    """``text`` with the value of every ``s=``, ``sig=`` or ``token=`` query
    parameter replaced."""
    return _SECRET_QUERY_RE.sub(r"\1<redacted>", text)


def redacted(payload: dict[str, object]) -> dict[str, object]:
    return {k: redact(v) if isinstance(v, str) else v for k, v in payload.items()}
