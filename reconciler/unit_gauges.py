"""The per-issuing-unit gauges of docs/operations.md (the Grafana dashboard
``reconciler-units``), refreshed once a minute from the ledger: payments of
the last hour by outcome, receipts issued, payments in doubt, open disputes.

From the ledger, not counted where payments happen: the values do not
depend on which process did the work, and a restart loses nothing.

Computed once for the whole deployment, not once per worker: the query
scans the last hour's payments, and N workers running it N times a minute
is N times the load for the same figures. One worker leads: it holds a
PostgreSQL session advisory lock (``pg_try_advisory_lock``) on a connection
it keeps, and only the leader queries and exports the gauges. Every other
worker tries for the lock once a minute (one round trip, no scan), and
exports nothing for these series. A leader that dies drops its session and
with it the lock; the next worker to try leads from its next tick. A
leader whose connection fails removes its series and lets go.

Why the leader exports rather than writing the figures to a table that
every worker reads and exports: that is a table, a migration, and N reads
a minute to export the same numbers N times, which the dashboards then
have to de-duplicate anyway. Prometheus scrapes every worker, and a
follower that kept its last values would export them stale for as long as
it lives, so a follower exports nothing (it removes what it showed when it
led). The dashboards read ``max by (unit)``, right whether one worker or,
for the minute of a handover, two export a series; a ``delta`` over time
is taken on that ``max`` (a subquery), so a handover from one worker to
another does not cut the series. Label values are bounded by
``observability.metrics.fold_units``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

from prometheus_client import Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledger.receipts.issue import unit_code
from observability import metrics as m

# One row per (unit, what, outcome); bounded: units are at most this many
# rows per kind before folding, far more than a country's police units.
UNIT_ROWS_MAX: Final = 20_000

_QUERY: Final = text(
    """
    (SELECT f.issuing_unit AS unit, 'payments' AS kind, p.status AS outcome, count(*) AS n
       FROM payments p JOIN fines f ON f.id = p.fine_id
      WHERE p.created_at > now() - interval '1 hour'
        AND p.status IN ('succeeded', 'declined', 'refunded')
      GROUP BY f.issuing_unit, p.status LIMIT :rows)
    UNION ALL
    (SELECT f.issuing_unit, 'in_doubt', '', count(*)
       FROM payments p JOIN fines f ON f.id = p.fine_id
      WHERE p.status IN ('initiated', 'verifying')
      GROUP BY f.issuing_unit LIMIT :rows)
    UNION ALL
    (SELECT f.issuing_unit, 'disputes', '', count(*)
       FROM disputes d JOIN fines f ON f.id = d.fine_id
      WHERE d.status NOT IN ('confirmed', 'refunded', 'rejected')
      GROUP BY f.issuing_unit LIMIT :rows)
    UNION ALL
    (SELECT issuing_unit, 'receipts', '', sum(last_number)
       FROM receipt_series GROUP BY issuing_unit LIMIT :rows)
    """
)

# The leader's lock: one key for the whole deployment (advisory locks are
# per database, so one per ledger).
_LEAD: Final = text("SELECT pg_try_advisory_lock(hashtextextended('reconciler:unit-gauges', 0))")

_GAUGES: Final[dict[str, Gauge]] = {
    "payments": m.unit_payments_last_hour,
    "receipts": m.unit_receipts_issued,
    "in_doubt": m.unit_payments_in_doubt,
    "disputes": m.unit_disputes_open,
}

Key = tuple[str, tuple[str, ...]]  # (kind, label values)


def unit_values(rows: Iterable[Sequence[object]]) -> dict[Key, int]:
    """Each gauge's value per label set, from (issuing unit, kind, outcome,
    n) rows: units by code, the least busy folded into ``other``."""
    by_code: dict[tuple[str, str, str], int] = defaultdict(int)
    activity: dict[str, int] = defaultdict(int)
    for unit, kind, outcome, n in rows:
        code = unit_code(str(unit))
        by_code[(code, str(kind), str(outcome))] += int(str(n))
        activity[code] += int(str(n))
    labels = m.fold_units(dict(activity))
    values: dict[Key, int] = defaultdict(int)
    for (code, kind, outcome), n in by_code.items():
        if kind not in _GAUGES or (kind == "payments" and outcome not in m.UNIT_PAYMENT_OUTCOMES):
            continue
        label = labels[code]
        values[(kind, (label, outcome) if kind == "payments" else (label,))] += n
    return dict(values)


class UnitGauges:
    """Sets the gauges while this process leads, and removes a label set
    that is gone (a unit folded into ``other``, a unit with nothing in doubt
    any more, everything when it does not lead) instead of leaving its last
    value exported forever. ``gauges`` is where to export (the service's
    own by default)."""

    def __init__(self, gauges: Mapping[str, Gauge] | None = None) -> None:
        self._gauges = dict(_GAUGES if gauges is None else gauges)
        self._shown: set[Key] = set()
        self._lease: AsyncConnection | None = None

    def apply(self, values: dict[Key, int]) -> None:
        for (kind, labels), value in values.items():
            self._gauges[kind].labels(*labels).set(value)
        for kind, labels in self._shown - values.keys():
            self._gauges[kind].remove(*labels)
        self._shown = set(values)

    async def refresh(self, engine: AsyncEngine) -> bool:
        """One tick: True if this process leads and refreshed the gauges,
        False if another does (this one then exports none of them). An
        error lets go of the lead and of the values, then is raised."""
        try:
            lease = self._lease or await self._take_lead(engine)
            if lease is None:
                self.apply({})
                return False
            rows = (await lease.execute(_QUERY, {"rows": UNIT_ROWS_MAX})).all()
            await lease.commit()  # the lock is the session's: it outlives this
        except BaseException:
            self.apply({})
            await self.close()
            raise
        self.apply(unit_values(rows))
        return True

    async def _take_lead(self, engine: AsyncEngine) -> AsyncConnection | None:
        conn = await engine.connect()
        try:
            led = bool((await conn.execute(_LEAD)).scalar_one())
            await conn.commit()
        except BaseException:
            await _drop(conn)
            raise
        if not led:
            await conn.close()  # never locked: back to the pool as it is
            return None
        self._lease = conn
        return conn

    async def close(self) -> None:
        """Let go of the lead (a stopping worker: the next one takes it)."""
        lease, self._lease = self._lease, None
        if lease is not None:
            await _drop(lease)


async def _drop(conn: AsyncConnection) -> None:
    """Closes the connection itself, not back to the pool: a pooled session
    would go on holding the lock with nobody refreshing."""
    await conn.invalidate()
    await conn.close()
