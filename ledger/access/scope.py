"""Unit scope: which issuing unit a record belongs to, for callers whose
view is narrowed to some units (``Principal.units``)."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t

FINE_IDS_MAX = 10_000


async def fine_units(conn: AsyncConnection, fine_ids: Collection[int]) -> dict[int, str]:
    """The issuing unit of each fine (a page's worth: at most ``FINE_IDS_MAX``)."""
    assert len(fine_ids) <= FINE_IDS_MAX, len(fine_ids)
    if not fine_ids:
        return {}
    rows = await conn.execute(
        select(t.fines.c.id, t.fines.c.issuing_unit).where(t.fines.c.id.in_(list(fine_ids)))
    )
    return {row.id: row.issuing_unit for row in rows}
