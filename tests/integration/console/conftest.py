"""The console on the real app and a test database: log in through the
login form as a browser does (its CSRF token and cookies), then use the
pages."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.receipts.issue import Receipt
from ledger.receipts.signing import ReceiptSigner
from tests.support.api import api_client
from tests.support.ledger import make_fine
from tests.support.receipts import UNIT, add_payment, issue

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


AMOUNT = 800_000  # tests.support.ledger.make_fine's


async def fine_with(
    engine: AsyncEngine, number: str, status: str | None, *, unit: str = UNIT
) -> str:
    """A fine (``tests.support.ledger.make_fine``: plate 29A-123.45) of
    ``unit`` and, unless None, a payment of ``status`` at bank ``vcb``;
    returns the payment's id ('' without one)."""
    fine = await make_fine(engine, number, AMOUNT, unit)
    if status is None:
        return ""
    async with engine.begin() as conn:
        payment_id = await add_payment(
            conn, fine.id, status=status, settles=status == "succeeded", amount_vnd=AMOUNT
        )
    return str(payment_id)


async def receipted(engine: AsyncEngine, number: str, *, unit: str = UNIT) -> Receipt:
    """A fine paid, with its receipt."""
    payment_id = await fine_with(engine, number, "succeeded", unit=unit)
    return await issue(engine, UUID(payment_id), ReceiptSigner.generate())
