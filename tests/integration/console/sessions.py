"""A console session without the login form (tested in
test_login_sessions): argon2 would cost about a second a test."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.access import get_user
from ledger.access.sessions import create_session
from reconciler.console.pages import SESSION_COOKIE
from tests.integration.console.conftest import Console
from tests.support.api import make_token


async def staff_session(
    console: Console, engine: AsyncEngine, role: str, *, units: tuple[str, ...] = ()
) -> str:
    """A console session of the person ``a.<role>`` (made if new) in the
    client's cookie jar; returns the session's CSRF token."""
    username = f"a.{role}"
    await make_token(engine, role, username, units=units)
    async with engine.begin() as conn:
        user = await get_user(conn, username)
        raw, session = await create_session(conn, user.id, user.username, datetime.now(UTC))
    console.session.cookie_jar.update_cookies({SESSION_COOKIE: raw})
    return session.csrf_secret
