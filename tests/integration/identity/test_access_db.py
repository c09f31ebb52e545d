"""The identity tables against the real PostgreSQL: console sessions and
their timeouts, what the database itself refuses, and the migration of
tokens made before people had identities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ledger.access import TokenKind, issue_token, lookup_token, set_disabled, set_password
from ledger.access.sessions import (
    TOUCH_RESOLUTION,
    create_session,
    csrf_token_matches,
    revoke_session,
    session_principal,
    touch_session,
)
from ledger.access.tokens import Owner
from ledger.migrations import alembic_config
from reconciler.devstack.postgres import PostgresInfo
from tests.support.api import make_user
from tests.support.db import rows, value

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


async def _user_id(engine: AsyncEngine, username: str) -> int:
    return int(await value(engine, "SELECT id FROM users WHERE username = :u", u=username))


async def _portal(engine: AsyncEngine) -> int:
    """A service account ``portal``: its id."""
    async with engine.begin() as conn:
        return int(
            (
                await conn.execute(
                    text(
                        "INSERT INTO service_accounts (name, role, created_by)"
                        " VALUES ('portal', 'portal', 'test') RETURNING id"
                    )
                )
            ).scalar_one()
        )


async def test_a_session_lives_until_idle_or_absolute_timeout(engine: AsyncEngine) -> None:
    await make_user(engine, "anh", "finance", "a long password")
    user_id = await _user_id(engine, "anh")
    async with engine.begin() as conn:
        raw, session = await create_session(
            conn,
            user_id,
            "anh",
            NOW,
            lifetime=timedelta(hours=2),
            idle_timeout=timedelta(minutes=30),
        )
    assert raw.startswith("rs_")
    assert await value(engine, "SELECT count(*) FROM sessions WHERE id_hash = :r", r=raw) == 0
    async with engine.begin() as conn:
        found = await session_principal(conn, raw, NOW + timedelta(minutes=29))
        assert found is not None
        principal, session = found
        assert (principal.actor, principal.credential) == ("anh", "console")
        assert await session_principal(conn, raw, NOW + timedelta(minutes=30)) is None  # idle
        # Touched within the resolution: no write; after it: the idle end moves.
        assert await touch_session(conn, session, NOW + TOUCH_RESOLUTION / 2) is session
        session = await touch_session(conn, session, NOW + timedelta(minutes=29))
        assert await session_principal(conn, raw, NOW + timedelta(minutes=58)) is not None
        # The absolute end holds however busy the session is.
        for minutes in range(50, 120, 20):
            session = await touch_session(conn, session, NOW + timedelta(minutes=minutes))
        assert await session_principal(conn, raw, NOW + timedelta(minutes=119)) is not None
        assert await session_principal(conn, raw, NOW + timedelta(hours=2)) is None
        assert await session_principal(conn, raw[:-1] + "x", NOW) is None
        assert await session_principal(conn, "rk_" + raw[3:], NOW) is None
    assert csrf_token_matches(session, session.csrf_secret)
    assert not csrf_token_matches(session, session.csrf_secret[:-1])
    assert not csrf_token_matches(session, "")


async def test_logout_disable_and_password_change_end_sessions(engine: AsyncEngine) -> None:
    await make_user(engine, "bao", "officer", "a long password")
    user_id = await _user_id(engine, "bao")
    later = NOW + timedelta(minutes=1)
    async with engine.begin() as conn:
        one, first = await create_session(conn, user_id, "bao", NOW)
        two, _ = await create_session(conn, user_id, "bao", NOW)
        three, _ = await create_session(conn, user_id, "bao", NOW)
        await revoke_session(conn, first, "bao", later)
        await revoke_session(conn, first, "bao", later)  # again: nothing more
        assert await session_principal(conn, one, later) is None
        assert await session_principal(conn, two, later) is not None
        await set_disabled(conn, "bao", True, "boss", later)
        assert await session_principal(conn, three, later) is None
        await set_disabled(conn, "bao", False, "boss", later)
        assert await session_principal(conn, two, later) is None  # ended, not paused
        four, _ = await create_session(conn, user_id, "bao", later)
        await set_password(conn, "bao", "!", "boss", later)
        assert await session_principal(conn, four, later) is None
    actions = await rows(
        engine, "SELECT action FROM audit_log WHERE subject_type = 'session' ORDER BY id"
    )
    assert [r.action for r in actions] == [
        "session.created",
        "session.created",
        "session.created",
        "session.revoked",
        "session.created",
    ]


async def test_the_database_refuses_ownerless_endless_and_service_login_tokens(
    engine: AsyncEngine,
) -> None:
    await make_user(engine, "chi", "officer", "a long password")
    user_id = await _user_id(engine, "chi")
    # Each refused by its own constraint, named, not by some other error.
    bad = {
        "no owner": ("NULL, NULL, 'api', now() + interval '1 day'", "api_tokens_one_owner"),
        "two owners": (":u, :s, 'api', now() + interval '1 day'", "api_tokens_one_owner"),
        "endless": (":u, NULL, 'api', now() + interval '367 days'", "api_tokens_expiry"),
        "expired at birth": (":u, NULL, 'api', now()", "api_tokens_expiry"),
        "a service's login": (
            "NULL, :s, 'session', now() + interval '1 hour'",
            "api_tokens_service_kind",
        ),
        "unknown kind": (":u, NULL, 'forever', now() + interval '1 day'", "api_tokens_kind_check"),
    }
    service_id = await _portal(engine)
    for label, (values, constraint) in bad.items():
        with pytest.raises(IntegrityError, match=f'constraint "{constraint}"'):
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO api_tokens (name, token_hash, user_id, service_account_id,"
                        f" kind, expires_at, created_at, created_by) VALUES ('t', :h, {values},"
                        " now(), 'test')"
                    ),
                    {"h": label, "u": user_id, "s": service_id},
                )
    for role in ("approver", "admin"):
        with pytest.raises(IntegrityError, match='constraint "service_accounts_role_check"'):
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO service_accounts (name, role, created_by)"
                        " VALUES ('robot', :r, 'test')"
                    ),
                    {"r": role},
                )


async def test_a_disabled_service_accounts_tokens_stop(engine: AsyncEngine) -> None:
    service_id = await _portal(engine)
    async with engine.begin() as conn:
        token, _ = await issue_token(
            conn,
            Owner("service", service_id, "portal", "portal"),
            kind=TokenKind.API,
            name="portal",
            lifetime=timedelta(days=1),
            created_by="test",
            now=datetime.now(UTC),
        )
        found = await lookup_token(conn, token, datetime.now(UTC))
        assert found is not None
        assert (found.principal.actor, found.principal.is_person) == ("service:portal", False)
        await conn.execute(text("UPDATE service_accounts SET disabled_at = now()"))
        assert await lookup_token(conn, token, datetime.now(UTC)) is None


async def test_migration_revokes_and_adopts_tokens_made_before_identities(
    pg_server: PostgresInfo,
) -> None:
    name = "identity_migration"
    with psycopg.connect(pg_server.libpq_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_server.url(name)
    try:
        command.upgrade(alembic_config(url), "0007")
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.execute(
                    text(
                        "INSERT INTO api_tokens (name, token_hash, role, created_at) VALUES"
                        " ('old-admin', 'h1', 'admin', now() - interval '2 years'),"
                        " ('old-portal', 'h2', 'portal', now())"
                    )
                )
            command.upgrade(alembic_config(url), "head")
            found = await rows(
                engine,
                "SELECT t.revoked_at IS NOT NULL AS revoked,"
                " s.name, s.disabled_at IS NOT NULL AS disabled FROM api_tokens t"
                " JOIN service_accounts s ON s.id = t.service_account_id ORDER BY t.id",
            )
            assert [tuple(r) for r in found] == [
                (True, "legacy-tokens", True),
                (True, "legacy-tokens", True),
            ]
            command.downgrade(alembic_config(url), "0007")
            command.upgrade(alembic_config(url), "head")
        finally:
            await engine.dispose()
    finally:
        with psycopg.connect(pg_server.libpq_url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
