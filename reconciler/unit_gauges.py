"""The per-issuing-unit gauges of docs/operations.md (the Grafana dashboard
``reconciler-units``), refreshed by the worker from the ledger: payments of
the last hour by outcome, receipts issued, payments in doubt, open disputes.

From the ledger, not counted where payments happen: every worker then
exports the same values whichever process did the work, and a restart loses
nothing. Label values are bounded by ``observability.metrics.fold_units``."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Final

from prometheus_client import Gauge
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

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
    """Sets the gauges, and removes a label set that is gone (a unit folded
    into ``other``, a unit with nothing in doubt any more) instead of leaving
    its last value exported forever."""

    def __init__(self) -> None:
        self._shown: set[Key] = set()

    def apply(self, values: dict[Key, int]) -> None:
        for (kind, labels), value in values.items():
            _GAUGES[kind].labels(*labels).set(value)
        for kind, labels in self._shown - values.keys():
            _GAUGES[kind].remove(*labels)
        self._shown = set(values)

    async def refresh(self, engine: AsyncEngine) -> None:
        async with engine.connect() as conn:
            rows = (await conn.execute(_QUERY, {"rows": UNIT_ROWS_MAX})).all()
        self.apply(unit_values(rows))
