"""The database engine, created once in the composition root."""

from __future__ import annotations

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from reconciler.settings import Settings


def create_engine(settings: Settings, *, pre_ping: bool = True) -> AsyncEngine:
    """``pre_ping`` tests each pooled connection before use (a round trip
    per checkout) so that a request after a database restart does not fail.
    The worker turns it off: its database work runs in activities, which
    are retried, and a dead connection is dropped with the rest of the pool
    on the first error; the ping was a seventh of its round trips."""
    return create_async_engine(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_pre_ping=pre_ping,
        pool_timeout=10,
    )


def create_read_engine(url: str | URL, *, pool_size: int) -> AsyncEngine:
    """An engine for hot single-statement reads (the API's fine lookup and
    token check), which cost round trips more than anything else.

    Autocommit: one statement reads one consistent snapshot, so BEGIN and the
    ROLLBACK on return to the pool would be two round trips for nothing. No
    pre-ping: that is a round trip per checkout; instead a read that fails on
    a dead pooled connection drops it and runs again on another
    (``reconciler.api.reads.Reader``), which only reads can afford."""
    return create_async_engine(
        url,
        pool_size=pool_size,
        # A read holds its connection for one round trip; a burst waits for
        # one briefly rather than opening more.
        max_overflow=0,
        pool_pre_ping=False,
        pool_timeout=10,
        isolation_level="AUTOCOMMIT",
    )
