"""Bank link outages in PostgreSQL: the ``OutageStore`` the link prober writes
through, and the queries the API and the console read outages with.

Schema: migration 0003 (``bank_outages``; a partial unique index allows at
most one open outage per bank). Every method is one short transaction of its
own: the prober's writes must not wait on any other unit of work.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import func, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.formats import BANK_ID_RE
from ledger.core.errors import ValidationError
from ledger.core.rows import columns, row_mapper
from ledger.core.tables import bank_outages
from observability.outages import CAUSE_LENGTH_MAX, RECENT_LIMIT_MAX, Outage, check_utc

__all__ = ["HeldPayment", "PostgresOutageStore", "bank_outages", "held_payments"]

_COLUMNS: Final = columns(Outage, bank_outages)
_outage_as_stored: Final = row_mapper(Outage)
# open_outage races only with a concurrent close of the same bank's outage;
# one retry settles it, three is a generous bound.
_OPEN_ATTEMPTS_MAX: Final = 3


class PostgresOutageStore:
    """``observability.outages.OutageStore`` on PostgreSQL (SQLAlchemy Core)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def open_outage(self, bank: str, at: datetime, cause: str) -> Outage:
        """Open an outage of ``bank`` starting ``at``; if the bank already has
        an open outage, return that one unchanged."""
        _check_bank(bank)
        at = check_utc(at)
        if len(cause) > CAUSE_LENGTH_MAX:
            raise ValidationError("cause", f"longer than {CAUSE_LENGTH_MAX} characters")
        statement = (
            insert(bank_outages)
            .values(bank=bank, started_at=at, cause=cause)
            .on_conflict_do_nothing(
                index_elements=[bank_outages.c.bank],
                index_where=bank_outages.c.ended_at.is_(None),
            )
            .returning(*_COLUMNS)
        )
        for _ in range(_OPEN_ATTEMPTS_MAX):
            async with self._engine.begin() as conn:
                inserted = (await conn.execute(statement)).first()
                row = inserted if inserted is not None else await self._open_row(conn, bank)
            if row is not None:
                return _outage(row)
        raise RuntimeError(f"could not open an outage of bank {bank}: open/close race persisted")

    async def close_outage(self, bank: str, at: datetime) -> Outage | None:
        """Close the open outage of ``bank`` at ``at`` (never before it
        started); None if the bank has no open outage."""
        _check_bank(bank)
        at = check_utc(at)
        statement = (
            update(bank_outages)
            .where(bank_outages.c.bank == bank, bank_outages.c.ended_at.is_(None))
            .values(ended_at=func.greatest(at, bank_outages.c.started_at))
            .returning(*_COLUMNS)
        )
        async with self._engine.begin() as conn:
            row = (await conn.execute(statement)).first()
        return None if row is None else _outage(row)

    async def open_outages(self) -> list[Outage]:
        statement = (
            select(*_COLUMNS)
            .where(bank_outages.c.ended_at.is_(None))
            .order_by(bank_outages.c.started_at, bank_outages.c.id)
        )
        return await self._fetch(statement)

    async def recent(
        self,
        limit: int = 50,
        *,
        bank: str | None = None,
        before: tuple[datetime, int] | None = None,
    ) -> list[Outage]:
        """The latest outages (open or closed), newest first; ``before``: the
        page after the one that ended at this (started_at, id)."""
        _check_limit(limit)
        statement = select(*_COLUMNS)
        if bank is not None:
            _check_bank(bank)
            statement = statement.where(bank_outages.c.bank == bank)
        if before is not None:
            started_at, outage_id = check_utc(before[0]), before[1]
            statement = statement.where(
                tuple_(bank_outages.c.started_at, bank_outages.c.id) < (started_at, outage_id)
            )
        statement = statement.order_by(
            bank_outages.c.started_at.desc(), bank_outages.c.id.desc()
        ).limit(limit)
        return await self._fetch(statement)

    async def overlapping(
        self, since: datetime, until: datetime, *, bank: str | None = None, limit: int = 1000
    ) -> list[Outage]:
        """Outages that were open at some time in ``[since, until)``, oldest first."""
        since, until = check_utc(since), check_utc(until)
        if until <= since:
            raise ValidationError("until", "must be after since")
        _check_limit(limit)
        statement = select(*_COLUMNS).where(
            bank_outages.c.started_at < until,
            or_(bank_outages.c.ended_at.is_(None), bank_outages.c.ended_at > since),
        )
        if bank is not None:
            _check_bank(bank)
            statement = statement.where(bank_outages.c.bank == bank)
        statement = statement.order_by(bank_outages.c.started_at, bank_outages.c.id).limit(limit)
        return await self._fetch(statement)

    async def get(self, outage_id: int) -> Outage | None:
        statement = select(*_COLUMNS).where(bank_outages.c.id == outage_id)
        rows = await self._fetch(statement)
        return rows[0] if rows else None

    async def _open_row(self, conn: AsyncConnection, bank: str) -> Any:
        statement = select(*_COLUMNS).where(
            bank_outages.c.bank == bank, bank_outages.c.ended_at.is_(None)
        )
        return (await conn.execute(statement)).first()

    async def _fetch(self, statement: Any) -> list[Outage]:
        async with self._engine.connect() as conn:
            rows = (await conn.execute(statement)).all()
        return [_outage(row) for row in rows]


