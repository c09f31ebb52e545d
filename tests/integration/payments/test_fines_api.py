"""The fines API over real HTTP against the real embedded PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.api import FINE, api_client, make_token


@pytest.fixture
async def client(engine: AsyncEngine, db_url: str) -> AsyncIterator[TestClient[Any, Any]]:
    async with api_client(engine, db_url, max_body_bytes=4096) as c:
        yield c


@pytest.fixture
async def portal(engine: AsyncEngine) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_token(engine, 'portal')}"}


async def _count_fines(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM fines"))).scalar_one())


async def test_register_then_identical_then_conflicting(
    client: TestClient[Any, Any], portal: dict[str, str], engine: AsyncEngine
) -> None:
    created = await client.post("/api/v1/fines", json=FINE, headers=portal)
    assert created.status == 201
    body = await created.json()
    assert body["decision_number"] == "01234/QĐ-XPHC"
    assert body["status"] == "unpaid"
    assert body["payments"] == []
    assert body["receipt"] is None

    same = await client.post("/api/v1/fines", json=FINE, headers=portal)
    assert same.status == 200
    # The same decision typed differently is the same fine.
    retyped = await client.post(
        "/api/v1/fines", json={**FINE, "decision_number": "01234/qd-xphc"}, headers=portal
    )
    assert retyped.status == 200

    other = await client.post("/api/v1/fines", json={**FINE, "amount_vnd": 900_000}, headers=portal)
    assert other.status == 409
    assert (await other.json())["error"]["code"] == "conflict"
    assert await _count_fines(engine) == 1


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/fines/01234%2FQ%C4%90-XPHC",
        "/api/v1/fines/01234%2fqd-xphc",
        "/api/v1/fines/01234/QĐ-XPHC",
        "/api/v1/fines/%2001234%20/%20qd-XPHC",
    ],
)
async def test_lookup_tolerates_how_the_number_is_typed(
    client: TestClient[Any, Any], portal: dict[str, str], path: str
) -> None:
    assert (await client.post("/api/v1/fines", json=FINE, headers=portal)).status == 201
    found = await client.get(path, headers=portal)
    assert found.status == 200, await found.text()
    body = await found.json()
    assert body["decision_number"] == FINE["decision_number"]
    assert body["amount_vnd"] == 800_000
    assert body["status"] == "unpaid"


async def test_unknown_fine_is_404_with_json_error(
    client: TestClient[Any, Any], portal: dict[str, str]
) -> None:
    missing = await client.get("/api/v1/fines/99999%2FQD-XPHC", headers=portal)
    assert missing.status == 404
    error = (await missing.json())["error"]
    assert error["code"] == "not_found"
    assert "99999/QD-XPHC" in error["message"]


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Bearer"),
        ({"Authorization": "Basic abc"}, "Bearer"),
        ({"Authorization": "Bearer "}, "Bearer"),
        ({"Authorization": "Bearer rk_not-a-real-token"}, "unknown"),
        ({"Authorization": "Bearer something-else"}, "unknown"),
    ],
)
async def test_missing_or_invalid_token_is_401(
    client: TestClient[Any, Any], headers: dict[str, str], message: str, engine: AsyncEngine
) -> None:
    for resp in (
        await client.post("/api/v1/fines", json=FINE, headers=headers),
        await client.get("/api/v1/fines/01234%2FQD-XPHC", headers=headers),
    ):
        assert resp.status == 401
        assert message in (await resp.json())["error"]["message"]
    assert await _count_fines(engine) == 0


async def test_revoked_token_is_401(
    client: TestClient[Any, Any], portal: dict[str, str], engine: AsyncEngine
) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE api_tokens SET revoked_at = now()"))
    resp = await client.get("/api/v1/fines/1%2FQD", headers=portal)
    assert resp.status == 401


async def test_officer_may_read_but_not_register(
    client: TestClient[Any, Any], engine: AsyncEngine
) -> None:
    officer = {"Authorization": f"Bearer {await make_token(engine, 'officer')}"}
    resp = await client.post("/api/v1/fines", json=FINE, headers=officer)
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "forbidden"
    assert await _count_fines(engine) == 0
    assert (await client.get("/api/v1/fines/1%2FQD", headers=officer)).status == 404


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"amount_vnd": "800000"}, "amount_vnd"),
        ({"amount_vnd": 800000.0}, "amount_vnd"),
        ({"amount_vnd": 800000.5}, "amount_vnd"),
        ({"amount_vnd": True}, "amount_vnd"),
        ({"amount_vnd": 0}, "amount_vnd"),
        ({"amount_vnd": 1_000_000_001}, "amount_vnd"),
        ({"decision_number": ""}, "decision_number"),
        ({"plate": None}, "plate"),
    ],
)
async def test_bad_fields_are_400_and_change_nothing(
    client: TestClient[Any, Any],
    portal: dict[str, str],
    engine: AsyncEngine,
    override: dict[str, Any],
    field: str,
) -> None:
    resp = await client.post("/api/v1/fines", json={**FINE, **override}, headers=portal)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_input"
    assert error["field"] == field
    assert await _count_fines(engine) == 0


async def test_configured_maximum_amount(engine: AsyncEngine, db_url: str) -> None:
    async with api_client(engine, db_url, max_amount_vnd=1_000_000) as client:
        headers = {"Authorization": f"Bearer {await make_token(engine, 'portal')}"}
        resp = await client.post(
            "/api/v1/fines", json={**FINE, "amount_vnd": 1_000_001}, headers=headers
        )
        assert resp.status == 400
        assert "1000000" in (await resp.json())["error"]["message"]


@pytest.mark.parametrize(
    ("data", "content_type", "status", "code"),
    [
        ("{not json", "application/json", 400, "invalid_input"),
        ("", "application/json", 400, "invalid_input"),
        ("[1, 2]", "application/json", 400, "invalid_input"),
        (json.dumps(FINE), "text/plain", 415, "unsupported_media_type"),
        (b"\xff\xfe", "application/json", 400, "invalid_input"),
    ],
)
async def test_malformed_bodies(
    client: TestClient[Any, Any],
    portal: dict[str, str],
    engine: AsyncEngine,
    data: str | bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    resp = await client.post(
        "/api/v1/fines", data=data, headers={**portal, "Content-Type": content_type}
    )
    assert resp.status == status
    assert (await resp.json())["error"]["code"] == code
    assert await _count_fines(engine) == 0


async def test_oversized_body_is_413(
    client: TestClient[Any, Any], portal: dict[str, str], engine: AsyncEngine
) -> None:
    big = {**FINE, "violation": "x" * 10_000}
    resp = await client.post("/api/v1/fines", json=big, headers=portal)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "body_too_large"
    assert await _count_fines(engine) == 0


async def test_health_ready_and_metrics(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["database"] == "ok"
    metrics = await client.get("/metrics")
    assert metrics.status == 200
    assert "http_requests_total" in await metrics.text()


async def test_readyz_reports_a_dead_database(db_url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    dead = create_async_engine("postgresql+psycopg://postgres@127.0.0.1:1/none")
    try:
        async with api_client(dead, db_url) as client:
            resp = await client.get("/readyz")
            assert resp.status == 503
            assert (await resp.json())["error"]["code"] == "not_ready"
    finally:
        await dead.dispose()
