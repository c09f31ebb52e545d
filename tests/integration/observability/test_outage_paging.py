"""``GET /api/v1/outages`` pages the recent outages with a cursor: every
outage once, newest first; a forged cursor is a 400 naming it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import aiohttp
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.outages import PostgresOutageStore
from tests.support.api import edge_app, make_token

BANK = "pagebank"
T0 = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)


async def _outages(engine: AsyncEngine, count: int) -> list[int]:
    """``count`` closed outages an hour apart; their ids, newest first."""
    store = PostgresOutageStore(engine)
    for n in range(count):
        start = T0 + timedelta(hours=n)
        await store.open_outage(BANK, start, f"outage {n}")
        await store.close_outage(BANK, start + timedelta(minutes=5))
    return [o.id for o in await store.recent(count, bank=BANK)]


async def test_pages_hold_every_outage_once_newest_first(engine: AsyncEngine, db_url: str) -> None:
    expected = await _outages(engine, 5)
    token = await make_token(engine, "operator")
    seen: list[int] = []
    pages = 0
    cursor: str | None = None
    async with edge_app(engine, db_url) as api, aiohttp.ClientSession() as http:
        while True:
            query = {"bank": BANK, "limit": "2", **({"cursor": cursor} if cursor else {})}
            async with http.get(
                f"{api.url}/api/v1/outages",
                params=query,
                headers={"Authorization": f"Bearer {token}"},
            ) as answer:
                assert answer.status == 200
                body = await answer.json()
            pages += 1
            seen += [row["id"] for row in body["recent"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
            assert pages < 10, "the cursor never ends"
    assert seen == expected
    assert pages == 3


async def test_a_forged_cursor_is_refused_by_name(engine: AsyncEngine, db_url: str) -> None:
    token = await make_token(engine, "operator")
    async with edge_app(engine, db_url) as api, aiohttp.ClientSession() as http:
        for forged in ("abc", "1.2.3", "-5.1", "1." + "9" * 19, "１.1"):
            async with http.get(
                f"{api.url}/api/v1/outages",
                params={"cursor": forged},
                headers={"Authorization": f"Bearer {token}"},
            ) as answer:
                assert answer.status == 400, forged
                body = await answer.json()
                assert "cursor" in body["error"]["message"], body
