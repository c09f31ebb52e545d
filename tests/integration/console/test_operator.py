"""The operator's pages (links, in-doubt queue, alerts) and their JSON
endpoints on the real app and database: what they show, who may see them,
and the attacks: no permission, another unit, a forged cursor, a missing
CSRF token, HTML in stored data, a ``javascript:`` runbook link."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.link_health import record_probe
from ledger.ops_alerts import ReceivedAlert, store_alerts
from ledger.outages import PostgresOutageStore
from tests.integration.console.conftest import Console, fine_with
from tests.integration.console.sessions import staff_session
from tests.support.api import make_token
from tests.support.db import value
from tests.support.receipts import UNIT

OTHER_UNIT = "Đội CSGT số 9"
BANKS = {"vcb": {"protocol": "rest", "url": "http://127.0.0.1:9"}}


@pytest.fixture
def console_overrides() -> dict[str, Any]:
    return {"banks": BANKS}


async def _operator(console: Console, engine: AsyncEngine) -> str:
    return await staff_session(console, engine, "operator")


async def _in_doubt(engine: AsyncEngine, number: str, *, unit: str = UNIT) -> UUID:
    """A verifying payment with its history: entered verifying 2 h ago,
    two status checks, the last answered 'pending'."""
    payment_id = UUID(await fine_with(engine, number, "verifying", unit=unit))
    now = datetime.now(UTC)
    events = [
        (now - timedelta(hours=2), "initiated", "verifying", {"outcome": "outcome_unknown"}),
        (
            now - timedelta(hours=1),
            "verifying",
            "verifying",
            {"step": "status_check", "outcome": "link_down", "detail": "timeout"},
        ),
        (
            now - timedelta(minutes=5),
            "verifying",
            "verifying",
            {"step": "status_check", "outcome": "pending", "detail": "<b>bank</b> busy"},
        ),
    ]
    async with engine.begin() as conn:
        for at, before, after, detail in events:
            await conn.execute(
                text(
                    "INSERT INTO payment_events (payment_id, at, from_status, to_status, cause,"
                    " detail) VALUES (:p, :at, :f, :t, 'test', CAST(:d AS jsonb))"
                ),
                {"p": payment_id, "at": at, "f": before, "t": after, "d": json.dumps(detail)},
            )
    return payment_id


async def test_the_in_doubt_queue_shows_age_attempts_and_last_answer(
    console: Console, engine: AsyncEngine
) -> None:
    payment_id = await _in_doubt(engine, "00501/QĐ-XPHC")
    await fine_with(engine, "00502/QĐ-XPHC", "succeeded")  # not in doubt: not listed
    await _operator(console, engine)
    resp = await console.get("/console/operator/in-doubt")
    page = await resp.text()
    assert resp.status == 200, page
    assert "00501/QĐ-XPHC" in page
    assert "00502/QĐ-XPHC" not in page
    assert "2 giờ" in page  # its age, from when it entered verifying
    assert re.search(r'<td class="num">2</td>', page)  # two status checks
    assert "pending: &lt;b&gt;bank&lt;/b&gt; busy" in page  # the bank's words, escaped
    assert f"/console/operator/payments/{payment_id}/recheck" in page
    token = await make_token(engine, "operator", "a.operator")
    api = await console.get(
        "/api/v1/payments/in-doubt", headers={"Authorization": f"Bearer {token}"}
    )
    body = await api.json()
    assert [p["payment_id"] for p in body["payments"]] == [str(payment_id)]
    row = body["payments"][0]
    assert (row["attempts"], row["last_answer"]) == (2, "pending")
    assert 7100 < row["age_seconds"] < 7300


async def test_an_officer_sees_only_their_units_in_doubt_even_with_a_forged_filter(
    console: Console, engine: AsyncEngine
) -> None:
    mine = await _in_doubt(engine, "00511/QĐ-XPHC")
    theirs = await _in_doubt(engine, "00512/QĐ-XPHC", unit=OTHER_UNIT)
    await staff_session(console, engine, "officer", units=(UNIT,))
    page = await (await console.get("/console/operator/in-doubt")).text()
    assert "00511/QĐ-XPHC" in page
    assert "00512/QĐ-XPHC" not in page
    assert "/recheck" not in page  # an officer may not re-check
    # A cursor naming a point before both rows still lists only the officer's.
    forged = f"0.{theirs.hex}"
    resp = await console.get(f"/console/operator/in-doubt?cursor={forged}")
    assert resp.status == 200
    text_ = await resp.text()
    assert "00512/QĐ-XPHC" not in text_
    assert "00511/QĐ-XPHC" in text_
    assert mine != theirs
    bad = await console.get("/console/operator/in-doubt?cursor=garbage")
    assert bad.status == 400
    assert "Yêu cầu không hợp lệ" in await bad.text()
    for hostile in ("bank=nobank", "limit=0", "limit=99999", "bank=%3Cscript%3E"):
        resp = await console.get(f"/console/operator/in-doubt?{hostile}")
        assert resp.status == 400, hostile
    # A recheck POST with its CSRF token is still refused: not the officer's.
    forbidden = await console.post(f"/console/operator/payments/{theirs}/recheck", data={})
    assert forbidden.status == 403


async def test_a_recheck_without_csrf_or_of_a_payment_not_verifying_changes_nothing(
    console: Console, engine: AsyncEngine
) -> None:
    settled = UUID(await fine_with(engine, "00521/QĐ-XPHC", "succeeded"))
    csrf = await _operator(console, engine)
    audits = "SELECT count(*) FROM audit_log WHERE action = 'payment.recheck_requested'"
    before = await value(engine, audits)
    for data in ({}, {"csrf": "wrong"}):
        resp = await console.post(f"/console/operator/payments/{settled}/recheck", data=data)
        assert resp.status == 403
    resp = await console.post(f"/console/operator/payments/{settled}/recheck", data={"csrf": csrf})
    assert resp.status == 409
    assert "succeeded" in await resp.text()
    # Still being sent: no status at the bank yet, no button, refused.
    sending = UUID(await fine_with(engine, "00522/QĐ-XPHC", "initiated"))
    page = await (await console.get("/console/operator/in-doubt")).text()
    assert "00522/QĐ-XPHC" in page
    assert "/recheck" not in page
    resp = await console.post(f"/console/operator/payments/{sending}/recheck", data={"csrf": csrf})
    assert resp.status == 409
    guessed = await console.post(
        f"/console/operator/payments/{uuid4()}/recheck", data={"csrf": csrf}
    )
    assert guessed.status == 404
    assert await value(engine, audits) == before


async def test_the_links_board_shows_state_uptime_and_charts(
    console: Console, engine: AsyncEngine
) -> None:
    store = PostgresOutageStore(engine)
    now = datetime.now(UTC)
    await store.open_outage("vcb", now - timedelta(hours=30), "probe <i>timeout</i>")
    await store.close_outage("vcb", now - timedelta(hours=24) + timedelta(hours=6))
    await store.open_outage("vcb", now - timedelta(hours=3), "connection refused")
    await _in_doubt(engine, "00531/QĐ-XPHC")
    await record_probe(engine, "vcb", now - timedelta(seconds=5), False, 2.0, "no answer <b>")
    # An older probe arriving late never overwrites the newer one.
    await record_probe(engine, "vcb", now - timedelta(seconds=9), True, 0.012, "")
    await _operator(console, engine)
    resp = await console.get("/console/operator/links")
    page = await resp.text()
    assert resp.status == 200, page
    assert "Mất kết nối" in page
    assert "✖" in page
    # 24 h: 6 h of the first outage + 3 h of the open one are down → 62.50 %.
    assert "62.50 %" in page
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img"') == 2
    assert "probe &lt;i&gt;timeout&lt;/i&gt;" in page
    assert "<i>timeout" not in page
    assert 'action="/console/operator/banks/vcb/wake"' in page
    token = await make_token(engine, "operator", "a.operator")
    body = await (
        await console.get("/api/v1/banks/health", headers={"Authorization": f"Bearer {token}"})
    ).json()
    (vcb,) = body["banks"]
    assert (vcb["bank"], vcb["up"], vcb["uptime_24h"]) == ("vcb", False, 0.625)
    assert len(vcb["outages_7d"]) == 2
    assert (vcb["last_probe"]["ok"], vcb["last_probe"]["latency_ms"]) == (False, 2000)
    assert "✖ 2000 ms" in page
    assert "no answer &lt;b&gt;" in page
    assert len(body["in_doubt_hourly"]) == 25
    assert body["in_doubt_hourly"][-1]["count"] >= 1  # in doubt for 2 h at the last hour


async def test_waking_an_unknown_bank_or_without_csrf_is_refused(
    console: Console, engine: AsyncEngine
) -> None:
    csrf = await _operator(console, engine)
    audits = "SELECT count(*) FROM audit_log WHERE action = 'bank.link_recovery_requested'"
    before = await value(engine, audits)
    assert (await console.post("/console/operator/banks/vcb/wake", data={})).status == 403
    resp = await console.post("/console/operator/banks/nobank/wake", data={"csrf": csrf})
    assert resp.status == 400
    assert await value(engine, audits) == before


async def test_the_alerts_page_shows_firing_alerts_with_their_runbook(
    console: Console, engine: AsyncEngine
) -> None:
    now = datetime.now(UTC)

    def alert(fingerprint: str, name: str, status: str, url: str) -> ReceivedAlert:
        return ReceivedAlert(
            fingerprint=fingerprint,
            alertname=name,
            status=status,
            severity="page",
            team="operators",
            bank="vcb",
            receiver="operators",
            labels={"alertname": name},
            annotations={"summary": "<script>x()</script> down", "runbook_url": url},
            starts_at=now - timedelta(minutes=10),
            ends_at=None,
            received_at=now,
        )

    async with engine.begin() as conn:
        await store_alerts(
            conn,
            [
                alert("a1", "BankLinkDown", "firing", "javascript:alert(1)"),
                alert("a2", "ReceiptLagHigh", "firing", "https://runbooks.example/receiptlaghigh"),
                alert("a3", "OutboxBacklog", "resolved", ""),
            ],
        )
    await _operator(console, engine)
    page = await (await console.get("/console/operator/alerts")).text()
    assert "BankLinkDown" in page
    assert "ReceiptLagHigh" in page
    assert "OutboxBacklog" not in page  # resolved: not active
    assert "docs/runbook.md#banklinkdown" in page
    assert "javascript:" not in page  # the sender's URL is never a link unless http(s)
    assert 'href="https://runbooks.example/receiptlaghigh"' in page
    assert "<script>x()" not in page
    assert "&lt;script&gt;x()" in page


async def test_an_officer_gets_the_403_page_and_no_data(
    console: Console, engine: AsyncEngine
) -> None:
    await staff_session(console, engine, "officer", units=(UNIT,))
    for path in ("/console/operator/links", "/console/operator/alerts"):
        resp = await console.get(path)
        page = await resp.text()
        assert resp.status == 403
        assert "Không có quyền truy cập" in page
        assert "uptime" not in page.lower()
        assert "<svg" not in page
    counter = await (await console.get("/console/counter")).text()
    assert "/console/operator/links" not in counter  # no nav link to what they may not see
