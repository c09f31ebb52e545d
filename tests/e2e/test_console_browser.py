"""The console in a real browser (Playwright driving Debian's chromium,
``/usr/bin/chromium``, which ``scripts/install-system-tools.sh`` installs;
Playwright never downloads one) on the shared seeded dev stack.

Journeys:
- the seed story: a payment whose bank answer was lost while ``sgbank``'s
  link went down. The officer's counter and the citizen's status page say
  "verifying" with the explanation (which bank, since when, do not pay
  again, the receipt comes by itself, when to open a dispute); the link
  comes back; the receipt appears by itself, prints (PDF) at the counter
  and downloads by the citizen's signed link; a wrong plate shows nothing;
- login and logout with the keyboard only (Tab, Enter);
- a role without the permission gets the 403 page in Vietnamese;
- finance: the requester of the seed's dispute confirmation sees no
  approve button on it, the approver approves it through the form; the
  daily closing of the seed's day shows its totals and a CSV;
- operator and admin: the link board, the in-doubt queue, the alerts, the
  users (order-independent: the seed story's journey may have brought
  ``sgbank`` back before or after).

Every wait polls the page for what it must show, with a deadline (no sleep
stands for an outcome).
"""

from __future__ import annotations

import os
import re
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from domain.business_time import business_date

CHROMIUM: Final = Path("/usr/bin/chromium")
STORY_DECISION: Final = "02003/QĐ-XPHC"
STORY_PLATE: Final = "29A-888.99"
RECOVERY_SECONDS: Final = 60.0


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/install-system-tools.sh")
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(locale="vi-VN")
    yield context.new_page()
    context.close()


def _user(info: dict[str, Any], role: str) -> dict[str, str]:
    found: dict[str, str] = next(u for u in info["users"] if u["role"] == role)
    return found


def _log_in(page: Page, info: dict[str, Any], role: str) -> None:
    user = _user(info, role)
    page.goto(info["console_url"])
    page.fill("#username", user["username"])
    page.fill("#password", user["password"])
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"/console/counter$"))


def _counter(page: Page, info: dict[str, Any], decision: str) -> None:
    page.goto(f"{info['api_url']}/console/counter?q={urllib.parse.quote(decision.lower())}")


def _status_url(info: dict[str, Any], decision: str, plate: str) -> str:
    query = urllib.parse.urlencode({"decision": decision, "plate": plate})
    return f"{info['api_url']}/status?{query}"


def _bring_the_link_back(info: dict[str, Any]) -> None:
    admin = info["banks"]["sgbank"]["admin_url"]
    request = urllib.request.Request(admin + "/faults", method="DELETE")
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200


def _reload_until(page: Page, text: str) -> None:
    deadline = time.monotonic() + RECOVERY_SECONDS
    while text not in page.inner_text("main"):
        assert time.monotonic() < deadline, f"{text!r} did not appear:\n{page.inner_text('main')}"
        page.wait_for_timeout(500)
        page.reload()


def _assert_pdf_behind(page: Page, link_text: str) -> None:
    """The link named ``link_text`` answers a PDF (with the page's cookies)."""
    href = page.get_by_text(link_text).get_attribute("href") or ""
    answer = page.request.get(urllib.parse.urljoin(page.url, href))
    assert answer.status == 200
    assert answer.headers["content-type"] == "application/pdf"
    assert answer.body().startswith(b"%PDF")


