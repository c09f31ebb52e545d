"""The service's alert receiver at its edge: only Alertmanager's secret may
post, a bad delivery changes nothing, only operators read, and the table
stays bounded."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from ledger.ops_alerts import ROWS_MAX
from reconciler.api.alerts import WEBHOOK_PATH
from tests.support.api import make_token
from tests.support.stack import SagaStack

SECRET = "am-secret-for-tests-0123456789"


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    return {"alert_webhook_token": SECRET}


def delivery(*alerts: dict[str, Any], receiver: str = "operators-page") -> dict[str, Any]:
    return {"version": "4", "receiver": receiver, "status": "firing", "alerts": list(alerts)}


def alert(fingerprint: str, name: str = "BankLinkDown", status: str = "firing") -> dict[str, Any]:
    return {
        "status": status,
        "fingerprint": fingerprint,
        "labels": {
            "alertname": name,
            "severity": "critical",
            "team": "operators",
            "bank": "sgbank",
        },
        "annotations": {"summary": "Bank link sgbank is down"},
        "startsAt": "2026-12-01T10:00:00.123+07:00",
        "endsAt": "0001-01-01T00:00:00Z",
    }


async def post(stack: SagaStack, body: Any, secret: str | None = SECRET) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {secret}"} if secret is not None else {}
    async with stack.session.post(stack.api_url + WEBHOOK_PATH, json=body, headers=headers) as r:
        return r.status, await r.json()


async def stored(stack: SagaStack) -> int:
    async with stack.engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM received_alerts"))).scalar_one())


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x", "rk_some-api-token"])
async def test_only_alertmanagers_secret_may_post(stack: SagaStack, secret: str | None) -> None:
    status, body = await post(stack, delivery(alert("a1")), secret)
    assert status == 401, body
    assert await stored(stack) == 0


async def test_an_api_token_is_not_the_secret(stack: SagaStack) -> None:
    status, _ = await post(
        stack, delivery(alert("a1")), await make_token(stack.engine, "admin", "another-admin")
    )
    assert status == 401
    assert await stored(stack) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"version": "3", "receiver": "x", "alerts": []}, "version"),
        (delivery(alert("a1"), {"status": "firing"}), "alerts[1]"),
        (delivery(alert("a1"), alert("NOT-HEX")), "alerts[1].fingerprint"),
        (delivery({**alert("b2"), "startsAt": "yesterday"}), "alerts[0].startsAt"),
        (delivery({**alert("b2"), "labels": {"alertname": "X", "k": "v" * 3000}}), "alerts[0]"),
        (delivery(*[alert(f"{i:x}") for i in range(201)]), "alerts"),
        (delivery(alert("a1"), receiver=""), "receiver"),
    ],
)
async def test_a_bad_delivery_names_the_field_and_stores_nothing(
    stack: SagaStack, body: dict[str, Any], field: str
) -> None:
    status, answer = await post(stack, body)
    assert status == 400, answer
    assert field in answer["error"]["message"]
    assert await stored(stack) == 0


async def test_received_alerts_are_listed_for_operators_only(stack: SagaStack) -> None:
    status, answer = await post(stack, delivery(alert("a1"), alert("b2", "PostgresDown")))
    assert (status, answer) == (200, {"received": 2})
    # The same alert resolved: one row, now resolved.
    await post(stack, delivery(alert("a1", status="resolved") | {"endsAt": "2026-12-01T11:00:00Z"}))
    status, listed = await stack.call("GET", "/api/v1/alerts")
    assert status == 200
    assert [(a["alertname"], a["status"]) for a in listed["alerts"]] == [
        ("PostgresDown", "firing"),
        ("BankLinkDown", "resolved"),
    ]
    status, firing = await stack.call("GET", "/api/v1/alerts?status=firing")
    assert [a["fingerprint"] for a in firing["alerts"]] == ["b2"]
    officer = {"Authorization": f"Bearer {await make_token(stack.engine, 'officer', 'an-officer')}"}
    status, _ = await stack.call("GET", "/api/v1/alerts", headers=officer)
    assert status == 403
    status, _ = await stack.call("GET", "/api/v1/alerts?status=everything")
    assert status == 400


async def test_the_table_stays_bounded(stack: SagaStack) -> None:
    for start in range(0, ROWS_MAX + 150, 150):
        batch = [alert(f"{i:x}", status="resolved") for i in range(start, start + 150)]
        assert (await post(stack, delivery(*batch)))[0] == 200
    assert await stored(stack) == ROWS_MAX


async def test_no_secret_configured_refuses_every_delivery(stack_with: Any) -> None:
    async with stack_with(start_worker=False) as stack:
        status, answer = await post(stack, delivery(alert("a1")))
        assert status == 503
        assert answer["error"]["code"] == "alert_receiver_disabled"
        assert await stored(stack) == 0
