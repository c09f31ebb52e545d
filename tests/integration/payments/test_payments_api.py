"""Starting payments through the API: validation, idempotency, and answering
while Temporal is down (the payment is recorded; the worker's sweeper starts
its workflow later)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciler.devstack.ports import free_port
from tests.support.api import api_client, make_token

BANKS = {"sgbank": {"protocol": "rest", "url": "http://127.0.0.1:9", "webhook_secret": "s"}}
FINE: dict[str, Any] = {
    "decision_number": "555/QĐ-XPHC",
    "amount_vnd": 700_000,
    "violator_name": "Lê Thị C",
    "plate": "30A-000.01",
    "issuing_unit": "Đội CSGT số 2",
    "violation": "Đi sai làn đường",
}
PATH = "/api/v1/fines/555%2FQD-XPHC/payments"


@pytest.fixture
async def client(engine: AsyncEngine, db_url: str) -> AsyncIterator[TestClient[Any, Any]]:
    # Temporal is unreachable on purpose: nothing here may depend on it.
    async with api_client(
        engine,
        db_url,
        banks=BANKS,
        temporal_address=f"127.0.0.1:{free_port()}",
        temporal_connect_timeout_seconds=0.3,
    ) as c:
        yield c


@pytest.fixture
async def portal(engine: AsyncEngine, client: TestClient[Any, Any]) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {await make_token(engine, 'portal')}"}
    assert (await client.post("/api/v1/fines", json=FINE, headers=headers)).status == 201
    return headers


async def _payments(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM payments"))).scalar_one())


BODY = {"bank": "sgbank", "payer_account": "0123456789"}


async def test_payment_is_recorded_while_temporal_is_down(
    client: TestClient[Any, Any], portal: dict[str, str], engine: AsyncEngine
) -> None:
    resp = await client.post(PATH, json=BODY, headers={**portal, "Idempotency-Key": "a-1"})
    assert resp.status == 202
    started = await resp.json()
    assert started["status"] == "initiated"
    assert started["amount_vnd"] == 700_000
    again = await client.post(PATH, json=BODY, headers={**portal, "Idempotency-Key": "a-1"})
    assert again.status == 202
    assert (await again.json())["payment_id"] == started["payment_id"]
    other_body = await client.post(
        PATH,
        json={**BODY, "payer_account": "999"},
        headers={**portal, "Idempotency-Key": "a-1"},
    )
    assert other_body.status == 422
    assert (await other_body.json())["error"]["code"] == "idempotency_conflict"
    joined = await client.post(PATH, json=BODY, headers={**portal, "Idempotency-Key": "a-2"})
    assert (await joined.json())["payment_id"] == started["payment_id"]
    assert await _payments(engine) == 1

    view = await client.get(f"/api/v1/payments/{started['payment_id']}", headers=portal)
    assert view.status == 200
    body = await view.json()
    assert body["status"] == "initiated"
    assert body["history"][0]["to_status"] == "initiated"
    fine = await (await client.get("/api/v1/fines/555%2Fqd-xphc", headers=portal)).json()
    assert fine["status"] == "verifying"


@pytest.mark.parametrize(
    ("body", "headers", "status", "field"),
    [
        (BODY, {}, 400, "Idempotency-Key"),
        (BODY, {"Idempotency-Key": "x" * 201}, 400, "Idempotency-Key"),
        ({"bank": "nobank", "payer_account": "1"}, {"Idempotency-Key": "k"}, 400, "bank"),
        (
            {"bank": "sgbank", "payer_account": "12-34"},
            {"Idempotency-Key": "k"},
            400,
            "payer_account",
        ),
        ({"bank": "sgbank"}, {"Idempotency-Key": "k"}, 400, "payer_account"),
        ({**BODY, "amount_vnd": 1}, {"Idempotency-Key": "k"}, 400, "amount_vnd"),
        ([1], {"Idempotency-Key": "k"}, 400, "body"),
    ],
)
async def test_bad_requests_name_the_problem_and_change_nothing(
    client: TestClient[Any, Any],
    portal: dict[str, str],
    engine: AsyncEngine,
    body: Any,
    headers: dict[str, str],
    status: int,
    field: str,
) -> None:
    resp = await client.post(PATH, json=body, headers={**portal, **headers})
    assert resp.status == status
    error = (await resp.json())["error"]
    assert error["field"] == field
    assert await _payments(engine) == 0


async def test_unknown_fine_and_unknown_payment(
    client: TestClient[Any, Any], portal: dict[str, str]
) -> None:
    resp = await client.post(
        "/api/v1/fines/000%2FXX/payments", json=BODY, headers={**portal, "Idempotency-Key": "k"}
    )
    assert resp.status == 404
    bad_id = await client.get("/api/v1/payments/not-a-uuid", headers=portal)
    assert bad_id.status == 400
    missing = await client.get(
        "/api/v1/payments/00000000-0000-0000-0000-000000000000", headers=portal
    )
    assert missing.status == 404


async def test_officer_may_not_start_payments(
    client: TestClient[Any, Any], portal: dict[str, str], engine: AsyncEngine
) -> None:
    officer = {"Authorization": f"Bearer {await make_token(engine, 'officer')}"}
    resp = await client.post(PATH, json=BODY, headers={**officer, "Idempotency-Key": "k"})
    assert resp.status == 403
    assert await _payments(engine) == 0


async def test_link_recovered_needs_operator_and_a_known_bank(
    client: TestClient[Any, Any], portal: dict[str, str], engine: AsyncEngine
) -> None:
    assert (await client.post("/api/v1/banks/sgbank/link-recovered", headers=portal)).status == 403
    operator = {"Authorization": f"Bearer {await make_token(engine, 'operator')}"}
    unknown = await client.post("/api/v1/banks/nobank/link-recovered", headers=operator)
    assert unknown.status == 404
    down = await client.post("/api/v1/banks/sgbank/link-recovered", headers=operator)
    assert down.status == 503
    assert (await down.json())["error"]["code"] == "temporal_unavailable"
