"""The admin's users-and-tokens page on the real app and database: create,
disable/enable, reset, revoke, as the JSON API does; an admin cannot
disable themself; a non-admin gets the 403 page; no CSRF token, no change;
HTML in a name is shown as text."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.access import get_user
from tests.integration.console.conftest import Console
from tests.integration.console.sessions import staff_session
from tests.support.api import make_token
from tests.support.db import value

USERS = "/console/admin/users"


async def test_an_admin_creates_disables_resets_and_revokes(
    console: Console, engine: AsyncEngine
) -> None:
    csrf = await staff_session(console, engine, "admin")
    page = await (await console.get(USERS)).text()
    assert '<label for="new-username">' in page
    form = {
        "csrf": csrf,
        "username": "new.officer",
        "full_name": "<b>Trần</b> Thị B",
        "role": "officer",
        "units": "Đội CSGT số 1, Đội CSGT số 2",
    }
    resp = await console.post(USERS, data=form)
    text = await resp.text()
    assert resp.status == 200, text
    assert re.search(r"new\.officer \(.*\): [A-Za-z0-9_-]{16}", text)  # the password, once
    listing = await (await console.get(USERS)).text()
    assert "&lt;b&gt;Trần&lt;/b&gt; Thị B" in listing
    assert "<b>Trần" not in listing
    async with engine.connect() as conn:
        user = await get_user(conn, "new.officer")
    assert (user.role, user.units) == ("officer", ("Đội CSGT số 1", "Đội CSGT số 2"))
    # Without the CSRF token nothing changes.
    assert (await console.post(f"{USERS}/new.officer/disable", data={})).status == 403
    async with engine.connect() as conn:
        assert (await get_user(conn, "new.officer")).disabled_at is None
    assert (await console.post(f"{USERS}/new.officer/disable", data={"csrf": csrf})).status == 200
    async with engine.connect() as conn:
        assert (await get_user(conn, "new.officer")).disabled_at is not None
    assert (await console.post(f"{USERS}/new.officer/enable", data={"csrf": csrf})).status == 200
    reset = await console.post(f"{USERS}/new.officer/password", data={"csrf": csrf})
    assert "chỉ hiện một lần" in await reset.text()
    # Their token listed, then revoked.
    await make_token(engine, "officer", "new.officer")
    tokens = await (await console.get(f"{USERS}/new.officer/tokens")).text()
    found = re.search(r'action="/console/admin/tokens/(\d+)/revoke"', tokens)
    assert found, tokens
    revoked = await console.post(f"/console/admin/tokens/{found[1]}/revoke", data={"csrf": csrf})
    assert revoked.status == 200
    live = "SELECT count(*) FROM api_tokens WHERE id = :id AND revoked_at IS NULL"
    assert await value(engine, live, id=int(found[1])) == 0


async def test_an_admin_cannot_disable_themself(console: Console, engine: AsyncEngine) -> None:
    csrf = await staff_session(console, engine, "admin")
    resp = await console.post(f"{USERS}/a.admin/disable", data={"csrf": csrf})
    assert resp.status == 403
    assert "disable yourself" in await resp.text()
    async with engine.connect() as conn:
        assert (await get_user(conn, "a.admin")).disabled_at is None


async def test_a_bad_new_user_is_refused_whole(console: Console, engine: AsyncEngine) -> None:
    csrf = await staff_session(console, engine, "admin")
    before = await value(engine, "SELECT count(*) FROM users")
    for bad in (
        {"username": "x y", "role": "officer"},
        {"username": "ok.name", "role": "root"},
        {"username": "ok.name", "role": "operator", "units": "Đội 1"},  # an operator is not scoped
    ):
        resp = await console.post(USERS, data={"csrf": csrf, **bad})
        assert resp.status == 400, bad
    assert await value(engine, "SELECT count(*) FROM users") == before


async def test_an_operator_gets_the_403_page(console: Console, engine: AsyncEngine) -> None:
    csrf = await staff_session(console, engine, "operator")
    resp = await console.get(USERS)
    assert resp.status == 403
    assert "a.operator" not in await resp.text()
    created = await console.post(USERS, data={"csrf": csrf, "username": "x1", "role": "admin"})
    assert created.status == 403
    assert await value(engine, "SELECT count(*) FROM users WHERE username = 'x1'") == 0
