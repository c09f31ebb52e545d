"""The fine lookup's hot path: cached token checks (revocation still takes
effect, within the cache's TTL) and reads that survive the database dropping
the API's pooled connections."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.fines import fine_view, get_fine
from ledger.receipts.issue import issue_receipt
from ledger.receipts.signing import ReceiptSigner
from reconciler.api.app import create_app
from reconciler.api.auth import TokenCache
from reconciler.api.keys import READER, SETTINGS
from reconciler.api.views import fine_view_json
from reconciler.settings import Settings
from tests.support.api import FINE, make_token

LOOKUP = "/api/v1/fines/01234%2Fqd-xphc"
NOW = datetime(2026, 11, 23, 3, 0, 0, 123_456, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.now_seconds = 0.0

    def __call__(self) -> float:
        return self.now_seconds


@asynccontextmanager
async def _client(
    engine: AsyncEngine, db_url: str, cache: TokenCache | None = None
) -> AsyncIterator[TestClient[Any, Any]]:
    app = create_app(Settings(env="dev", database_url=db_url), engine=engine, token_cache=cache)
    async with TestClient(TestServer(app)) as client:
        yield client


async def _bearer(engine: AsyncEngine, role: str, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_token(engine, role, name)}"}


async def test_revoked_token_stops_working_once_its_cache_entry_expires(
    engine: AsyncEngine, db_url: str
) -> None:
    clock = FakeClock()
    cache = TokenCache(ttl_seconds=5.0, entries_max=16, clock=clock)
    async with _client(engine, db_url, cache) as client:
        portal = await _bearer(engine, "portal", "portal")
        assert (await client.post("/api/v1/fines", json=FINE, headers=portal)).status == 201
        assert (await client.get(LOOKUP, headers=portal)).status == 200
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE api_tokens SET revoked_at = now()"))
        # Within the TTL the verified token is still trusted (documented)...
        clock.now_seconds += 4.0
        assert (await client.get(LOOKUP, headers=portal)).status == 200
        # ...and no longer once the TTL has passed.
        clock.now_seconds += 1.0
        refused = await client.get(LOOKUP, headers=portal)
        assert refused.status == 401
        assert "revoked" in (await refused.json())["error"]["message"]
        assert len(cache) == 0


async def test_roles_still_apply_to_a_cached_token(engine: AsyncEngine, db_url: str) -> None:
    async with _client(engine, db_url) as client:
        officer = await _bearer(engine, "officer", "officer")
        for _ in range(2):  # the second request is answered from the cache
            assert (await client.get(LOOKUP, headers=officer)).status == 404
            resp = await client.post("/api/v1/fines", json=FINE, headers=officer)
            assert resp.status == 403
            assert (await resp.json())["error"]["code"] == "forbidden"


async def _fill_read_pool(client: TestClient[Any, Any], connections: int) -> set[int]:
    """Backend pids of ``connections`` connections, all then idle in the read
    engine's pool (as after a burst of lookups)."""
    async with AsyncExitStack() as stack:
        pids = set()
        for _ in range(connections):
            conn = await stack.enter_async_context(client.app[READER].engine.connect())
            pids.add(int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()))
    assert len(pids) == connections
    return pids


async def _terminate(engine: AsyncEngine, pids: set[int]) -> None:
    async with engine.connect() as conn:
        for pid in pids:
            assert (
                await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
            ).scalar()


async def test_lookup_and_token_check_survive_dropped_connections(
    engine: AsyncEngine, db_url: str
) -> None:
    async with _client(engine, db_url) as client:
        portal = await _bearer(engine, "portal", "portal")
        assert (await client.post("/api/v1/fines", json=FINE, headers=portal)).status == 201
        assert (await client.get(LOOKUP, headers=portal)).status == 200

        # As after a database restart: every pooled connection is dead. The
        # token is cached, so the lookup itself meets them.
        pids = await _fill_read_pool(client, 3)
        await _terminate(engine, pids)
        found = await client.get(LOOKUP, headers=portal)
        assert found.status == 200, await found.text()
        assert (await found.json())["decision_number"] == FINE["decision_number"]

        # A token not seen before: its check meets the dead connections.
        pids = await _fill_read_pool(client, 3)
        await _terminate(engine, pids)
        officer = await _bearer(engine, "officer", "officer")
        assert (await client.get(LOOKUP, headers=officer)).status == 200
        assert not pids & await _fill_read_pool(client, 3)


async def _add_payment(
    engine: AsyncEngine, fine_id: int, status: str, settles: bool, created_at: datetime
) -> UUID:
    payment_id = uuid.uuid4()
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO payments (id, fine_id, bank, payer_account, amount_vnd, status,"
                " debit_key, settles_fine, bank_ref, created_at, updated_at)"
                " VALUES (:id, :f, 'sgbank', '111', 800000, :s, :dk, :settles, :ref, :at, :at)"
            ),
            {
                "id": payment_id,
                "f": fine_id,
                "s": status,
                "dk": f"debit-{payment_id}",
                "settles": settles,
                "ref": f"FT{payment_id.hex[:12]}",
                "at": created_at,
            },
        )
    return payment_id


async def test_lookup_of_a_paid_fine_matches_the_ledger_view(
    engine: AsyncEngine, db_url: str
) -> None:
    """The lookup reads on the driver; the answer is the same view the
    SQLAlchemy path builds, with payments in order and the receipt."""
    async with _client(engine, db_url) as client:
        portal = await _bearer(engine, "portal", "portal")
        assert (await client.post("/api/v1/fines", json=FINE, headers=portal)).status == 201
        async with engine.connect() as conn:
            fine = await get_fine(conn, FINE["decision_number"])
        # Inserted out of order: the view orders by creation time.
        paid = await _add_payment(engine, fine.id, "succeeded", True, NOW)
        declined = await _add_payment(engine, fine.id, "declined", False, NOW - timedelta(hours=1))
        async with engine.begin() as conn:
            receipt = await issue_receipt(conn, paid, ReceiptSigner.generate(), NOW)

        resp = await client.get(LOOKUP, headers=portal)
        assert resp.status == 200
        body = await resp.json()
        async with engine.connect() as conn:
            view = await fine_view(conn, FINE["decision_number"])
        base_url = client.app[SETTINGS].public_base_url
        assert body == json.loads(json.dumps(fine_view_json(base_url, view)))
        assert body["status"] == "paid"
        assert [p["payment_id"] for p in body["payments"]] == [str(declined), str(paid)]
        assert body["payments"][1]["created_at"] == NOW.isoformat()
        assert body["receipt"]["series"] == receipt.series
        assert body["receipt"]["number"] == receipt.number
        assert body["receipt"]["verify_url"].startswith(base_url)
