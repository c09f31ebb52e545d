"""The console on the real app and a test database: log in through the
login form as a browser does (its CSRF token and cookies), then use the
pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.support.api import api_client

Console = TestClient[Any, Any]
PASSWORD = "correct horse battery"
LINK_SECRET = "citizen-link-secret-for-console-tests-0123"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def console_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
async def console(
    engine: AsyncEngine, db_url: str, console_overrides: dict[str, Any]
) -> AsyncIterator[Console]:
    async with api_client(
        engine, db_url, receipt_link_key=SecretStr(LINK_SECRET), **console_overrides
    ) as client:
        yield client


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


async def submit_login(console: Console, username: str, password: str) -> ClientResponse:
    """The login form filled in and sent, as a browser does."""
    form = await console.get("/console/login")
    token = csrf_of(await form.text())
    return await console.post(
        "/console/login",
        data={"csrf": token, "username": username, "password": password},
        allow_redirects=False,
    )


async def log_in(console: Console, username: str, password: str = PASSWORD) -> str:
    """Logged in; returns the CSRF token of the pages' forms."""
    resp = await submit_login(console, username, password)
    assert resp.status == 303, await resp.text()
    counter = await console.get("/console/counter")
    assert counter.status == 200, await counter.text()
    return csrf_of(await counter.text())