def _outage(row: Any) -> Outage:
    """The row's outage with its times in UTC (the driver gives them in the
    session's time zone)."""
    outage = _outage_as_stored(row)
    ended_at = None if outage.ended_at is None else outage.ended_at.astimezone(UTC)
    return dataclasses.replace(
        outage, started_at=outage.started_at.astimezone(UTC), ended_at=ended_at
    )


def _check_bank(bank: str) -> None:
    if not BANK_ID_RE.fullmatch(bank):
        raise ValidationError("bank", f"not a bank id: {bank!r}")


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= RECENT_LIMIT_MAX:
        raise ValidationError("limit", f"must be between 1 and {RECENT_LIMIT_MAX}")


@dataclasses.dataclass(frozen=True)
class HeldPayment:
    """A payment that was in doubt (``verifying``) during an outage of its
    bank, and when its receipt came (None: none yet)."""

    outage_id: int
    payment_id: str
    receipted_at: datetime | None


# A payment is held by an outage when it entered verifying before the outage
# ended and had not left it before the outage began.
_HELD: Final = text(
    """
    SELECT o.id AS outage_id, p.id::text AS payment_id, r.issued_at AS receipted_at
      FROM bank_outages o
      JOIN payments p ON p.bank = o.bank
      JOIN LATERAL (SELECT min(e.at) AS since FROM payment_events e
                     WHERE e.payment_id = p.id AND e.to_status = 'verifying') v
        ON v.since IS NOT NULL AND v.since < coalesce(o.ended_at, now())
      LEFT JOIN LATERAL (SELECT min(e.at) AS until FROM payment_events e
                          WHERE e.payment_id = p.id AND e.from_status = 'verifying'
                            AND e.to_status <> 'verifying') l ON true
      LEFT JOIN receipts r ON r.payment_id = p.id
     WHERE o.bank = :bank AND o.started_at < :until
       AND (o.ended_at IS NULL OR o.ended_at > :since)
       AND (l.until IS NULL OR l.until > o.started_at)
     ORDER BY o.id, p.id
     LIMIT :limit
    """
)


async def held_payments(
    engine: AsyncEngine, bank: str, since: datetime, until: datetime, limit: int
) -> list[HeldPayment]:
    """The payments each of ``bank``'s outages in ``[since, until)`` held in
    doubt, at most ``limit`` (the caller refuses to report a cut list)."""
    _check_bank(bank)
    params = {"bank": bank, "since": check_utc(since), "until": check_utc(until), "limit": limit}
    async with engine.connect() as conn:
        rows = (await conn.execute(_HELD, params)).all()
    return [
        HeldPayment(
            row.outage_id,
            row.payment_id,
            None if row.receipted_at is None else row.receipted_at.astimezone(UTC),
        )
        for row in rows
    ]
