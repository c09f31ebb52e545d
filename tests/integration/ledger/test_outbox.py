"""The outbox on real PostgreSQL: a notice is queued once per dedupe key,
claimed oldest first by one dispatcher at a time, and tried a bounded
number of times; the dispatcher posts it to the notify URL."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core import outbox
from reconciler.citizen_links import CitizenLinks
from reconciler.outbox import dispatch_once
from tests.support.logs import all_logs

NOW = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)


async def _enqueue(engine: AsyncEngine, key: str, **payload: Any) -> bool:
    async with engine.begin() as conn:
        return await outbox.enqueue(conn, key, "receipt_issued", payload)


async def _rows(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT dedupe_key, attempts, sent_at IS NOT NULL, last_error "
                "FROM outbox ORDER BY id"
            )
        )
        return [tuple(r) for r in rows]


async def test_a_notice_is_queued_once_per_dedupe_key(engine: AsyncEngine) -> None:
    assert await _enqueue(engine, "receipt-issued:1", number=1)
    assert not await _enqueue(engine, "receipt-issued:1", number=2)
    async with engine.begin() as conn:
        (notice,) = await outbox.claim_batch(conn)
    assert (notice.dedupe_key, notice.kind, notice.payload) == (
        "receipt-issued:1",
        "receipt_issued",
        {"number": 1},
    )


async def test_claims_are_oldest_first_and_skip_a_batch_held_elsewhere(
    engine: AsyncEngine,
) -> None:
    for i in range(5):
        await _enqueue(engine, f"k{i}")
    async with engine.connect() as first, engine.connect() as second:
        await first.begin()
        held = await outbox.claim_batch(first, limit=2)
        await second.begin()
        rest = await outbox.claim_batch(second)
        await second.rollback()
        await first.rollback()
    assert [n.dedupe_key for n in held] == ["k0", "k1"]
    assert [n.dedupe_key for n in rest] == ["k2", "k3", "k4"]


async def test_sent_notices_and_spent_attempts_are_not_claimed_again(
    engine: AsyncEngine,
) -> None:
    await _enqueue(engine, "sent")
    await _enqueue(engine, "failing")
    async with engine.begin() as conn:
        sent, failing = await outbox.claim_batch(conn)
        await outbox.mark_sent(conn, sent.id, NOW)
        await outbox.mark_failed(conn, failing.id, "HTTP 503 " + "x" * 1000)
    for _ in range(outbox.ATTEMPTS_MAX - 2):
        async with engine.begin() as conn:
            (again,) = await outbox.claim_batch(conn)
            await outbox.mark_failed(conn, again.id, "HTTP 503")
    async with engine.begin() as conn:
        (last,) = await outbox.claim_batch(conn)
        assert last.attempts == outbox.ATTEMPTS_MAX - 1
        await outbox.mark_failed(conn, last.id, "HTTP 500")
    async with engine.begin() as conn:
        assert await outbox.claim_batch(conn) == []
    assert await _rows(engine) == [
        ("sent", 1, True, None),
        ("failing", outbox.ATTEMPTS_MAX, False, "HTTP 500"),
    ]


@pytest.fixture
async def notify_server() -> AsyncIterator[tuple[TestServer, list[dict[str, Any]]]]:
    """A notify endpoint that refuses the notice keyed ``refused``."""
    received: list[dict[str, Any]] = []

    async def notify(request: web.Request) -> web.Response:
        body = await request.json()
        if body["id"] == "refused":
            return web.Response(status=503)
        assert request.headers["Idempotency-Key"] == body["id"]
        received.append(body)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/notify", notify)
    async with TestServer(app) as server:
        yield server, received


async def test_the_dispatcher_posts_each_notice_once(
    engine: AsyncEngine, notify_server: tuple[TestServer, list[dict[str, Any]]]
) -> None:
    server, received = notify_server
    await _enqueue(engine, "delivered", number=7)
    await _enqueue(engine, "refused", number=8)
    url = str(server.make_url("/notify"))
    async with aiohttp.ClientSession() as session:
        assert await dispatch_once(engine, session, url) == 1
        assert await dispatch_once(engine, session, url) == 0
    assert received == [{"kind": "receipt_issued", "id": "delivered", "data": {"number": 7}}]
    assert await _rows(engine) == [("delivered", 1, True, None), ("refused", 2, False, "HTTP 503")]


LINKS = CitizenLinks.from_secret("k" * 40, "https://bienlai.example.vn", 3600)
VERIFY_URL = "https://bienlai.example.vn/verify/A-2026/3?s=QRTOKEN1234567890abcd"


async def test_a_logged_notice_carries_no_token_or_signature(engine: AsyncEngine) -> None:
    """No notify URL: the notice goes to the log, where an operator reading
    it must not be able to open the citizen's receipt."""
    await _enqueue(engine, "logged", series="A-2026", number=3, verify_url=VERIFY_URL)
    async with aiohttp.ClientSession() as session:
        with all_logs() as logs:
            assert await dispatch_once(engine, session, None, LINKS) == 1
    (notice,) = [e for e in logs if e["event"] == "outbox.notice"]
    assert notice["verify_url"] == "https://bienlai.example.vn/verify/A-2026/3?s=<redacted>"
    assert notice["pdf_url"].endswith("&sig=<redacted>")
    assert "QRTOKEN" not in repr(logs)


async def test_a_receipt_notice_carries_the_citizens_signed_link(
    engine: AsyncEngine, notify_server: tuple[TestServer, list[dict[str, Any]]]
) -> None:
    server, received = notify_server
    await _enqueue(engine, "with-link", series="A-2026", number=3, verify_url=VERIFY_URL)
    async with aiohttp.ClientSession() as session:
        assert await dispatch_once(engine, session, str(server.make_url("/notify")), LINKS) == 1
    data = received[0]["data"]
    assert data["verify_url"] == VERIFY_URL  # the portal gets it whole
    link = re.fullmatch(
        r"https://bienlai\.example\.vn/receipts/A-2026/3\.pdf\?exp=(\d+)&sig=([\w-]+)",
        data["pdf_url"],
    )
    assert link is not None
    assert LINKS.holds("A-2026", 3, link.group(1), link.group(2), time.time())
