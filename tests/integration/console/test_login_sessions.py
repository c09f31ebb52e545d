"""Logging in to the console as a browser does: the session cookie and
what it carries, the JSON login's generic failure and throttle, idle and
absolute expiry, logout, and CSRF on every form (a POST without the
right token is refused with 403 and changes nothing)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.access import hash_token
from tests.integration.console.conftest import (
    PASSWORD,
    Console,
    csrf_of,
    log_in,
    submit_login,
)
from tests.support.api import make_user
from tests.support.db import rows, value

GENERIC_FAILURE = "Sai tên đăng nhập hoặc mật khẩu."


async def _session_rows(engine: AsyncEngine) -> list[Any]:
    return list(await rows(engine, "SELECT id_hash, revoked_at FROM sessions ORDER BY id"))


async def test_not_logged_in_goes_to_the_login_page(console: Console) -> None:
    for path in ("/console/", "/console", "/console/counter", "/console/receipts/AA-1/1.pdf"):
        resp = await console.get(path, allow_redirects=False)
        assert (resp.status, resp.headers["Location"]) == (303, "/console/login"), path
    page = await console.get("/console/login")
    assert page.status == 200
    body = await page.text()
    assert "Đăng nhập cán bộ" in body
    assert 'lang="vi"' in body


async def test_a_good_login_opens_a_session_with_a_safe_cookie(
    console: Console, engine: AsyncEngine
) -> None:
    await make_user(engine, "lan.tran", "officer", PASSWORD)
    resp = await submit_login(console, " Lan.Tran ", PASSWORD)
    assert (resp.status, resp.headers["Location"]) == (303, "/console/counter")
    cookie = resp.cookies["rs_console"]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert cookie["path"] == "/console/"
    assert not cookie["secure"]  # plain HTTP here; over HTTPS it is Secure
    # Only the digest of the cookie's id is stored.
    (row,) = await _session_rows(engine)
    assert row.id_hash == hash_token(cookie.value)
    assert row.revoked_at is None
    counter = await console.get("/console/counter")
    assert counter.status == 200
    assert "lan.tran" in await counter.text()
    home = await console.get("/console/", allow_redirects=False)
    assert home.headers["Location"] == "/console/counter"


async def test_wrong_password_and_unknown_user_answer_alike(
    console: Console, engine: AsyncEngine
) -> None:
    await make_user(engine, "lan.tran", "officer", PASSWORD)
    answers = []
    for username, password in (("lan.tran", "wrong password!"), ("nobody.here", PASSWORD)):
        resp = await submit_login(console, username, password)
        body = await resp.text()
        answers.append((resp.status, body.replace(csrf_of(body), "")))
        assert "rs_console" not in resp.cookies
    assert answers[0] == answers[1]
    assert answers[0][0] == 401
    assert GENERIC_FAILURE in answers[0][1]
    assert await _session_rows(engine) == []


@pytest.mark.parametrize("console_overrides", [{"login_failures_per_username": 2}])
async def test_guessing_is_throttled_like_the_json_login(
    console: Console, engine: AsyncEngine
) -> None:
    await make_user(engine, "lan.tran", "officer", PASSWORD)
    for _ in range(2):
        assert (await submit_login(console, "lan.tran", "guess guess")).status == 401
    # Throttled: even the right password is not checked now.
    resp = await submit_login(console, "lan.tran", PASSWORD)
    assert resp.status == 429
    assert int(resp.headers["Retry-After"]) >= 1
    assert "rs_console" not in resp.cookies
    # The JSON login shares the same throttle.
    api = await console.post(
        "/api/v1/auth/login", json={"username": "lan.tran", "password": PASSWORD}
    )
    assert api.status == 429
    assert await _session_rows(engine) == []


@pytest.mark.parametrize(
    "expire",
    [
        # idle: last used 31 minutes ago (the idle timeout is 30)
        "created_at = created_at - interval '31 minutes',"
        " last_seen_at = last_seen_at - interval '31 minutes'",
        # absolute: opened 12 hours ago, used a minute ago
        "created_at = created_at - interval '12 hours',"
        " last_seen_at = now() - interval '1 minute', expires_at = now() - interval '1 second'",
    ],
)
async def test_an_expired_session_goes_back_to_the_login(
    console: Console, engine: AsyncEngine, expire: str
) -> None:
    await make_user(engine, "lan.tran", "officer", PASSWORD)
    await log_in(console, "lan.tran")
    async with engine.begin() as conn:
        await conn.execute(text(f"UPDATE sessions SET {expire}"))
    resp = await console.get("/console/counter", allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (303, "/console/login")


async def test_logout_ends_the_session(console: Console, engine: AsyncEngine) -> None:
    await make_user(engine, "lan.tran", "officer", PASSWORD)
    csrf = await log_in(console, "lan.tran")
    cookie = console.session.cookie_jar.filter_cookies(console.make_url("/console/"))
    stolen = cookie["rs_console"].value
    resp = await console.post("/console/logout", data={"csrf": csrf}, allow_redirects=False)
    assert (resp.status, resp.headers["Location"]) == (303, "/console/login")
    (row,) = await _session_rows(engine)
    assert row.revoked_at is not None
    # A copy of the cookie kept from before opens nothing.
    replay = await console.get(
        "/console/counter", cookies={"rs_console": stolen}, allow_redirects=False
    )
    assert (replay.status, replay.headers["Location"]) == (303, "/console/login")
    audited = await value(engine, "SELECT count(*) FROM audit_log WHERE action = 'session.revoked'")
    assert audited == 1


@pytest.mark.parametrize("csrf", [None, "", "wrong-token", "x" * 900])
async def test_a_form_without_its_csrf_token_changes_nothing(
    console: Console, engine: AsyncEngine, csrf: str | None
) -> None:
    await make_user(engine, "lan.tran", "officer", PASSWORD)
    await log_in(console, "lan.tran")
    data = {} if csrf is None else {"csrf": csrf}
    resp = await console.post("/console/logout", data=data, allow_redirects=False)
    assert resp.status == 403
    assert "Yêu cầu bị từ chối" in await resp.text()
    (row,) = await _session_rows(engine)
    assert row.revoked_at is None
    assert (await console.get("/console/counter")).status == 200


async def test_a_login_form_from_elsewhere_is_refused(
    console: Console, engine: AsyncEngine
) -> None:
    """Login CSRF: a page on another site posting our login form has no
    login cookie to match its token; nothing is checked or opened."""
    await make_user(engine, "lan.tran", "officer", PASSWORD)
    for data in (
        {"username": "lan.tran", "password": PASSWORD},
        {"username": "lan.tran", "password": PASSWORD, "csrf": "made-up"},
    ):
        resp = await console.post("/console/login", data=data, allow_redirects=False)
        assert resp.status == 403, await resp.text()
    last_login = await value(engine, "SELECT last_login_at FROM users WHERE username = 'lan.tran'")
    assert last_login is None
    assert await _session_rows(engine) == []


async def test_english_on_request_and_remembered(console: Console) -> None:
    page = await console.get("/console/login?lang=en")
    assert "Staff login" in await page.text()
    assert page.cookies["lang"].value == "en"
    again = await console.get("/console/login")
    assert 'lang="en"' in await again.text()
    back = await console.get("/console/login?lang=vi")
    assert "Đăng nhập cán bộ" in await back.text()


@pytest.mark.parametrize("console_overrides", [{"login_lock_failures": 2}])
async def test_a_locked_account_says_until_when(console: Console, engine: AsyncEngine) -> None:
    await make_user(engine, "lan.tran", "officer", PASSWORD)
    for _ in range(2):
        await submit_login(console, "lan.tran", "guess guess")
    resp = await submit_login(console, "lan.tran", PASSWORD)
    assert resp.status == 423
    page = await resp.text()
    assert "Tài khoản bị khóa do đăng nhập sai quá nhiều lần, đến " in page
    assert "(giờ Việt Nam)" in page
    assert await _session_rows(engine) == []


@pytest.mark.parametrize("console_overrides", [{"public_base_url": "https://csgt.example.vn"}])
async def test_cookies_are_secure_behind_an_https_address(
    console: Console, engine: AsyncEngine
) -> None:
    """TLS ends at the reverse proxy; the public address says HTTPS."""
    await make_user(engine, "lan.tran", "officer", PASSWORD)
    form = await console.get("/console/login")
    login_cookie = form.cookies["rs_console_login"]
    assert login_cookie["secure"]
    # The test client speaks plain HTTP, so it would keep a Secure cookie to itself.
    resp = await console.post(
        "/console/login",
        data={"csrf": csrf_of(await form.text()), "username": "lan.tran", "password": PASSWORD},
        cookies={"rs_console_login": login_cookie.value},
        allow_redirects=False,
    )
    assert resp.status == 303
    assert resp.cookies["rs_console"]["secure"]