def test_the_seed_story_from_doubt_to_a_printed_receipt(
    browser: Browser, page: Page, dev_stack: dict[str, Any]
) -> None:
    info = dev_stack
    _log_in(page, info, "officer")
    _counter(page, info, STORY_DECISION)
    state = page.locator("section.state")
    expect(state.locator("h2")).to_have_text("Đang xác minh")
    said = state.inner_text()
    assert "ngân hàng sgbank" in said  # which bank
    assert "bị gián đoạn từ" in said  # since when its link is down
    assert "KHÔNG được nộp lại" in said  # do not pay again
    assert "Biên lai sẽ tự động được phát hành" in said  # it comes by itself
    assert "hãy mở khiếu nại tại quầy" in said  # when to open a dispute
    expect(page.get_by_text("In biên lai (PDF)")).to_have_count(0)

    citizen = browser.new_page(locale="vi-VN")  # no session: the public page
    citizen.goto(_status_url(info, STORY_DECISION, STORY_PLATE))
    expect(citizen.locator("section.state h2")).to_have_text("Đang xác minh")
    assert "KHÔNG được nộp lại" in citizen.locator("section.state").inner_text()

    _bring_the_link_back(info)
    _reload_until(page, "In biên lai (PDF)")
    expect(state.locator("h2")).to_have_text("Đã nộp")
    _assert_pdf_behind(page, "In biên lai (PDF)")

    _reload_until(citizen, "Tải biên lai của bạn (PDF)")
    expect(citizen.locator("section.state h2")).to_have_text("Đã nộp")
    _assert_pdf_behind(citizen, "Tải biên lai của bạn (PDF)")

    citizen.goto(_status_url(info, STORY_DECISION, "30A-000.00"))  # a wrong plate
    shown = citizen.inner_text("main")
    assert "Không tìm thấy quyết định với số và biển số này" in shown
    for secret in ("2.000.000", "Bùi Văn Khánh", "Đã nộp", "Tải biên lai"):
        assert secret not in shown
    citizen.close()


def test_login_and_logout_with_the_keyboard_only(page: Page, dev_stack: dict[str, Any]) -> None:
    user = _user(dev_stack, "finance")
    page.goto(dev_stack["console_url"])
    expect(page).to_have_url(re.compile(r"/console/login$"))
    expect(page.locator("#username")).to_be_focused()  # autofocus: no mouse needed
    page.keyboard.type(user["username"])
    page.keyboard.press("Tab")
    expect(page.locator("#password")).to_be_focused()
    page.keyboard.type(user["password"])
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/counter$"))
    expect(page.locator("header .who")).to_contain_text(user["username"])

    logout = page.get_by_role("button", name="Đăng xuất")
    logout.focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/console/login$"))
    page.goto(f"{dev_stack['api_url']}/console/counter")  # the session is over
    expect(page).to_have_url(re.compile(r"/console/login$"))


def test_a_role_without_the_permission_gets_the_403_page(
    page: Page, dev_stack: dict[str, Any]
) -> None:
    _log_in(page, dev_stack, "officer")
    _counter(page, dev_stack, "02001/QĐ-XPHC")  # settled by the seed, with its receipt
    href = page.get_by_text("In biên lai (PDF)").get_attribute("href") or ""
    assert href.startswith("/console/receipts/")
    page.context.clear_cookies()

    _log_in(page, dev_stack, "operator")  # reads fines, not receipts
    answer = page.goto(dev_stack["api_url"] + href)
    assert answer is not None
    assert answer.status == 403
    expect(page.locator("h1")).to_have_text("Không có quyền truy cập")
    expect(page.locator("main")).to_contain_text("Vai trò của bạn không được phép xem trang này")


def _go(page: Page, info: dict[str, Any], path: str) -> None:
    answer = page.goto(info["api_url"] + path)
    assert answer is not None
    assert answer.status == 200, f"{path}: {answer.status}"


def _seed_day() -> str:
    """The business day the seed story ran (the stack started minutes ago)."""
    return business_date(datetime.now(UTC)).isoformat()


