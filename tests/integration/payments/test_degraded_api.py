"""The API with PostgreSQL or Temporal out of reach: 503 with ``Retry-After``
naming the missing part (not a 500 a client cannot tell from a bug),
lookups that need only the database still answered while Temporal is down,
and a payment taken then started once Temporal is back."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from reconciler.api.app import create_app
from reconciler.api.readiness import FRESH_SECONDS, Readiness
from reconciler.api.unavailable import RETRY_AFTER_SECONDS
from reconciler.devstack.ports import free_port
from reconciler.devstack.temporal import TemporalDevServer
from reconciler.settings import Settings
from reconciler.wiring import saga_config
from tests.support.api import FINE, api_client, make_token
from tests.support.stack import SagaStack, eventually, quote
from workflows.payment.client import sweep_unstarted

pytestmark = pytest.mark.integration

BANKS = {"sgbank": {"protocol": "rest", "url": "http://127.0.0.1:9", "webhook_secret": "s"}}


async def _unavailable(resp: Any, code: str) -> dict[str, Any]:
    assert resp.status == 503, await resp.text()
    assert resp.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    body: dict[str, Any] = await resp.json()
    assert body["error"]["code"] == code, body
    return body


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/v1/fines/01234%2Fqd-xphc", None),
        ("POST", "/api/v1/fines", FINE),
        ("GET", "/api/v1/payments/7f1c2a4e-0000-4000-8000-000000000000", None),
    ],
)
async def test_database_down_is_503_naming_it(
    db_url: str, method: str, path: str, body: Any
) -> None:
    # Nothing listens on that port: every connection is refused.
    port = free_port()
    dead = create_async_engine(f"postgresql+psycopg://postgres:hunter2@127.0.0.1:{port}/none")
    try:
        async with api_client(dead, db_url) as client:
            resp = await client.request(
                method, path, json=body, headers={"Authorization": "Bearer rk_anything"}
            )
            answer = await _unavailable(resp, "database_unavailable")
            # The driver's text (host, port, user, password) stays in our log.
            text = str(answer)
            assert str(port) not in text
            assert "hunter2" not in text
            assert "postgres" not in text

            ready = await client.get("/readyz")
            assert ready.status == 503
            assert ready.headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
            status = await ready.json()
            assert status["status"] == "not_ready"
            assert status["database"] == "unavailable"
            assert status["error"]["code"] == "not_ready"
    finally:
        await dead.dispose()


async def test_a_payment_taken_while_temporal_is_down_starts_when_it_returns(
    stack: SagaStack, api_without_temporal: TestClient[Any, Any]
) -> None:
    client, headers = api_without_temporal, stack.headers
    ready = await client.get("/readyz")
    # Lookups need only the database: the API stays ready, and says what is missing.
    assert ready.status == 200
    assert await ready.json() == {"status": "ready", "database": "ok", "temporal": "unavailable"}
    number = await stack.new_fine(640_000)
    fine = await client.get(f"/api/v1/fines/{quote(number)}", headers=headers)
    assert (fine.status, (await fine.json())["status"]) == (200, "unpaid")

    # Taking the payment needs only the database: recorded, 202.
    taken = await client.post(
        f"/api/v1/fines/{quote(number)}/payments",
        json={"bank": "sgbank", "payer_account": "123456789"},
        headers={**headers, "Idempotency-Key": "degraded-1"},
    )
    assert taken.status == 202, await taken.text()
    payment_id = (await taken.json())["payment_id"]
    view = await client.get(f"/api/v1/payments/{payment_id}", headers=headers)
    assert (view.status, (await view.json())["status"]) == (200, "initiated")
    # What cannot proceed without Temporal says so, with when to try again.
    recovery = await client.post("/api/v1/banks/sgbank/link-recovered", headers=headers)
    await _unavailable(recovery, "temporal_unavailable")

    # Temporal is back (the stack's own client): the sweeper starts it.
    started = await sweep_unstarted(
        stack.client,
        stack.engine,
        saga_config(stack.settings),
        datetime.now(UTC),
        older_than=timedelta(0),
    )
    assert started >= 1
    done = await stack.wait_payment(payment_id, {"succeeded"})
    assert done["receipt"], done


async def test_readyz_is_ready_with_both_parts_up(stack: SagaStack) -> None:
    status, body = await stack.call("GET", "/readyz")
    assert (status, body) == (200, {"status": "ready", "database": "ok", "temporal": "ok"})


async def test_temporal_dying_after_the_api_connected_is_503_naming_it(
    tmp_path: Path, engine: AsyncEngine, db_url: str
) -> None:
    """The API's client was connected when Temporal died: its calls fail
    with UNAVAILABLE, which is a 503 too, and readiness notices."""
    server = TemporalDevServer(None, tmp_path / "temporal.log")
    server.start()
    try:
        async with api_client(
            engine,
            db_url,
            banks=BANKS,
            temporal_address=server.info.address,
            temporal_connect_timeout_seconds=2,
        ) as client:
            ready = await client.get("/readyz")
            assert (await ready.json())["temporal"] == "ok"
            operator = {"Authorization": f"Bearer {await make_token(engine, 'operator')}"}
            server.stop()
            recovery = await client.post("/api/v1/banks/sgbank/link-recovered", headers=operator)
            await _unavailable(recovery, "temporal_unavailable")

            async def temporal_gone() -> dict[str, Any] | None:
                # /readyz reuses a check for a second: ask until it is a new one.
                ready = await client.get("/readyz")
                assert ready.status == 200
                body: dict[str, Any] = await ready.json()
                return body if body["temporal"] == "unavailable" else None

            gone = await eventually(temporal_gone, 30, "readyz to see Temporal gone")
            assert gone == {"status": "ready", "database": "ok", "temporal": "unavailable"}
            # Lookups go on.
            fine = await client.get("/api/v1/fines/01234%2Fqd-xphc", headers=operator)
            assert fine.status == 404
    finally:
        server.stop()


async def test_a_flood_of_readiness_probes_asks_each_part_once_a_second(
    engine: AsyncEngine, db_url: str
) -> None:
    """/readyz is public: a stranger's flood must not become a flood of
    database and Temporal round trips."""
    clock = [1000.0]
    readiness = Readiness(clock=lambda: clock[0])
    settings = Settings(env="dev", database_url=db_url, temporal_address=f"127.0.0.1:{free_port()}")
    app = create_app(settings, engine=engine, readiness=readiness)
    async with TestClient(TestServer(app)) as client:
        answers = await asyncio.gather(*(client.get("/readyz") for _ in range(50)))
        assert {a.status for a in answers} == {200}
        assert readiness.checks == 1
        clock[0] += FRESH_SECONDS
        assert (await client.get("/readyz")).status == 200
        assert readiness.checks == 2
