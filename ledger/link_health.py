"""Bank link health for the operators: up or down now, uptime over a window
(from the outage records of ``ledger.outages``), and how many payments were
in doubt at each hour of a window (from ``payment_events``).

Read-only; every query is bounded by its window and a row limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.formats import BANK_ID_RE
from ledger.core.errors import ValidationError
from ledger.outages import PostgresOutageStore
from observability.outages import CAUSE_LENGTH_MAX, Outage, check_utc

# More outages than a week of even a flapping link gives (the prober needs
# several failed probes to open one); a longer list is cut, oldest kept.
OUTAGES_PER_WINDOW_MAX: Final = 1000
DAY: Final = timedelta(days=1)
WEEK: Final = timedelta(days=7)


@dataclass(frozen=True)
class LastProbe:
    """The prober's last probe of a bank (``bank_link_probes``, 0016)."""

    probed_at: datetime
    ok: bool
    latency_ms: int
    cause: str


@dataclass(frozen=True)
class BankHealth:
    """One bank's link as the outage records tell it at ``now``."""

    bank: str
    up: bool
    down_since: datetime | None
    uptime_24h: float
    uptime_7d: float
    outages_7d: tuple[Outage, ...]
    last_probe: LastProbe | None = None


def downtime_seconds(outages: list[Outage], since: datetime, until: datetime) -> float:
    """Seconds in ``[since, until)`` covered by at least one outage (an open
    one lasts until ``until``); overlapping outages count once."""
    spans = sorted(
        (max(o.started_at, since), min(o.ended_at or until, until))
        for o in outages
        if o.started_at < until and (o.ended_at is None or o.ended_at > since)
    )
    total = 0.0
    current_start: datetime | None = None
    current_end: datetime | None = None
    for start, end in spans:
        if end <= start:
            continue
        if current_end is None or start > current_end:
            if current_start is not None and current_end is not None:
                total += (current_end - current_start).total_seconds()
            current_start, current_end = start, end
        else:
            current_end = max(current_end, end)
    if current_start is not None and current_end is not None:
        total += (current_end - current_start).total_seconds()
    return total


def uptime(outages: list[Outage], since: datetime, until: datetime) -> float:
    """The share of ``[since, until)`` with no outage, in [0, 1]."""
    window = (until - since).total_seconds()
    if window <= 0:
        raise ValueError("until must be after since")
    return max(0.0, 1.0 - downtime_seconds(outages, since, until) / window)


def health_of(
    bank: str, outages: list[Outage], now: datetime, last_probe: LastProbe | None = None
) -> BankHealth:
    """``bank``'s health from its outages overlapping the last 7 days."""
    mine = [o for o in outages if o.bank == bank]
    open_ = next((o for o in mine if o.is_open), None)
    return BankHealth(
        bank=bank,
        up=open_ is None,
        down_since=None if open_ is None else open_.started_at,
        uptime_24h=uptime(mine, now - DAY, now),
        uptime_7d=uptime(mine, now - WEEK, now),
        outages_7d=tuple(mine),
        last_probe=last_probe,
    )


async def banks_health(engine: AsyncEngine, banks: list[str], now: datetime) -> list[BankHealth]:
    """Every configured bank's health at ``now``, in the order given."""
    now = check_utc(now)
    store = PostgresOutageStore(engine)
    outages = await store.overlapping(now - WEEK, now, limit=OUTAGES_PER_WINDOW_MAX)
    async with engine.connect() as conn:
        probes = await last_probes(conn)
    return [health_of(bank, outages, now, probes.get(bank)) for bank in banks]


_RECORD_PROBE: Final = text(
    """
    INSERT INTO bank_link_probes (bank, probed_at, ok, latency_ms, cause)
    VALUES (:bank, :at, :ok, :latency_ms, :cause)
    ON CONFLICT (bank) DO UPDATE
       SET probed_at = excluded.probed_at, ok = excluded.ok,
           latency_ms = excluded.latency_ms, cause = excluded.cause
     WHERE bank_link_probes.probed_at <= excluded.probed_at
    """
)


async def record_probe(
    engine: AsyncEngine, bank: str, at: datetime, ok: bool, seconds: float, cause: str
) -> None:
    """The prober's latest probe of ``bank`` (an older one never overwrites
    a newer: two probers, or a late write). One autocommit statement."""
    if not BANK_ID_RE.fullmatch(bank):
        raise ValidationError("bank", f"not a bank id: {bank!r}")
    params = {
        "bank": bank,
        "at": check_utc(at),
        "ok": ok,
        "latency_ms": max(0, round(seconds * 1000)),
        "cause": cause[:CAUSE_LENGTH_MAX],
    }
    async with engine.connect() as conn:
        await conn.execute(_RECORD_PROBE, params)
        await conn.commit()


async def last_probes(conn: AsyncConnection) -> dict[str, LastProbe]:
    rows = (
        await conn.execute(
            text("SELECT bank, probed_at, ok, latency_ms, cause FROM bank_link_probes")
        )
    ).all()
    return {
        r.bank: LastProbe(r.probed_at.astimezone(UTC), bool(r.ok), int(r.latency_ms), r.cause)
        for r in rows
    }


@dataclass(frozen=True)
class InDoubtPoint:
    at: datetime
    count: int


# A payment was in doubt at T when it entered verifying at or before T and
# had not left it by T. Candidates: the payments live now (partial index
# ``payments_in_doubt``) and those created in the window or the week before
# (index ``payments_newest``): a payment in doubt for more than a week that
# was settled inside the window is not counted (docs/console.md says so).
_IN_DOUBT_HOURLY: Final = text(
    """
    WITH candidates AS (
        SELECT id FROM payments WHERE status IN ('initiated', 'verifying')
        UNION
        SELECT id FROM payments WHERE created_at >= CAST(:since AS timestamptz) - interval '7 days'
    ), spans AS (
        SELECT e.payment_id,
               min(e.at) FILTER (WHERE e.to_status = 'verifying') AS entered,
               min(e.at) FILTER (WHERE e.from_status = 'verifying'
                                   AND e.to_status <> 'verifying') AS left_at
          FROM payment_events e JOIN candidates c ON c.id = e.payment_id
         GROUP BY e.payment_id
    )
    SELECT h.at AS at, count(s.payment_id) AS n
      FROM generate_series(CAST(:since AS timestamptz), CAST(:until AS timestamptz),
                           interval '1 hour') AS h(at)
      LEFT JOIN spans s
        ON s.entered <= h.at AND (s.left_at IS NULL OR s.left_at > h.at)
     GROUP BY h.at ORDER BY h.at
    """
)


async def in_doubt_hourly(conn: AsyncConnection, now: datetime) -> list[InDoubtPoint]:
    """How many payments were in doubt at each whole hour of the last 24 h
    (25 points, the last at the latest whole hour)."""
    until = check_utc(now).replace(minute=0, second=0, microsecond=0)
    rows = (await conn.execute(_IN_DOUBT_HOURLY, {"since": until - DAY, "until": until})).all()
    return [InDoubtPoint(row.at, int(row.n)) for row in rows]
