"""The console on ``reconciler dev`` as a person opens it: ``console_url``
from dev.json leads to the login page, a demo officer logs in with the
password dev.json gives, finds a demo fine at the counter and logs out.
On the shared seeded stack (``tests/e2e/conftest.py``), which is stopped,
and checked for orphans, after the session."""

from __future__ import annotations

import http.cookiejar
import re
import urllib.parse
import urllib.request
from typing import Any

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _csrf(page: str) -> str:
    found = _CSRF.search(page)
    assert found, page[:500]
    return found.group(1)


def test_a_demo_officer_logs_in_and_finds_a_fine(dev_stack: dict[str, Any]) -> None:
    info = dev_stack
    browser = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with browser.open(info["console_url"], timeout=10) as resp:  # to the login page
        assert resp.status == 200
        assert resp.url.endswith("/console/login")
        login_page = resp.read().decode()
    officer = next(u for u in info["users"] if u["role"] == "officer")
    form = urllib.parse.urlencode(
        {
            "csrf": _csrf(login_page),
            "username": officer["username"],
            "password": officer["password"],
        }
    ).encode()
    with browser.open(info["api_url"] + "/console/login", data=form, timeout=10) as resp:
        assert resp.url.endswith("/console/counter")
        counter = resp.read().decode()
    assert officer["username"] in counter
    query = urllib.parse.quote("01234/qd-xphc")
    with browser.open(f"{info['api_url']}/console/counter?q={query}", timeout=10) as resp:
        page = resp.read().decode()
    assert "Chưa nộp" in page
    assert "800.000 đ" in page
    logout = urllib.parse.urlencode({"csrf": _csrf(page)}).encode()
    with browser.open(info["api_url"] + "/console/logout", data=logout, timeout=10) as resp:
        assert resp.url.endswith("/console/login")
