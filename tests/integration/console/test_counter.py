"""The officer's counter: a decision number typed any way, the state in
plain Vietnamese, a payment in doubt explained (which bank, since when its
link is down, do not pay again, the receipt comes by itself, when to open
a dispute), print and an audited reprint, unit scope, and the 403 page of
a role that may not."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.outages import PostgresOutageStore
from tests.integration.console.conftest import (
    PASSWORD,
    Console,
    fine_with,
    log_in,
    receipted,
)
from tests.support.api import make_user
from tests.support.db import value
from tests.support.receipts import UNIT

OTHER_UNIT = "Đội CSGT số 9"
# 09:30 in Hanoi, 3 March 2025.
OUTAGE_START = datetime(2025, 3, 3, 2, 30, tzinfo=UTC)


async def _officer(
    console: Console, engine: AsyncEngine, *, units: tuple[str, ...] = (UNIT,)
) -> str:
    await make_user(engine, "an.officer", "officer", PASSWORD, units=units)
    return await log_in(console, "an.officer")


async def _search(console: Console, typed: str, lang: str = "") -> tuple[int, str]:
    query = f"q={quote(typed)}" + (f"&lang={lang}" if lang else "")
    resp = await console.get(f"/console/counter?{query}")
    return resp.status, await resp.text()


async def test_a_decision_number_typed_any_way_finds_the_fine(
    console: Console, engine: AsyncEngine
) -> None:
    await _officer(console, engine)
    await fine_with(engine, "01234/QĐ-XPHC", None)
    for typed in ("01234/QĐ-XPHC", " 01234 / qd-xphc ", "01234/qđ-xphc"):
        status, page = await _search(console, typed)
        assert status == 200, typed
        assert "Chưa nộp" in page
        assert "800.000 đ" in page
        assert "Nguyễn Văn A" in page  # the officer sees the whole fine
    status, page = await _search(console, "01234@QĐ")
    assert status == 400
    assert "Số quyết định không hợp lệ" in page


async def test_a_payment_in_doubt_is_explained(console: Console, engine: AsyncEngine) -> None:
    await _officer(console, engine)
    decision = "01234/QĐ-XPHC"
    await fine_with(engine, decision, "verifying")
    await PostgresOutageStore(engine).open_outage("vcb", OUTAGE_START, "timeout")
    status, page = await _search(console, decision)
    assert status == 200
    assert "Đang xác minh" in page
    assert "ngân hàng vcb" in page
    assert "bị gián đoạn từ 09:30 ngày 03/03/2025 (giờ Việt Nam)" in page
    assert "KHÔNG được nộp lại" in page
    assert "Biên lai sẽ tự động được phát hành" in page
    assert "hãy mở khiếu nại" in page
    status, english = await _search(console, decision, lang="en")
    assert "has been down since 09:30 on 03/03/2025 (Vietnam time)" in english
    assert "must NOT pay again" in english


async def test_in_doubt_with_the_link_up_gives_the_dispute_deadline(
    console: Console, engine: AsyncEngine
) -> None:
    await _officer(console, engine)
    decision = "01234/QĐ-XPHC"
    payment_id = await fine_with(engine, decision, "initiated")
    created = await value(engine, "SELECT created_at FROM payments WHERE id = :p", p=payment_id)
    deadline = (created + timedelta(days=1)).astimezone(UTC)
    _status, page = await _search(console, decision)
    assert "vẫn hoạt động" in page
    local = deadline + timedelta(hours=7)
    assert f"Nếu đến {local:%H:%M} ngày {local:%d/%m/%Y}" in page


async def test_another_units_fine_and_receipt_do_not_exist(
    console: Console, engine: AsyncEngine
) -> None:
    csrf = await _officer(console, engine)
    theirs = "00999/QĐ-XPHC"
    receipt = await receipted(engine, theirs, unit=OTHER_UNIT)
    status, page = await _search(console, theirs)
    assert status == 404
    assert "Không tìm thấy quyết định" in page
    assert OTHER_UNIT not in page
    base = f"/console/receipts/{receipt.series}/{receipt.number}"
    printed = await console.get(f"{base}.pdf")
    assert printed.status == 404
    reprinted = await console.post(f"{base}/reprint", data={"csrf": csrf})
    assert reprinted.status == 404
    copies = await value(engine, "SELECT copies FROM receipts WHERE number = :n", n=receipt.number)
    assert copies == 1
    assert (
        await value(engine, "SELECT count(*) FROM audit_log WHERE action = 'receipt.reissued'") == 0
    )


async def test_print_and_an_audited_reprint(console: Console, engine: AsyncEngine) -> None:
    csrf = await _officer(console, engine)
    decision = "01234/QĐ-XPHC"
    receipt = await receipted(engine, decision)
    _status, page = await _search(console, decision)
    assert "Đã nộp" in page
    base = f"/console/receipts/{receipt.series}/{receipt.number}"
    assert f'href="{base}.pdf"' in page
    printed = await console.get(f"{base}.pdf")
    assert printed.status == 200
    assert printed.content_type == "application/pdf"
    copy = await console.post(f"{base}/reprint", data={"csrf": csrf})
    assert copy.status == 200
    assert copy.content_type == "application/pdf"
    assert (await copy.read()).startswith(b"%PDF")
    assert (
        await value(engine, "SELECT copies FROM receipts WHERE number = :n", n=receipt.number) == 2
    )
    actor = await value(engine, "SELECT actor FROM audit_log WHERE action = 'receipt.reissued'")
    assert actor == "an.officer"
    # Without the form's token: refused, no copy counted.
    refused = await console.post(f"{base}/reprint", data={"csrf": "forged"})
    assert refused.status == 403
    assert (
        await value(engine, "SELECT copies FROM receipts WHERE number = :n", n=receipt.number) == 2
    )


async def test_a_role_that_may_not_gets_a_vietnamese_403(
    console: Console, engine: AsyncEngine
) -> None:
    await make_user(engine, "op.le", "operator", PASSWORD)
    csrf = await log_in(console, "op.le")
    receipt = await receipted(engine, "01234/QĐ-XPHC")
    base = f"/console/receipts/{receipt.series}/{receipt.number}"
    for resp in (
        await console.get(f"{base}.pdf"),
        await console.post(f"{base}/reprint", data={"csrf": csrf}),
    ):
        assert resp.status == 403
        assert resp.content_type == "text/html"
        assert "Vai trò của bạn không được phép xem trang này" in await resp.text()
    assert (
        await value(engine, "SELECT copies FROM receipts WHERE number = :n", n=receipt.number) == 1
    )
