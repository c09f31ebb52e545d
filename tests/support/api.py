"""Helpers to run the real API app against a test database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.access import create_token
from ledger.receipts.signing import ReceiptVerifier
from reconciler.api.app import create_app
from reconciler.api.server import EdgeRunner
from reconciler.settings import Settings

# A valid fine as the portal registers it.
FINE: dict[str, Any] = {
    "decision_number": "01234/QĐ-XPHC",
    "amount_vnd": 800_000,
    "violator_name": "Nguyễn Văn A",
    "plate": "29A-123.45",
    "issuing_unit": "Phòng CSGT Hà Nội",
    "violation": "Không chấp hành hiệu lệnh của đèn tín hiệu giao thông",
}


async def make_token(engine: AsyncEngine, role: str, name: str | None = None) -> str:
    async with engine.begin() as conn:
        return await create_token(conn, name or f"test-{role}", role)


@asynccontextmanager
async def api_client(
    engine: AsyncEngine, db_url: str, **overrides: object
) -> AsyncIterator[TestClient[object, object]]:
    settings = Settings(database_url=db_url, **overrides)  # type: ignore[arg-type]
    app = create_app(settings, engine=engine)
    async with TestClient(TestServer(app)) as client:
        yield client


@dataclass(frozen=True)
class EdgeApp:
    """The app served by the production edge (``reconciler.api.server``)."""

    app: web.Application
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@asynccontextmanager
async def edge_app(
    engine: AsyncEngine,
    db_url: str,
    *,
    verifier: ReceiptVerifier | None = None,
    routes: Callable[[web.Application], None] | None = None,
    **overrides: object,
) -> AsyncIterator[EdgeApp]:
    """``create_app`` on ``EdgeRunner`` at a free port; ``routes`` may add a
    test's own routes before the app starts."""
    settings = Settings(database_url=db_url, **overrides)  # type: ignore[arg-type]
    app = create_app(settings, engine=engine, verifier=verifier)
    if routes is not None:
        routes(app)
    runner = EdgeRunner(app, idle_seconds=settings.http_idle_seconds)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield EdgeApp(app, runner.addresses[0][1])
    finally:
        await runner.cleanup()
