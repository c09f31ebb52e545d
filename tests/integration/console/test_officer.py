"""The officer's search by plate and by name (page and JSON), today's
receipts of the unit: typed any way, unit-scoped in SQL (a forged filter or
cursor shows nothing of another unit), bounded, strict parameters, and
stored HTML escaped."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.fines import FineInput, register_fine
from ledger.receipts.issue import Receipt
from ledger.receipts.signing import ReceiptSigner
from tests.integration.console.conftest import PASSWORD, Console, fine_with, log_in, receipted
from tests.support.api import make_token, make_user
from tests.support.receipts import UNIT, issue

OTHER_UNIT = "Đội CSGT số 9"


async def _fine(engine: AsyncEngine, number: str, plate: str, name: str, unit: str = UNIT) -> None:
    async with engine.begin() as conn:
        await register_fine(
            conn,
            FineInput(
                decision_number=number,
                amount_vnd=500_000,
                violator_name=name,
                plate=plate,
                issuing_unit=unit,
                violation="Vượt đèn đỏ",
            ),
        )


async def _fines(engine: AsyncEngine) -> None:
    await _fine(engine, "00001/QĐ-XPHC", "51F-123.45", "Nguyễn Văn An")
    await _fine(engine, "00002/QĐ-XPHC", "51F-123.46", "NGUYỄN VĂN ANH")
    await _fine(engine, "00003/QĐ-XPHC", "29A-999.99", "Trần Thị Đào")
    await _fine(engine, "00004/QĐ-XPHC", "51F-123.47", "Nguyễn Văn Ân", unit=OTHER_UNIT)
    await _fine(engine, "00005/QĐ-XPHC", "30E-111.11", "<script>alert(1)</script>")


async def _json(console: Console, token: str, query: str) -> tuple[int, Any]:
    resp = await console.get(f"/api/v1/fines?{query}", headers={"Authorization": f"Bearer {token}"})
    return resp.status, await resp.json()


def _numbers(body: Any) -> list[str]:
    return [f["decision_number"] for f in body["fines"]]


async def test_plate_and_name_typed_any_way_find_the_units_fines(
    console: Console, engine: AsyncEngine
) -> None:
    await _fines(engine)
    token = await make_token(engine, "officer", "scoped-officer", units=(UNIT,))
    for plate in ("51f12345", "51F-123.45", " 51 f.123 45 "):
        status, body = await _json(console, token, f"plate={quote(plate)}")
        assert (status, _numbers(body)) == (200, ["00001/QĐ-XPHC"]), plate
    # A prefix, in key order; the other unit's 51F-123.47 is never listed.
    status, body = await _json(console, token, "plate=51f")
    assert _numbers(body) == ["00001/QĐ-XPHC", "00002/QĐ-XPHC"]
    for name in ("nguyen van an", "Nguyễn Văn An", "NGUYEN  VAN AN"):
        status, body = await _json(console, token, f"name={quote(name)}")
        assert _numbers(body) == ["00001/QĐ-XPHC", "00002/QĐ-XPHC"], name
    status, body = await _json(console, token, "name=tran+thi+dao")
    assert _numbers(body) == ["00003/QĐ-XPHC"]
    assert body["fines"][0]["violator_name"] == "Trần Thị Đào"
    assert body["fines"][0]["status"] == "unpaid"
    # Paged: one per page, the cursor leads to the next, then none.
    status, first = await _json(console, token, "plate=51f&limit=1")
    assert _numbers(first) == ["00001/QĐ-XPHC"]
    assert first["next_cursor"]
    status, second = await _json(console, token, f"plate=51f&limit=1&cursor={first['next_cursor']}")
    assert _numbers(second) == ["00002/QĐ-XPHC"]
    # An admin of every unit sees the other unit's fine too.
    admin = await make_token(engine, "admin", "any-unit-admin")
    status, body = await _json(console, admin, "plate=51f")
    assert len(_numbers(body)) == 3


async def test_another_units_fines_stay_hidden_whatever_is_forged(
    console: Console, engine: AsyncEngine
) -> None:
    await _fines(engine)
    token = await make_token(engine, "officer", "scoped-officer", units=(UNIT,))
    admin = await make_token(engine, "admin", "any-unit-admin")
    _, every = await _json(console, admin, "plate=51f")
    assert len(every["fines"]) == 3
    for query in (
        f"unit={quote(OTHER_UNIT)}",
        f"unit={quote(OTHER_UNIT)}&plate=51f",
        "name=nguyen+van+a&status=unpaid&unit=" + quote(OTHER_UNIT),
        "plate=51F12347",
    ):
        status, body = await _json(console, token, query)
        assert (status, body["fines"]) == (200, []), query
    # A cursor that is another unit's fine (the admin's pages name its id)
    # only places the page: that fine is still not listed.
    _, page = await _json(console, admin, "plate=51f&limit=2")
    _, last = await _json(console, admin, f"plate=51f&limit=1&cursor={page['next_cursor']}")
    assert _numbers(last) == ["00004/QĐ-XPHC"]
    theirs = last["next_cursor"]
    for query in (f"plate=51f&cursor={theirs}", f"cursor={theirs}", f"name=n&cursor={theirs}"):
        status, body = await _json(console, token, query)
        assert status == 200, query
        assert "00004/QĐ-XPHC" not in _numbers(body), query


async def test_bad_search_parameters_are_refused_by_name(
    console: Console, engine: AsyncEngine
) -> None:
    token = await make_token(engine, "officer", "scoped-officer", units=(UNIT,))
    for query, field in (
        ("plate=...", "plate"),
        ("name=%20%20", "name"),
        ("name=", None),  # empty: absent, as a form sends it
        ("status=gone", "status"),
        ("limit=201", "limit"),
        ("cursor=abc", "cursor"),
        ("cursor=-1", "cursor"),
        ("plates=51f", "plates"),
        ("plate=51f&plate=29a", "plate"),
        ("name=" + "a" * 201, "name"),
    ):
        status, body = await _json(console, token, query)
        if field is None:
            assert status == 200, query
        else:
            assert (status, body["error"]["field"]) == (400, field), query


async def test_the_officers_pages_search_and_list_todays_receipts(
    console: Console, engine: AsyncEngine
) -> None:
    """One login for both pages (a login costs more than the checks)."""
    await _fines(engine)
    await make_user(engine, "an.officer", "officer", PASSWORD, units=(UNIT,))
    await log_in(console, "an.officer")
    await _counter_search(console)
    await _todays_receipts(console, engine)


async def _counter_search(console: Console) -> None:
    page = await (await console.get("/console/counter?plate=51f")).text()
    assert "00001/QĐ-XPHC" in page
    assert "00002/QĐ-XPHC" in page
    assert "00004/QĐ-XPHC" not in page  # the other unit's
    assert 'href="/console/counter?q=00001/Q%C4%90-XPHC"' in page
    page = await (await console.get("/console/counter?name=nguyen+van+an")).text()
    assert "Nguyễn Văn An" in page
    assert "NGUYỄN VĂN ANH" in page
    page = await (await console.get("/console/counter?plate=30e")).text()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    resp = await console.get("/console/counter?plate=--")
    assert resp.status == 400
    assert "cần có chữ cái hoặc chữ số" in await resp.text()
    resp = await console.get("/console/counter?plate=51f&cursor=zzz")
    assert resp.status == 400


async def _receipted_now(engine: AsyncEngine, number: str, unit: str) -> Receipt:
    payment_id = await fine_with(engine, number, "succeeded", unit=unit)
    return await issue(engine, UUID(payment_id), ReceiptSigner.generate(), datetime.now(UTC))


async def _todays_receipts(console: Console, engine: AsyncEngine) -> None:
    mine = await _receipted_now(engine, "00011/QĐ-XPHC", UNIT)
    theirs = await _receipted_now(engine, "00012/QĐ-XPHC", OTHER_UNIT)
    earlier = await receipted(engine, "00013/QĐ-XPHC")  # issued in 2025
    for query in ("", f"?unit={quote(OTHER_UNIT)}", "?cursor=999999999"):
        resp = await console.get(f"/console/receipts/today{query}")
        assert resp.status == 200
        page = await resp.text()
        assert f"{theirs.series}/{theirs.number}" not in page, query
    page = await (await console.get("/console/receipts/today")).text()
    assert f"{mine.series}/{mine.number}" in page
    assert f"{earlier.series}/{earlier.number}" not in page
    assert f'/console/receipts/{mine.series}/{mine.number}.pdf"' in page
    assert f'action="/console/receipts/{mine.series}/{mine.number}/reprint"' in page
    resp = await console.get("/console/receipts/today?cursor=x")
    assert resp.status == 400
