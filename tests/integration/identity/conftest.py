"""The real API app on a test database, without Temporal (decisions and
requests are recorded all the same), and helpers to log in and call it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciler.api.app import create_app
from reconciler.api.auth import TokenCache
from reconciler.devstack.ports import free_port
from reconciler.settings import Settings
from tests.integration.disputes.test_disputes_api import NoTemporal

Api = TestClient[Any, Any]
PASSWORD = "correct horse battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Clock:
    """The token cache's clock, moved by the test (past the TTL at will)."""

    def __init__(self) -> None:
        self.seconds = 1000.0

    def __call__(self) -> float:
        return self.seconds

    def pass_ttl(self) -> None:
        self.seconds += 3600.0


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def cache_clock() -> Clock:
    return Clock()


@pytest.fixture
def make_api(
    engine: AsyncEngine, db_url: str, cache_clock: Clock
) -> Callable[..., TestClient[Any, Any]]:
    def build(**overrides: Any) -> TestClient[Any, Any]:
        settings = Settings(
            env="dev",
            database_url=db_url,
            # A bank nobody listens on: dispute evidence says so and goes on.
            banks={"sgbank": {"protocol": "rest", "url": f"http://127.0.0.1:{free_port()}"}},  # type: ignore[dict-item]
            evidence_bank_timeout_seconds=2.0,
            **overrides,
        )
        app = create_app(
            settings,
            engine=engine,
            temporal=NoTemporal(),
            token_cache=TokenCache(clock=cache_clock),
        )
        return TestClient(TestServer(app))

    return build


@pytest.fixture
async def api(
    make_api: Callable[..., TestClient[Any, Any]], settings_overrides: dict[str, Any]
) -> AsyncIterator[Api]:
    async with make_api(**settings_overrides) as client:
        yield client


async def call(
    api: Api, method: str, path: str, token: str | None = None, **kw: Any
) -> tuple[int, Any]:
    """(status, JSON body) of a request with ``token`` as the bearer."""
    headers = bearer(token) if token else {}
    resp = await api.request(method, path, headers=headers, **kw)
    return resp.status, await resp.json()


async def login(api: Api, username: str, password: str = PASSWORD) -> str:
    status, body = await call(
        api, "POST", "/api/v1/auth/login", json={"username": username, "password": password}
    )
    assert status == 200, body
    return str(body["token"])
