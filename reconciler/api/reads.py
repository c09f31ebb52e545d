"""Hot reads for the API: one statement each, on their own engine.

The engine (``reconciler.db.create_read_engine``) runs in autocommit and
without pre-ping, so a read costs one round trip: no BEGIN, no ROLLBACK on
return to the pool, no ``SELECT 1`` per checkout. What pre-ping protected
against -- a pooled connection the database dropped (restart, failover,
idle kill) -- is handled by running the read again: a read is idempotent, and
a dropped connection fails at once, before any work is done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeVar

import psycopg
import structlog
from psycopg.pq import TransactionStatus
from psycopg.rows import namedtuple_row
from sqlalchemy.dialects.postgresql.psycopg import PGDialectAsync_psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.sql import Select

log = structlog.get_logger(__name__)

T = TypeVar("T")

# The dialect create_async_engine picks for postgresql+psycopg:// (untyped in SQLAlchemy).
_DIALECT: Final = PGDialectAsync_psycopg()  # type: ignore[no-untyped-call]


def driver_sql(statement: Select[Any]) -> str:
    """``statement`` compiled once, at import, to the text psycopg runs
    (named ``%(name)s`` parameters), so a hot read skips SQLAlchemy's
    per-execution work (cache-key lookup, execution context, result wrapping)
    while the SQL is still built from the table definitions."""
    compiled = statement.compile(dialect=_DIALECT)
    assert compiled.positiontup is None, "psycopg's dialect uses named parameters"
    return compiled.string


class Reader:
    """Runs reads on the read engine, each retried on a fresh connection when
    the pooled one turns out to be dead.

    After a database restart every pooled connection is dead; a retry drops
    the one that failed, so a read may need one attempt per pooled connection
    plus one: that is the bound (the pool holds at most ``pool_size``)."""

    def __init__(self, engine: AsyncEngine, pool_size: int) -> None:
        assert pool_size >= 1, pool_size
        self.engine = engine
        self.attempts_max = pool_size + 1

    async def run(self, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
        """``work(conn)`` through SQLAlchemy. ``work`` must only read: it may
        run more than once."""
        for attempt in range(1, self.attempts_max + 1):
            try:
                async with self.engine.connect() as conn:
                    return await work(conn)
            except DBAPIError as err:
                # SQLAlchemy has already discarded the dead connection (and
                # marked every older pooled one stale).
                if not err.connection_invalidated or attempt == self.attempts_max:
                    raise
                log.info("read.retry_after_disconnect", attempt=attempt, error=str(err.orig))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def fetch(self, sql: str, params: Mapping[str, Any]) -> list[Any]:
        """The rows (named tuples) of one read-only statement from
        ``driver_sql``, run on the psycopg connection itself. psycopg prepares
        it server-side once it has run a few times on a connection."""
        for attempt in range(1, self.attempts_max + 1):
            async with self.engine.connect() as conn:
                pooled = await conn.get_raw_connection()
                driver = pooled.driver_connection
                assert isinstance(driver, psycopg.AsyncConnection), type(driver)
                try:
                    async with driver.cursor(row_factory=namedtuple_row) as cursor:
                        await cursor.execute(sql, params)
                        return await cursor.fetchall()
                except psycopg.OperationalError as err:
                    if not driver.broken:
                        raise
                    await conn.invalidate(err)
                    if attempt == self.attempts_max:
                        raise
                    log.info("read.retry_after_disconnect", attempt=attempt, error=str(err))
                except BaseException:
                    # Cancelled mid-statement: results may still be on the
                    # wire, so the connection must not go back to the pool.
                    if driver.info.transaction_status is not TransactionStatus.IDLE:
                        await conn.invalidate()
                    raise
        raise AssertionError("unreachable: the last attempt returns or raises")
