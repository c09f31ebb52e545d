"""The console's JSON lists (``reconciler.api.lists``) on the real database:
cursor pages that cover every row once, unit scope in SQL (another unit's
rows never appear, a filter naming it finds nothing), and bad input refused
with a 400 naming the parameter."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.business_time import business_date
from ledger.core.audit import append_audit
from tests.integration.identity.conftest import Api, call
from tests.integration.identity.test_unit_scope import OURS, THEIRS, Paid, units
from tests.support.api import make_token
from tests.support.ledger import make_fine
from tests.support.receipts import add_payment

__all__ = ["units"]  # the fixture, used here by name


async def _ok(api: Api, path: str, token: str) -> Any:
    status, body = await call(api, "GET", path, token)
    assert status == 200, body
    return body


async def _all_pages(api: Api, path: str, token: str, key: str, limit: int) -> list[Any]:
    """Every row of a list, walked page by page with ``next_cursor``."""
    seen: list[Any] = []
    cursor = ""
    for _ in range(100):
        sep = "&" if "?" in path else "?"
        status, body = await call(api, "GET", f"{path}{sep}limit={limit}&cursor={cursor}", token)
        assert status == 200, body
        assert len(body[key]) <= limit
        seen.extend(body[key])
        if body["next_cursor"] is None:
            return seen
        cursor = quote(body["next_cursor"], safe="")
    raise AssertionError("the pages never ended")


async def test_payments_pages_cover_every_row_once_newest_first(
    api: Api, engine: AsyncEngine, units: dict[str, Paid]
) -> None:
    fine = await make_fine(engine, "222/QĐ-XPHC", 500_000, OURS)
    async with engine.begin() as conn:  # one transaction: equal created_at, ids break the tie
        extra = [
            str(await add_payment(conn, fine.id, status="declined", settles=False))
            for _ in range(4)
        ]
    admin = await make_token(engine, "admin", "root")
    rows = await _all_pages(api, "/api/v1/payments", admin, "payments", 1)
    ids = [r["payment_id"] for r in rows]
    assert sorted(ids) == sorted([*extra, units[OURS].payment_id, units[THEIRS].payment_id])
    assert len(set(ids)) == len(ids) == 6
    assert [r["created_at"] for r in rows] == sorted((r["created_at"] for r in rows), reverse=True)
    assert set(ids[:4]) == set(extra)  # the newest
    body = await _ok(api, "/api/v1/payments?status=declined&limit=200", admin)
    assert {r["payment_id"] for r in body["payments"]} == set(extra)
    number = quote(" 222 / qđ-xphc ", safe="")
    body = await _ok(api, f"/api/v1/payments?decision_number={number}", admin)
    assert {r["payment_id"] for r in body["payments"]} == set(extra)


async def test_a_scoped_officer_lists_only_their_units(
    api: Api, engine: AsyncEngine, units: dict[str, Paid]
) -> None:
    theirs = await make_fine(engine, "998/QĐ-XPHC", 500_000, THEIRS)
    async with engine.begin() as conn:
        for _ in range(3):
            await add_payment(conn, theirs.id, status="declined", settles=False)
    officer = await make_token(engine, "officer", "scoped-officer", units=(OURS,))
    # Full pages of our unit's rows: the scope is in the query, not after it.
    body = await _ok(api, "/api/v1/payments?limit=1", officer)
    assert [r["payment_id"] for r in body["payments"]] == [units[OURS].payment_id]
    rows = await _all_pages(api, "/api/v1/payments", officer, "payments", 1)
    assert [r["issuing_unit"] for r in rows] == [OURS]
    receipts = await _all_pages(api, "/api/v1/receipts", officer, "receipts", 1)
    assert [r["payment_id"] for r in receipts] == [units[OURS].payment_id]
    # Naming the other unit finds nothing; it is not refused.
    unit = quote(THEIRS, safe="")
    body = await _ok(api, f"/api/v1/receipts?issuing_unit={unit}", officer)
    assert (body["receipts"], body["next_cursor"]) == ([], None)
    theirs_number = quote("998/QĐ-XPHC", safe="")
    path = f"/api/v1/payments?decision_number={theirs_number}"
    assert (await call(api, "GET", path, officer))[1]["payments"] == []
    admin = await make_token(engine, "admin", "root")
    assert len((await call(api, "GET", path, admin))[1]["payments"]) == 3


async def test_todays_receipts_of_a_unit(
    api: Api, engine: AsyncEngine, units: dict[str, Paid]
) -> None:
    admin = await make_token(engine, "admin", "root")
    body = await _ok(api, "/api/v1/receipts", admin)
    issued = body["receipts"][0]["issued_at"]
    today = business_date(datetime.fromisoformat(issued)).isoformat()
    unit = quote(OURS, safe="")
    body = await _ok(api, f"/api/v1/receipts?issuing_unit={unit}&day={today}", admin)
    assert [r["payment_id"] for r in body["receipts"]] == [units[OURS].payment_id]
    body = await _ok(api, "/api/v1/receipts?day=2001-01-01", admin)
    assert body["receipts"] == []
    body = await _ok(api, "/api/v1/receipts", admin)
    series = body["receipts"][0]["series"]
    path = f"/api/v1/receipts?series={quote(series, safe='')}"
    assert {r["series"] for r in (await call(api, "GET", path, admin))[1]["receipts"]} == {series}


async def test_refunds_are_payments_given_back(
    api: Api, engine: AsyncEngine, units: dict[str, Paid]
) -> None:
    fine = await make_fine(engine, "333/QĐ-XPHC", 500_000, THEIRS)
    async with engine.begin() as conn:
        refunded = str(await add_payment(conn, fine.id, status="refunded", settles=False))
    admin = await make_token(engine, "admin", "root")
    body = await _ok(api, "/api/v1/refunds", admin)
    assert [r["payment_id"] for r in body["refunds"]] == [refunded]
    officer = await make_token(engine, "officer", "scoped-officer", units=(OURS,))
    assert (await call(api, "GET", "/api/v1/refunds", officer))[1]["refunds"] == []


async def test_audit_search_and_verification(api: Api, engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for n in range(3):
            await append_audit(
                conn,
                actor="user:lan",
                action="fine.amended",
                subject_type="fine",
                subject_id=str(n),
                now=datetime.now(UTC),
                detail={},
            )
    finance = await make_token(engine, "finance", "finance-lan")
    rows = await _all_pages(api, "/api/v1/audit?actor=user:lan", finance, "audit", 2)
    assert [r["subject_id"] for r in rows] == ["2", "1", "0"]
    path = "/api/v1/audit?subject_type=fine&subject_id=1"
    assert [r["subject_id"] for r in (await call(api, "GET", path, finance))[1]["audit"]] == ["1"]
    status, report = await call(api, "GET", "/api/v1/audit/verification", finance)
    assert (status, report["ok"], report["problems"]) == (200, True, [])
    assert report["rows_checked"] >= 3
    officer = await make_token(engine, "officer", "officer-an")
    status, body = await call(api, "GET", "/api/v1/audit", officer)
    assert (status, body["error"]["code"]) == (403, "forbidden")
    scoped = await make_token(engine, "finance", "finance-unit", units=(OURS,))
    status, body = await call(api, "GET", "/api/v1/audit?actor=user:lan", scoped)
    assert (status, body["error"]["code"]) == (403, "unit_scoped")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("payments?limit=0", "limit"),
        ("payments?limit=1000000000", "limit"),
        ("payments?limit=%EF%BC%91", "limit"),
        ("payments?limit=201", "limit"),
        ("payments?cursor=garbage", "cursor"),
        ("payments?cursor=1.zz", "cursor"),
        ("payments?cursor=99999999999999999999.00000000000000000000000000000000", "cursor"),
        ("payments?status=lost", "status"),
        ("payments?bank=nobank", "bank"),
        ("payments?from=2026-13-01", "from"),
        ("payments?from=2026-03-02&to=2026-03-01", "to"),
        ("payments?decision_number=%20%20", "decision_number"),
        ("receipts?cursor=-1", "cursor"),
        ("receipts?cursor=%EF%BC%91", "cursor"),
        ("receipts?series=abc%27%3B", "series"),
        ("receipts?day=20260301", "day"),
        ("receipts?issuing_unit=" + "x" * 201, "issuing_unit"),
        ("receipts?issuing_unit=a%00b", "issuing_unit"),
        ("refunds?bank=%3Cscript%3E", "bank"),
        ("audit?cursor=1e9", "cursor"),
        ("audit?actor=a%E2%80%AEb", "actor"),
        ("audit?to=yesterday", "to"),
    ],
)
async def test_bad_parameters_are_refused_naming_them(
    api: Api, engine: AsyncEngine, query: str, field: str
) -> None:
    admin = await make_token(engine, "admin", "root")
    status, body = await call(api, "GET", f"/api/v1/{query}", admin)
    assert (status, body["error"]["field"]) == (400, field), body
