"""The database engine, created once in the composition root."""

from __future__ import annotations

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
