"""The console's pure parts: both languages hold every text, đồng and
Vietnam time formats, forms parsed strictly, pages escaped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from reconciler.console.render import format_dong, format_time, language, render
from reconciler.console.texts import EN, VI


def test_both_languages_hold_every_text() -> None:
    assert set(VI) == set(EN)
    assert all(text.strip() for text in [*VI.values(), *EN.values()])


@pytest.mark.parametrize(
    ("amount", "shown"),
    [(0, "0 đ"), (1_000, "1.000 đ"), (1_234_000, "1.234.000 đ"), (90_000_000, "90.000.000 đ")],
)
def test_dong(amount: int, shown: str) -> None:
    assert format_dong(amount) == shown


def test_times_are_vietnam_time() -> None:
    at = datetime(2025, 12, 31, 17, 5, tzinfo=UTC)  # 00:05 on 1 January in Hanoi
    assert format_time(at, "vi") == "00:05 ngày 01/01/2026 (giờ Việt Nam)"
    assert format_time(at, "en") == "00:05 on 01/01/2026 (Vietnam time)"


@pytest.mark.parametrize(
    ("url", "cookie", "lang"),
    [
        ("/status", "", "vi"),
        ("/status?lang=en", "", "en"),
        ("/status", "en", "en"),
        ("/status?lang=vi", "en", "vi"),
        ("/status?lang=xx", "", "vi"),
    ],
)
def test_language(url: str, cookie: str, lang: str) -> None:
    headers = {"Cookie": f"lang={cookie}"} if cookie else {}
    assert language(make_mocked_request("GET", url, headers=headers)) == lang


def _status_page(url: str, decision: str = "", plate: str = "") -> web.Response:
    """The status page's empty form, as the citizen's page renders it."""
    return render(
        make_mocked_request("GET", url),
        "status.jinja",
        decision=decision,
        plate=plate,
        error=None,
        explanation=None,
        view=None,
        link=None,
        principal=None,
    )


def test_what_a_page_shows_is_escaped() -> None:
    response = _status_page("/status", '"><script>alert(1)</script>', "<b>")
    assert response.text is not None
    assert "<script>" not in response.text
    assert "&lt;script&gt;" in response.text
    assert "<b>" not in response.text
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_the_language_switch_keeps_the_search() -> None:
    page = _status_page("/status?decision=01234%2FQ%C4%90&plate=29A&lang=vi").text
    assert page is not None
    assert 'href="/status?decision=01234%2FQ%C4%90&amp;plate=29A&amp;lang=en"' in page
