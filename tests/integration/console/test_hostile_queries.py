"""What a logged-in person or a stranger may type into the console's
search boxes: the sweep's hostile texts (NUL, lone surrogates, bidi
overrides, 5,000 digits, markup, SQL) as the counter's decision number and
as the status page's decision number and plate. Never a 5xx, never the
text back unescaped, nothing changed."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.console.conftest import PASSWORD, Console, fine_with, log_in
from tests.integration.edge.test_hostile_sweep import HOSTILE_TEXT
from tests.support.api import make_user
from tests.support.db import value


def _q(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


@pytest.mark.parametrize(
    "console_overrides", [{"public_rate_per_minute": 100_000, "public_rate_burst": 10_000}]
)
async def test_hostile_searches(console: Console, engine: AsyncEngine) -> None:
    await make_user(engine, "lan.tran", "officer", PASSWORD)
    await log_in(console, "lan.tran")
    await fine_with(engine, "01234/QĐ-XPHC", "verifying")
    payments = await value(engine, "SELECT count(*) FROM payments")
    for text in HOSTILE_TEXT:
        for path in (
            f"/console/counter?q={_q(text)}",
            f"/status?decision={_q(text)}&plate={_q(text)}",
            f"/status?decision=01234%2FQĐ-XPHC&plate={_q(text)}",
        ):
            resp = await console.get(path)
            body = await resp.text()
            assert resp.status in (200, 400, 404), (path, resp.status, body[:300])
            assert "<script>alert(1)</script>" not in body, path
    assert await value(engine, "SELECT count(*) FROM payments") == payments
