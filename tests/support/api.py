"""Helpers to run the real API app against a test database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.access import create_token
from reconciler.api.app import create_app
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
    values: dict[str, object] = {"env": "dev", "database_url": db_url, **overrides}
    settings = Settings(**values)  # type: ignore[arg-type]
    app = create_app(settings, engine=engine)
    async with TestClient(TestServer(app)) as client:
        yield client
