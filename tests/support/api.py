"""Helpers to run the real API app against a test database."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledger.access import (
    Owner,
    PasswordChecker,
    TokenKind,
    create_user,
    ensure_service_account,
    issue_token,
    user_owner,
)
from ledger.core.errors import NotFoundError
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


# Not an argon2 hash: a user made by ``make_token`` holds a token but cannot log in.
NO_PASSWORD = "!no-login"


async def make_token(
    engine: AsyncEngine, role: str, name: str | None = None, *, units: tuple[str, ...] = ()
) -> str:
    """An API token of the person ``name`` (default ``test-<role>``) with
    ``role``, the user made if new; ``portal``: of the service account
    ``name``. Two calls with one name are one person with two tokens."""
    owner_name = name or f"test-{role}"
    if role == "portal":
        return await make_service_token(engine, owner_name, role)
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        try:
            owner = await user_owner(conn, owner_name)
        except NotFoundError:
            await create_user(
                conn,
                username=owner_name,
                password_hash=NO_PASSWORD,
                role=role,
                actor="test:setup",
                now=now,
                units=list(units),
            )
            owner = await user_owner(conn, owner_name)
        assert owner.role == role, f"{owner_name} is already a {owner.role}"
        return await _day_token(conn, owner, owner_name, now)


async def _day_token(conn: AsyncConnection, owner: Owner, created_by: str, now: datetime) -> str:
    token, _ = await issue_token(
        conn,
        owner,
        kind=TokenKind.API,
        name=f"{owner.name}-token",
        lifetime=timedelta(days=1),
        created_by=created_by,
        now=now,
    )
    return token


async def make_service_token(engine: AsyncEngine, name: str, role: str) -> str:
    """An API token of the service account ``name`` (made if new) with ``role``."""
    now = datetime.now(UTC)
    async with engine.begin() as conn:
        owner = await ensure_service_account(conn, name, role, "test:setup", now)
        return await _day_token(conn, owner, "test:setup", now)


async def make_user(
    engine: AsyncEngine,
    username: str,
    role: str,
    password: str,
    *,
    units: tuple[str, ...] = (),
    actor: str | None = None,
) -> None:
    """A user who logs in with ``password`` (set by ``actor``: themself by default)."""
    password_hash = await PasswordChecker(1).hash(password)
    async with engine.begin() as conn:
        await create_user(
            conn,
            username=username,
            password_hash=password_hash,
            role=role,
            actor=actor or username,
            now=datetime.now(UTC),
            units=list(units),
        )


@asynccontextmanager
async def api_client(
    engine: AsyncEngine, db_url: str, **overrides: object
) -> AsyncIterator[TestClient[object, object]]:
    values: dict[str, object] = {"env": "dev", "database_url": db_url, **overrides}
    settings = Settings(**values)  # type: ignore[arg-type]
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
    values: dict[str, object] = {"env": "dev", "database_url": db_url, **overrides}
    settings = Settings(**values)  # type: ignore[arg-type]
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
