"""Reading the database in a test: a query's rows, or its one value."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncEngine


async def rows(engine: AsyncEngine, sql: str, **params: Any) -> Sequence[Row[Any]]:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).all()


async def value(engine: AsyncEngine, sql: str, **params: Any) -> Any:
    """The one value of a query that returns one row of one column."""
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar_one()
