"""What the ledger holds, in one value: every table's row count and a
digest of its rows. Two equal snapshots mean no request changed anything."""

from __future__ import annotations

from typing import Final

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_TABLES: Final = """
SELECT table_name FROM information_schema.tables
 WHERE table_schema = 'public' AND table_type = 'BASE TABLE'
   AND table_name <> 'alembic_version'
 ORDER BY table_name
"""

Snapshot = dict[str, tuple[int, str]]


def snapshot_sql(tables: list[str]) -> str:
    """One query: per table its count and the md5 of its rows' md5s, sorted."""
    return " UNION ALL ".join(
        f"SELECT '{name}', count(*), coalesce(md5(string_agg(md5(t::text), '' "
        f"ORDER BY md5(t::text))), '') FROM \"{name}\" t"
        for name in tables
    )


async def snapshot(engine: AsyncEngine) -> Snapshot:
    async with engine.connect() as conn:
        tables = list((await conn.execute(text(_TABLES))).scalars())
        rows = (await conn.execute(text(snapshot_sql(tables)))).all()
    return {name: (int(count), digest) for name, count, digest in rows}


class SyncSnapshots:
    """The same snapshot over a blocking connection (a test thread's)."""

    def __init__(self, libpq_url: str) -> None:
        self._conn = psycopg.connect(libpq_url, autocommit=True)
        tables = [row[0] for row in self._conn.execute(_TABLES)]
        self._sql = snapshot_sql(tables)

    def take(self) -> Snapshot:
        rows = self._conn.execute(self._sql).fetchall()
        return {name: (int(count), digest) for name, count, digest in rows}

    def close(self) -> None:
        self._conn.close()


def changed(before: Snapshot, after: Snapshot) -> list[str]:
    return sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )
