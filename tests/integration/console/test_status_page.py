"""The citizen's public status page: a decision number and the plate show
paid / verifying / unpaid with the officer's explanation and, once paid,
the citizen's own signed receipt link; a wrong plate learns exactly what
an unknown decision number does; no name, no unit; rate limited."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import quote

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.outages import PostgresOutageStore
from tests.integration.console.conftest import Console, fine_with, receipted
from tests.support.receipts import UNIT

DECISION = "01234/QĐ-XPHC"
PLATE = "29A-123.45"  # tests.support.ledger.make_fine's


def _url(decision: str, plate: str) -> str:
    return f"/status?decision={quote(decision)}&plate={quote(plate)}"


async def _page(console: Console, decision: str = DECISION, plate: str = PLATE) -> tuple[int, str]:
    resp = await console.get(_url(decision, plate))
    assert resp.content_type == "text/html"
    return resp.status, await resp.text()


def _no_personal_data(page: str) -> None:
    assert "Nguyễn" not in page
    assert UNIT not in page


async def test_unpaid(console: Console, engine: AsyncEngine) -> None:
    await fine_with(engine, DECISION, None)
    status, page = await _page(console, " 01234/qd-xphc ", "29a 123 45")  # typed any way
    assert status == 200
    assert "Chưa nộp" in page
    assert "800.000 đ" in page
    _no_personal_data(page)


async def test_verifying_says_do_not_pay_again(console: Console, engine: AsyncEngine) -> None:
    await fine_with(engine, DECISION, "verifying")
    await PostgresOutageStore(engine).open_outage(
        "vcb", datetime(2025, 3, 3, 2, 30, tzinfo=UTC), "timeout"
    )
    status, page = await _page(console)
    assert status == 200
    assert "Đang xác minh" in page
    assert "bị gián đoạn từ 09:30 ngày 03/03/2025" in page
    assert "KHÔNG được nộp lại" in page
    _no_personal_data(page)


async def test_paid_links_the_citizens_own_receipt(console: Console, engine: AsyncEngine) -> None:
    receipt = await receipted(engine, DECISION)
    status, page = await _page(console)
    assert status == 200
    assert "Đã nộp" in page
    _no_personal_data(page)
    found = re.search(r'href="(/receipts/[^"]+)"', page)
    assert found, page
    link = found.group(1).replace("&amp;", "&")
    assert link.startswith(f"/receipts/{receipt.series}/{receipt.number}.pdf?exp=")
    pdf = await console.get(link)
    assert pdf.status == 200
    assert pdf.content_type == "application/pdf"


@pytest.mark.parametrize("plate", ["29A-123.46", "30A-123.45", "x", "29A-123.455"])
async def test_a_wrong_plate_learns_what_an_unknown_number_does(
    console: Console, engine: AsyncEngine, plate: str
) -> None:
    before = await _page(console, DECISION, plate)  # the fine does not exist yet
    await receipted(engine, DECISION)
    after = await _page(console, DECISION, plate)
    assert after == before
    assert after[0] == 404
    # A decision number that cannot exist answers the same page too.
    nonsense = await _page(console, "@@", plate)
    assert nonsense[0] == 404
    echoed = after[1].replace('value="01234/QĐ-XPHC"', 'value="@@"')
    assert nonsense[1] == echoed.replace(quote(DECISION, safe=""), quote("@@", safe=""))
    assert "/receipts/" not in after[1]


@pytest.mark.parametrize(
    "console_overrides", [{"public_rate_per_minute": 1, "public_rate_burst": 2}]
)
async def test_rate_limited_per_client(console: Console, engine: AsyncEngine) -> None:
    await fine_with(engine, DECISION, None)
    assert (await _page(console))[0] == 200
    assert (await _page(console, DECISION, "00X-000.00"))[0] == 404
    resp = await console.get(_url(DECISION, PLATE))
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    assert "Chưa nộp" not in await resp.text()


async def test_paid_before_the_receipt_says_it_is_coming(
    console: Console, engine: AsyncEngine
) -> None:
    await fine_with(engine, DECISION, "succeeded")  # settled, not yet receipted
    status, page = await _page(console)
    assert status == 200
    assert "Đã nộp" in page
    assert "Biên lai đang được phát hành" in page
    assert "/receipts/" not in page
