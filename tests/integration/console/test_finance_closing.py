"""The daily closing report (``ledger.reports.daily_closing``) over the
real ledger: its sums are the postings' sums, a lost receipt number shows
as a gap, unit scope holds (a forged ``unit`` finds nothing), bad
parameters are a 400, and the console page, CSV and PDF show the same."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.business_time import business_date, business_day_start
from ledger import payments as pay
from ledger.core.postings import EntryRequest, Posting, ensure_bank_accounts, post_entry
from ledger.receipts.signing import ReceiptSigner
from reconciler.devstack.ports import free_port
from tests.integration.console.conftest import PASSWORD, Console, log_in
from tests.support.api import make_token, make_user
from tests.support.db import value
from tests.support.receipts import UNIT, add_fine, add_payment

OTHER_UNIT = "Đội CSGT số 9"
AMOUNT = 1_500_000
SUSPENSE = 300_000
PATH = "/api/v1/reports/daily-closing"
TOTALS = "/api/v1/reports/daily-totals"


@pytest.fixture
def console_overrides() -> dict[str, Any]:
    return {"banks": {"vcb": {"protocol": "rest", "url": f"http://127.0.0.1:{free_port()}"}}}


async def _settled(engine: AsyncEngine, signer: ReceiptSigner, unit: str) -> UUID:
    """A fine of ``unit`` paid at vcb, booked with its receipt."""
    async with engine.begin() as conn:
        fine_id, _ = await add_fine(conn, unit=unit, amount_vnd=AMOUNT)
        payment_id = await add_payment(
            conn, fine_id, status="verifying", settles=False, amount_vnd=AMOUNT
        )
        await pay.settle_with_receipt(
            conn, payment_id, f"FT{payment_id.hex[:8]}", datetime.now(UTC), "test", signer
        )
    return payment_id


async def _day_of_money(engine: AsyncEngine) -> None:
    """Three fines of UNIT paid (a receipt number lost between the second
    and third), one paid twice and the duplicate refunded, one fine of
    OTHER_UNIT paid, and a credit nobody identified held in suspense."""
    signer = ReceiptSigner.generate()
    async with engine.begin() as conn:
        await ensure_bank_accounts(conn, ["vcb"])
    first = await _settled(engine, signer, UNIT)
    await _settled(engine, signer, UNIT)
    async with engine.begin() as conn:  # number 3 lost
        await conn.execute(
            text("UPDATE receipt_series SET last_number = last_number + 1 WHERE issuing_unit = :u"),
            {"u": UNIT},
        )
    await _settled(engine, signer, UNIT)
    await _settled(engine, signer, OTHER_UNIT)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        fine_id = await value(engine, "SELECT fine_id FROM payments WHERE id = :p", p=first)
        dup = await add_payment(conn, fine_id, status="verifying", settles=False, amount_vnd=AMOUNT)
        await pay.settle_payment(conn, dup, "FTDUP1", now, "test")
        await pay.mark_refunded(conn, dup, "RF1", now)
        await post_entry(
            conn,
            EntryRequest(
                idempotency_key="suspense:vcb:UNKNOWN1",
                kind="suspense",
                description="unidentified credit",
                postings=(Posting("bank:vcb:clearing", SUSPENSE), Posting("suspense", -SUSPENSE)),
                metadata={"bank": "vcb", "bank_ref": "UNKNOWN1"},
            ),
        )


def _rows(body: dict[str, Any]) -> dict[tuple[str | None, str | None], dict[str, Any]]:
    return {(r["issuing_unit"], r["bank"]): r for r in body["rows"]}


async def test_the_closing_agrees_with_the_postings(console: Console, engine: AsyncEngine) -> None:
    await _day_of_money(engine)
    today = business_date(datetime.now(UTC))
    token = await make_token(engine, "finance", "fin.report")
    auth = {"Authorization": f"Bearer {token}"}
    resp = await console.get(f"{PATH}?day={today}", headers=auth)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    rows = _rows(body)
    ours = rows[(UNIT, "vcb")]
    assert (ours["collected_vnd"], ours["refunded_vnd"], ours["receipts"]) == (
        4 * AMOUNT,
        AMOUNT,
        3,
    )
    assert rows[(OTHER_UNIT, "vcb")]["collected_vnd"] == AMOUNT
    assert rows[(None, "vcb")]["suspense_vnd"] == SUSPENSE
    # The ledger's own figure: the clearing account's movement of the day.
    clearing = await value(
        engine,
        "SELECT sum(p.amount_vnd) FROM postings p JOIN accounts a ON a.id = p.account_id"
        " JOIN journal_entries e ON e.id = p.entry_id"
        " WHERE a.code = 'bank:vcb:clearing' AND e.created_at >= :since",
        since=business_day_start(today),
    )
    total = body["total"]
    assert total["collected_vnd"] - total["refunded_vnd"] + total["suspense_vnd"] == clearing
    series = {s["issuing_unit"]: s for s in body["series"]}
    assert (series[UNIT]["first_number"], series[UNIT]["last_number"]) == (1, 4)
    assert (series[UNIT]["no_gaps"], series[UNIT]["gaps"]) == (False, [3])
    assert series[OTHER_UNIT]["no_gaps"] is True
    csv_text = await (await console.get(f"{PATH}?day={today}&format=csv", headers=auth)).text()
    assert f"{UNIT},vcb,{4 * AMOUNT},{AMOUNT},0,0,0,3" in csv_text
    pdf = await console.get(f"{PATH}?day={today}&format=pdf&bank=vcb", headers=auth)
    assert (await pdf.read()).startswith(b"%PDF")
    for bad in (
        "day=2099-01-01",
        "day=01/03/2026",
        "",
        f"day={today}&format=xml",
        f"day={today}&bank=%3Cx%3E",
    ):
        refused = await console.get(f"{PATH}?{bad}", headers=auth)
        assert refused.status == 400, bad


async def test_unit_scope_and_the_console_page(console: Console, engine: AsyncEngine) -> None:
    await _day_of_money(engine)
    today = business_date(datetime.now(UTC))
    scoped = await make_token(engine, "finance", "fin.scoped", units=(UNIT,))
    auth = {"Authorization": f"Bearer {scoped}"}
    body = await (await console.get(f"{PATH}?day={today}", headers=auth)).json()
    assert set(_rows(body)) == {(UNIT, "vcb")}
    assert [s["issuing_unit"] for s in body["series"]] == [UNIT]
    forged = await (await console.get(f"{PATH}?day={today}&unit={OTHER_UNIT}", headers=auth)).json()
    assert forged["rows"] == []
    assert forged["series"] == []
    officer = await make_token(engine, "officer", "an.officer")
    denied = await console.get(
        f"{PATH}?day={today}", headers={"Authorization": f"Bearer {officer}"}
    )
    assert denied.status == 403
    await make_user(engine, "fin.an", "finance", PASSWORD)
    await log_in(console, "fin.an")
    page = await (await console.get(f"/console/closing?day={today}")).text()
    assert "6.000.000 đ" in page
    assert "Thiếu số (1):</strong> 3" in page
    assert f'href="/console/closing.pdf?day={today}"' in page
    csv_text = await (await console.get(f"/console/closing.csv?day={today}")).text()
    assert f"{OTHER_UNIT},vcb,{AMOUNT}" in csv_text
    bad = await console.get("/console/closing?day=2099-01-01")
    assert bad.status == 400
    # The chart of the 14 days up to the day, its figures in a table too.
    assert 'role="img"' in page
    assert "Đã thu và đã hoàn theo ngày (14 ngày)" in page
    assert f"{today:%d/%m}: Đã thu 7.500.000 đ" in page  # every unit: 5 debits
    day_row = f'<th scope="row">{today:%d/%m/%Y}</th><td class="num">7.500.000 đ</td>'
    assert day_row in page


async def test_daily_totals_agree_with_the_closing_within_scope(
    console: Console, engine: AsyncEngine
) -> None:
    await _day_of_money(engine)
    today = business_date(datetime.now(UTC))
    token = await make_token(engine, "finance", "fin.totals")
    auth = {"Authorization": f"Bearer {token}"}
    body = await (await console.get(f"{TOTALS}?until={today}&days=3", headers=auth)).json()
    closing = await (await console.get(f"{PATH}?day={today}", headers=auth)).json()
    assert body["until"] == today.isoformat()
    assert body["days"] == 3
    assert [p["day"] for p in body["points"]] == [
        (today - timedelta(days=n)).isoformat() for n in (2, 1, 0)
    ]
    assert body["points"][:2] == [
        {"day": p["day"], "collected_vnd": 0, "refunded_vnd": 0} for p in body["points"][:2]
    ]
    last = body["points"][-1]
    assert (last["collected_vnd"], last["refunded_vnd"]) == (5 * AMOUNT, AMOUNT)
    total = closing["total"]
    assert (last["collected_vnd"], last["refunded_vnd"]) == (
        total["collected_vnd"],
        total["refunded_vnd"],
    )
    default = await (await console.get(TOTALS, headers=auth)).json()
    assert (default["until"], default["days"]) == (today.isoformat(), 14)
    # Unit scope in the query: a scoped reader's own unit only; a forged
    # ``unit`` of another finds nothing.
    scoped = await make_token(engine, "finance", "fin.totals.scoped", units=(UNIT,))
    mine = {"Authorization": f"Bearer {scoped}"}
    own = await (await console.get(f"{TOTALS}?days=1", headers=mine)).json()
    assert own["points"][0]["collected_vnd"] == 4 * AMOUNT
    forged = await (await console.get(f"{TOTALS}?days=1&unit={OTHER_UNIT}", headers=mine)).json()
    assert forged["points"][0]["collected_vnd"] == 0
    for bad in (
        "days=0",
        "days=32",
        "days=abc",
        "days=1&days=2",
        "until=2099-01-01",
        "until=01/03/2026",
        "bank=%3Cx%3E",
        "sort=amount",
    ):
        refused = await console.get(f"{TOTALS}?{bad}", headers=auth)
        assert refused.status == 400, bad
        assert (await refused.json())["error"]["field"] in bad, bad
    officer = await make_token(engine, "officer", "an.officer.totals")
    denied = await console.get(TOTALS, headers={"Authorization": f"Bearer {officer}"})
    assert denied.status == 403