def test_finance_approves_the_seed_dispute_and_reads_the_closing(
    page: Page, dev_stack: dict[str, Any]
) -> None:
    """Maker-checker in the browser: the requester (demo-finance, who asked
    to confirm the seed's dispute) sees the request without an approve
    button; the approver approves it through the form's labelled field.
    Then the daily closing of the seed's day: totals, and a CSV behind its
    link."""
    info = dev_stack
    _log_in(page, info, "finance")
    _go(page, info, "/console/approvals")
    expect(page.get_by_role("heading", level=1)).to_have_text("Hộp phê duyệt")
    mine = page.get_by_role("region").filter(has_text="demo-finance").first
    expect(mine).to_contain_text("Đây là yêu cầu của bạn")
    expect(mine.get_by_role("button", name="Phê duyệt", exact=True)).to_have_count(0)
    expect(page.get_by_role("button", name="Phê duyệt", exact=True)).to_have_count(0)
    page.context.clear_cookies()

    _log_in(page, info, "approver")
    _go(page, info, "/console/approvals")
    theirs = page.get_by_role("region").filter(has_text="demo-finance").first
    heading = theirs.get_by_role("heading").get_attribute("id")
    theirs.get_by_label("Lý do phê duyệt (không bắt buộc)").fill("Đã đối chiếu sao kê.")
    theirs.get_by_role("button", name="Phê duyệt", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Đã ghi nhận quyết định.")
    expect(page.locator(f"#{heading}")).to_have_count(0)  # no longer pending
    # The decision is recorded; what the dispute's workflow then does with
    # it is not this journey's: "approved" while it waits for the bank,
    # "executed", or "failed" once sgbank answers that it has no record of
    # the seed's made-up debit. Statuses only move forward, so looking in
    # this order cannot miss it (it may be seen twice, mid-move).
    found = []
    for status in ("approved", "executed", "failed"):
        page.get_by_label("Trạng thái").select_option(status)
        with page.expect_navigation():  # read the new page, not the old one
            page.get_by_role("button", name="Lọc").click()
        expect(page).to_have_url(re.compile(f"status={status}"))
        region = page.get_by_role("region").filter(has=page.locator(f"#{heading}"))
        found += [region.inner_text()] if region.count() else []
    assert found, "the approved request is in no decided state"
    assert all("— demo-approver" in text for text in found), found

    _go(page, info, f"/console/closing?day={_seed_day()}")
    total = page.locator("table tfoot tr")
    expect(total.get_by_role("rowheader")).to_have_text("Tổng cộng")
    collected = total.locator("td").first.inner_text()
    assert re.fullmatch(r"[1-9]\d{0,2}(\.\d{3})* đ", collected), collected  # the seed paid
    href = page.get_by_role("link", name="Tải CSV").get_attribute("href") or ""
    answer = page.request.get(urllib.parse.urljoin(page.url, href))
    assert answer.status == 200
    assert answer.headers["content-type"].startswith("text/csv")
    assert "sgbank" in answer.text()
    chart = page.get_by_role("img", name=re.compile("Đã thu và đã hoàn theo ngày"))
    expect(chart).to_have_count(1)  # the 14 days' chart, named for screen readers


def test_operator_watches_links_and_doubts_and_admin_lists_users(
    page: Page, dev_stack: dict[str, Any]
) -> None:
    """Order-independent: the seed story's journey may have brought sgbank
    back already. What holds either way: sgbank is on the board up or down
    with at least the seed's outage in its 7 days, and the in-doubt queue
    lists the seed's payment or says none is in doubt."""
    info = dev_stack
    _log_in(page, info, "operator")
    _go(page, info, "/console/operator/links")
    expect(page.get_by_role("heading", level=1)).to_have_text("Tình trạng kết nối ngân hàng")
    sgbank = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name="sgbank"))
    expect(sgbank.first).to_contain_text(re.compile("Hoạt động|Mất kết nối"))
    outages = sgbank.first.locator("td").nth(4).inner_text()
    assert int(outages) >= 1, outages  # the seed's outage, open or over
    expect(page.get_by_role("img", name=re.compile("Các lần mất kết nối"))).to_have_count(1)

    _go(page, info, "/console/operator/in-doubt")
    expect(page.get_by_role("heading", level=1)).to_have_text("Thanh toán chờ xác minh")
    page.get_by_label("Lọc theo ngân hàng").select_option("sgbank")
    page.get_by_role("button", name="Lọc").click()
    listed = page.get_by_role("rowheader").filter(has_text=STORY_DECISION)
    empty = page.get_by_text("Không có thanh toán nào đang chờ xác minh.")
    expect(listed.or_(empty)).to_have_count(1)
    if listed.count():
        recheck = f"Kiểm tra lại ngay thanh toán {STORY_DECISION}"
        expect(page.get_by_role("button", name=recheck)).to_have_count(1)

    _go(page, info, "/console/operator/alerts")
    expect(page.get_by_role("heading", level=1)).to_have_text("Cảnh báo đang kích hoạt")
    page.context.clear_cookies()

    _log_in(page, info, "admin")
    _go(page, info, "/console/admin/users")
    expect(page.get_by_role("heading", level=1)).to_have_text("Người dùng và mã truy cập")
    for role in ("officer", "finance", "approver", "operator", "admin"):
        expect(page.get_by_role("rowheader", name=f"demo-{role}", exact=True)).to_have_count(1)
    expect(page.get_by_label("Tên đăng nhập")).to_be_visible()  # the create form
