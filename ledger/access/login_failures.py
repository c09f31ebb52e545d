"""Failed logins of every API process, in PostgreSQL (``login_failures``,
migration 0018).

Each API process throttles failed logins in memory first
(``reconciler.api.login_throttle``); with several processes a guesser who
spreads their attempts over them would get that many times the attempts.
These rows count the failures of all of them within the window, by client
address and by username. A key is stored as its SHA-256, never in clear,
and every row is deleted once it has left the window (each failure deletes
up to ``PURGE_BATCH`` expired rows, so the table holds about one window of
failures).

The wait has the in-memory throttle's meaning: with ``limit`` failures of a
key within the window, the key waits until the oldest of them leaves it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

Kind = Literal["address", "username"]
PURGE_BATCH: Final = 1000

_LIMITTH_RECENT: Final = text(
    """
    SELECT at FROM login_failures
     WHERE kind = :kind AND key_hash = :key_hash AND at > :since
     ORDER BY at DESC OFFSET :skip LIMIT 1
    """
)
_INSERT: Final = text(
    "INSERT INTO login_failures (kind, key_hash, at) VALUES (:kind, :key_hash, :at)"
)
_PURGE: Final = text(
    """
    DELETE FROM login_failures WHERE id IN (
        SELECT id FROM login_failures WHERE at <= :before LIMIT :batch
    )
    """
)
_FORGET: Final = text("DELETE FROM login_failures WHERE kind = :kind AND key_hash = :key_hash")


@dataclass(frozen=True)
class FailureKey:
    kind: Kind
    key: str
    limit: int

    @property
    def digest(self) -> bytes:
        return key_hash(self.key)


def key_hash(key: str) -> bytes:
    # surrogateescape: a name or address that is not valid UTF-8 still hashes.
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).digest()


async def wait_seconds(
    engine: AsyncEngine, keys: Sequence[FailureKey], window: timedelta, now: datetime
) -> float | None:
    """Seconds until every key may try again, or None if all may now."""
    waits: list[float] = []
    async with engine.connect() as conn:
        for key in keys:
            params = {
                "kind": key.kind,
                "key_hash": key.digest,
                "since": now - window,
                "skip": key.limit - 1,
            }
            oldest = (await conn.execute(_LIMITTH_RECENT, params)).scalar_one_or_none()
            if oldest is not None:
                waits.append((oldest + window - now).total_seconds())
    return max(waits) if waits else None


async def note_failure(
    engine: AsyncEngine, keys: Sequence[FailureKey], window: timedelta, now: datetime
) -> None:
    """Count one failure against each key; drop what has left the window."""
    rows = [{"kind": key.kind, "key_hash": key.digest, "at": now} for key in keys]
    async with engine.begin() as conn:
        await conn.execute(_INSERT, rows)
        await conn.execute(_PURGE, {"before": now - window, "batch": PURGE_BATCH})


async def forget(engine: AsyncEngine, kind: Kind, key: str) -> None:
    """Forget a key's failures (a username that has just logged in)."""
    async with engine.begin() as conn:
        await conn.execute(_FORGET, {"kind": kind, "key_hash": key_hash(key)})
