"""Failed logins of every API process, in PostgreSQL (``login_failures``,
migration 0018).

Each API process throttles failed logins in memory first
(``reconciler.api.login_throttle``); with several processes a guesser who
spreads their attempts over them would get that many times the attempts.
These rows count the attempts of all of them within the window, by client
address and by username. ``attempt`` checks and counts in one transaction
under an advisory lock per key, so parallel attempts on several processes
cannot all slip under the limit; a successful one is taken back
(``succeeded``).

A key is stored as its SHA-256: a fixed-size key, not a secret (anyone who
reads the table can try every address). So rows live no longer than the
window: each attempt deletes up to ``PURGE_BATCH`` expired rows, and the
worker purges every minute (``purge``).

The wait has the in-memory throttle's meaning: with ``limit`` attempts of a
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
_LOCK: Final = text("SELECT pg_advisory_xact_lock(:id)")
_INSERT: Final = text(
    "INSERT INTO login_failures (kind, key_hash, at) VALUES (:kind, :key_hash, :at) RETURNING id"
)
_DELETE_IDS: Final = text("DELETE FROM login_failures WHERE id = ANY(:ids)")
_PURGE: Final = text(
    """
    DELETE FROM login_failures WHERE id IN (
        SELECT id FROM login_failures WHERE at <= :before
         LIMIT :batch FOR UPDATE SKIP LOCKED
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


@dataclass(frozen=True)
class AttemptOutcome:
    """``waits``: seconds to wait per kind of key over its limit (empty: let
    through); ``ids``: the rows that count the attempt, when let through."""

    waits: dict[Kind, float]
    ids: tuple[int, ...]


def _lock_id(key: FailureKey) -> int:
    # Two keys sharing 64 bits only wait for each other: harmless.
    return int.from_bytes(
        hashlib.sha256(key.kind.encode() + key.digest).digest()[:8], "big", signed=True
    )


async def attempt(
    engine: AsyncEngine, keys: Sequence[FailureKey], window: timedelta, now: datetime
) -> AttemptOutcome:
    """Check every key against its limit and, if none is over it, count
    the attempt against each, atomically for all API processes."""
    async with engine.begin() as conn:
        for lock_id in sorted({_lock_id(key) for key in keys}):
            await conn.execute(_LOCK, {"id": lock_id})
        waits: dict[Kind, float] = {}
        for key in keys:
            params = {
                "kind": key.kind,
                "key_hash": key.digest,
                "since": now - window,
                "skip": key.limit - 1,
            }
            oldest = (await conn.execute(_LIMITTH_RECENT, params)).scalar_one_or_none()
            if oldest is not None:
                waits[key.kind] = (oldest + window - now).total_seconds()
        if waits:
            return AttemptOutcome(waits, ())
        ids = []
        for key in keys:
            row = {"kind": key.kind, "key_hash": key.digest, "at": now}
            ids.append(int((await conn.execute(_INSERT, row)).scalar_one()))
        await conn.execute(_PURGE, {"before": now - window, "batch": PURGE_BATCH})
    return AttemptOutcome({}, tuple(ids))


async def succeeded(engine: AsyncEngine, ids: Sequence[int], username: str) -> None:
    """Take back a successful attempt's rows and forget the name's failures."""
    async with engine.begin() as conn:
        if ids:
            await conn.execute(_DELETE_IDS, {"ids": list(ids)})
        await conn.execute(_FORGET, {"kind": "username", "key_hash": key_hash(username)})


async def purge(engine: AsyncEngine, before: datetime) -> int:
    """Delete rows older than ``before``, a batch at a time; how many."""
    deleted = 0
    while True:
        async with engine.begin() as conn:
            done = (await conn.execute(_PURGE, {"before": before, "batch": PURGE_BATCH})).rowcount
        deleted += done
        if done < PURGE_BATCH:
            return deleted
