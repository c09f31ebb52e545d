"""Bank link outages: the record type, the store interface the prober writes
through, and an in-memory store for tests and single-process tools.

The PostgreSQL store lives in ``ledger.outages`` (ledger may import
observability, never the reverse).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final, Protocol

from domain.formats import BANK_ID_RE

BANK_ID_PATTERN: Final = BANK_ID_RE
CAUSE_LENGTH_MAX: Final = 1000
RECENT_LIMIT_MAX: Final = 1000


@dataclass(frozen=True, slots=True)
class Outage:
    """One bank link outage. ``ended_at`` is None while it is still open."""

    id: int
    bank: str
    started_at: datetime
    ended_at: datetime | None
    cause: str

    @property
    def is_open(self) -> bool:
        return self.ended_at is None

    @property
    def duration_seconds(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


class OutageStore(Protocol):
    """Durable record of outages. At most one open outage per bank.

    ``open_outage`` is idempotent per bank: if the bank already has an open
    outage it is returned unchanged. ``close_outage`` closes the bank's open
    outage, or returns None when there is none.
    """

    async def open_outage(self, bank: str, at: datetime, cause: str) -> Outage: ...

    async def close_outage(self, bank: str, at: datetime) -> Outage | None: ...

    async def open_outages(self) -> list[Outage]: ...

    async def recent(
        self,
        limit: int = 50,
        *,
        bank: str | None = None,
        before: tuple[datetime, int] | None = None,
    ) -> list[Outage]:
        """Newest first; ``before``: only those before this (started_at, id)."""
        ...


def check_bank(bank: str) -> None:
    if not BANK_ID_PATTERN.fullmatch(bank):
        raise ValueError(f"invalid bank id {bank!r}")


def check_utc(at: datetime) -> datetime:
    """``at`` as an aware UTC datetime; naive datetimes are a programmer error."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("outage times must be timezone-aware")
    return at.astimezone(UTC)


def check_cause(cause: str) -> str:
    if len(cause) > CAUSE_LENGTH_MAX:
        raise ValueError(f"outage cause longer than {CAUSE_LENGTH_MAX} characters")
    return cause


def check_limit(limit: int) -> int:
    if not 1 <= limit <= RECENT_LIMIT_MAX:
        raise ValueError(f"limit must be between 1 and {RECENT_LIMIT_MAX}")
    return limit


class InMemoryOutageStore:
    """An ``OutageStore`` kept in a list: same contract, no durability."""

    def __init__(self) -> None:
        self._outages: list[Outage] = []

    async def open_outage(self, bank: str, at: datetime, cause: str) -> Outage:
        check_bank(bank)
        at = check_utc(at)
        check_cause(cause)
        for outage in self._outages:
            if outage.bank == bank and outage.is_open:
                return outage
        outage = Outage(len(self._outages) + 1, bank, at, None, cause)
        self._outages.append(outage)
        return outage

    async def close_outage(self, bank: str, at: datetime) -> Outage | None:
        check_bank(bank)
        at = check_utc(at)
        for i, outage in enumerate(self._outages):
            if outage.bank == bank and outage.is_open:
                closed = replace(outage, ended_at=max(at, outage.started_at))
                self._outages[i] = closed
                return closed
        return None

    async def open_outages(self) -> list[Outage]:
        return [o for o in self._outages if o.is_open]

    async def recent(
        self,
        limit: int = 50,
        *,
        bank: str | None = None,
        before: tuple[datetime, int] | None = None,
    ) -> list[Outage]:
        check_limit(limit)
        rows = [o for o in self._outages if bank is None or o.bank == bank]
        if before is not None:
            rows = [o for o in rows if (o.started_at, o.id) < before]
        rows.sort(key=lambda o: (o.started_at, o.id), reverse=True)
        return rows[:limit]
