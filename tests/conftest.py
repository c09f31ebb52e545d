"""Session-wide real infrastructure: one embedded PostgreSQL and one Temporal
dev server per test session, started lazily by the tests that need them.

Isolation: every database test gets its own database cloned from a migrated
template (``CREATE DATABASE ... TEMPLATE``, a few ms); every Temporal test gets
its own task queue.

Roles: the migrations run as the superuser (the owner), and ``db_url`` and
``engine`` connect as the app's role (DML only, revision 0011), as the service
does: the whole suite runs the app without DDL or trigger rights. A test that
plays an intruder with the owner's rights asks for ``owner_db_url`` or
``owner_engine``.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ledger.migrations import DEFAULT_APP_ROLE
from reconciler.devstack.postgres import EmbeddedPostgres, PostgresInfo
from reconciler.devstack.temporal import TemporalDevServer, TemporalInfo

TEMPLATE_DB = "reconciler_template"
_OWN_BASETEMP = "_reconciler_own_basetemp"


def pytest_configure(config: pytest.Config) -> None:
    """Give each session its own temporary root: pytest prunes older
    ``pytest-N`` directories at start, which would pull the data directory
    from under a PostgreSQL of another session running at the same time."""
    if not config.option.basetemp:
        config.option.basetemp = tempfile.mkdtemp(prefix="reconciler-pytest-")
        setattr(config, _OWN_BASETEMP, config.option.basetemp)


def pytest_unconfigure(config: pytest.Config) -> None:
    own = getattr(config, _OWN_BASETEMP, None)
    if own:
        shutil.rmtree(own, ignore_errors=True)


_db_counter = itertools.count()


@pytest.fixture(scope="session")
def infra_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("infra")


@pytest.fixture(scope="session")
def pg_server(infra_dir: Path) -> Iterator[PostgresInfo]:
    server = EmbeddedPostgres(
        infra_dir / "pgdata", infra_dir / "postgres.log", database="postgres", durable=False
    )
    info = server.start()
    try:
        yield info
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_template(pg_server: PostgresInfo) -> str:
    """A database migrated to head, cloned by every test that needs one."""
    from ledger.migrations import upgrade_to_head

    with psycopg.connect(pg_server.libpq_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}"')
        conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    upgrade_to_head(pg_server.url(TEMPLATE_DB))
    return TEMPLATE_DB


def _create_db_from_template(pg_server: PostgresInfo, template: str) -> str:
    name = f"t_{os.getpid()}_{next(_db_counter)}"
    with psycopg.connect(pg_server.libpq_url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


def _drop_db(pg_server: PostgresInfo, name: str) -> None:
    with psycopg.connect(pg_server.libpq_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def test_db(pg_server: PostgresInfo, pg_template: str) -> Iterator[str]:
    """The name of a fresh, migrated database, dropped after the test."""
    name = _create_db_from_template(pg_server, pg_template)
    try:
        yield name
    finally:
        _drop_db(pg_server, name)


@pytest.fixture
def db_url(pg_server: PostgresInfo, test_db: str) -> str:
    """SQLAlchemy URL (psycopg driver) of a fresh, migrated database, as the
    app's role."""
    return pg_server.as_user(DEFAULT_APP_ROLE).url(test_db)


@pytest.fixture
def owner_db_url(pg_server: PostgresInfo, test_db: str) -> str:
    """The same database as ``db_url``, as its owner (DDL, triggers)."""
    return pg_server.url(test_db)


@contextlib.asynccontextmanager
async def _engine(url: str, pool_size: int) -> AsyncIterator[AsyncEngine]:
    eng = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size)
    try:
        yield eng
    finally:
        await eng.dispose()


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    async with _engine(db_url, 5) as eng:
        yield eng


@pytest.fixture
async def owner_engine(owner_db_url: str) -> AsyncIterator[AsyncEngine]:
    async with _engine(owner_db_url, 2) as eng:
        yield eng


@pytest.fixture(scope="session")
def temporal_server(infra_dir: Path) -> Iterator[TemporalInfo]:
    server = TemporalDevServer(None, infra_dir / "temporal.log")
    info = server.start()
    try:
        yield info
    finally:
        server.stop()


@pytest.fixture
def task_queue() -> str:
    return f"tq-{uuid.uuid4().hex[:12]}"


INFRA_FIXTURES = frozenset(
    {
        "pg_server",
        "pg_template",
        "test_db",
        "db_url",
        "owner_db_url",
        "engine",
        "owner_engine",
        "temporal_server",
    }
)
_TIER_DIRS = {"integration": "integration", "e2e": "integration"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tiers by folder: everything under ``tests/integration`` and
    ``tests/e2e`` carries the ``integration`` marker (``-m "not integration"``
    is the fast unit tier), and a test elsewhere that asks for the real
    PostgreSQL or Temporal is a mistake, refused at collection."""
    tests_dir = Path(__file__).resolve().parent
    for item in items:
        parts = item.path.resolve().relative_to(tests_dir).parts
        if parts and parts[0] in _TIER_DIRS:
            item.add_marker(pytest.mark.integration)
            if parts[0] == "e2e":
                item.add_marker(pytest.mark.e2e)
            continue
        used = INFRA_FIXTURES & set(getattr(item, "fixturenames", ()))
        if used:
            raise pytest.UsageError(
                f"{item.nodeid} uses {sorted(used)}: move it under tests/integration/"
            )
