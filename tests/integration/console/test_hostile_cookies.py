"""Cookies nobody's browser sends: bytes that are not UTF-8 (they arrive
as lone surrogates), controls, over-long values. Each is simply not a
session, never a 5xx, and opens nothing."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.api import edge_app
from tests.support.db import value
from tests.support.raw_http import exchange, request_bytes

COOKIES = [
    b"rs_console=rs_\xff\xfe",
    b"rs_console=rs_\xc3\x28",
    b"rs_console=rs_" + b"A" * 5000,
    b"rs_console=rs_\x01x",
    b"rs_console_login=\xff; rs_console=\xff",
]
FORM = b"csrf=%FF&username=a&password=b"


@pytest.mark.parametrize("cookie", COOKIES)
async def test_a_hostile_cookie_is_no_session(
    engine: AsyncEngine, db_url: str, cookie: bytes
) -> None:
    async with edge_app(engine, db_url) as served:
        for method, path, body in (
            ("GET", b"/console/counter", b""),
            ("GET", b"/console/", b""),
            ("POST", b"/console/logout", FORM),
            ("POST", b"/console/login", FORM),
        ):
            headers = [(b"Cookie", cookie), (b"Content-Type", b"application/x-www-form-urlencoded")]
            headers.append((b"Content-Length", str(len(body)).encode()))
            wire = request_bytes(method, path, headers, body)
            answer = await asyncio.to_thread(exchange, served.port, [wire])
            assert answer is not None
            assert answer.status in (303, 400, 403), (method, path, answer.status, answer.body)
    assert await value(engine, "SELECT count(*) FROM sessions") == 0
