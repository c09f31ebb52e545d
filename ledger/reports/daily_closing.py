"""The daily closing report: for one business day (Asia/Ho_Chi_Minh), per
issuing unit and bank, the money collected, refunded and held in suspense,
the items still open at the day's end and the receipts issued; per receipt
series, the first and last number issued that day and the numbers missing.

Every sum is a sum of the ledger's postings (integer đồng):

* collected: the bank clearing account's debits by the day's payment
  entries (``fine_payment``, ``duplicate_payment``);
* refunded: its credits by the day's ``refund`` entries;
* held in suspense: the suspense account's balance at the day's end (all
  entries up to then), by the bank of each entry;
* open items: discrepancies and disputes raised before the day's end and
  not resolved by then.

An entry's unit is its payment's fine's (``metadata.payment_id``) or its
dispute's fine's (``metadata.dispute_id``); money nobody identified (a
statement line in suspense) has none: its row's unit is None. A
unit-scoped reader (``units``) sees only their units' rows, never those.

A series' gaps: numbers from the one after the last issued before the day
up to the day's last that no receipt holds (at most ``GAPS_SHOWN`` listed,
all counted).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, Final

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import Text

from domain.business_time import business_day_start

GAPS_SHOWN: Final = 100

# Each entry's unit: its payment's fine's or its dispute's fine's (the
# report and the daily totals attribute money the same way).
ATTRIBUTED_CTE: Final = """attributed AS (
    SELECT pe.*, coalesce(f1.issuing_unit, f2.issuing_unit) AS unit
      FROM per_entry pe
      LEFT JOIN payments pay ON pay.id = CAST(pe.payment_id AS uuid)
      LEFT JOIN fines f1 ON f1.id = pay.fine_id
      LEFT JOIN disputes d ON d.id = CAST(pe.dispute_id AS bigint)
      LEFT JOIN fines f2 ON f2.id = d.fine_id
)"""

# Entries of the day, and every entry before it that touched suspense (the
# balance held at the day's end), each with its bank and unit.
_MONEY: Final = text(
    """
WITH picked AS (
    SELECT e.id, e.kind, e.metadata, true AS today
      FROM journal_entries e
     WHERE e.created_at >= :since AND e.created_at < :until
    UNION ALL
    SELECT e.id, e.kind, e.metadata, false
      FROM postings p
      JOIN accounts a ON a.id = p.account_id AND a.code = 'suspense'
      JOIN journal_entries e ON e.id = p.entry_id
     WHERE e.created_at < :since
), per_entry AS (
    SELECT x.id, x.kind, x.today,
           coalesce(max(substring(a.code FROM '^bank\\:(.+)\\:clearing$')),
                    x.metadata ->> 'bank') AS bank,
           coalesce(sum(p.amount_vnd) FILTER (WHERE a.code LIKE 'bank\\:%\\:clearing'), 0)
               AS clearing_vnd,
           coalesce(sum(p.amount_vnd) FILTER (WHERE a.code = 'suspense'), 0) AS suspense_vnd,
           x.metadata ->> 'payment_id' AS payment_id,
           x.metadata ->> 'dispute_id' AS dispute_id
      FROM picked x
      JOIN postings p ON p.entry_id = x.id
      JOIN accounts a ON a.id = p.account_id
     GROUP BY x.id, x.kind, x.today, x.metadata
), {attributed}
SELECT unit, bank,
       coalesce(sum(clearing_vnd) FILTER (
           WHERE today AND kind IN ('fine_payment', 'duplicate_payment')), 0) AS collected_vnd,
       coalesce(-sum(clearing_vnd) FILTER (WHERE today AND kind = 'refund'), 0) AS refunded_vnd,
       coalesce(-sum(suspense_vnd), 0) AS suspense_vnd
  FROM attributed
 WHERE (CAST(:units AS text[]) IS NULL OR unit = ANY(CAST(:units AS text[])))
 GROUP BY unit, bank
""".replace("{attributed}", ATTRIBUTED_CTE)
)

_OPEN: Final = text(
    """
SELECT f.issuing_unit AS unit, x.bank, count(*) FILTER (WHERE x.what = 'd') AS discrepancies,
       count(*) FILTER (WHERE x.what = 's') AS disputes
  FROM (SELECT 'd' AS what, bank, fine_id FROM discrepancies
         WHERE created_at < :until AND (resolved_at IS NULL OR resolved_at >= :until)
        UNION ALL
        SELECT 's', bank, fine_id FROM disputes
         WHERE opened_at < :until AND (resolved_at IS NULL OR resolved_at >= :until)) x
  LEFT JOIN fines f ON f.id = x.fine_id
 WHERE (CAST(:units AS text[]) IS NULL OR f.issuing_unit = ANY(CAST(:units AS text[])))
 GROUP BY f.issuing_unit, x.bank
"""
)

_RECEIPTS: Final = text(
    """
SELECT s.issuing_unit AS unit, p.bank, count(*) AS receipts
  FROM receipts r
  JOIN receipt_series s ON s.series = r.series
  JOIN payments p ON p.id = r.payment_id
 WHERE r.issued_at >= :since AND r.issued_at < :until
   AND (CAST(:units AS text[]) IS NULL OR s.issuing_unit = ANY(CAST(:units AS text[])))
 GROUP BY s.issuing_unit, p.bank
"""
)

_SERIES: Final = text(
    """
WITH day AS (
    SELECT r.series, min(r.number) AS first_number, max(r.number) AS last_number,
           count(*) AS issued
      FROM receipts r
      JOIN receipt_series s ON s.series = r.series
     WHERE r.issued_at >= :since AND r.issued_at < :until
       AND (CAST(:units AS text[]) IS NULL OR s.issuing_unit = ANY(CAST(:units AS text[])))
       AND (CAST(:unit AS text) IS NULL OR s.issuing_unit = :unit)
     GROUP BY r.series
)
SELECT d.series, s.issuing_unit AS unit, d.first_number, d.last_number, d.issued,
       (SELECT max(r.number) FROM receipts r
         WHERE r.series = d.series AND r.issued_at < :since) AS previous_last
  FROM day d JOIN receipt_series s ON s.series = d.series
 ORDER BY s.issuing_unit, d.series
"""
)

_GAPS: Final = text(
    """
SELECT n, count(*) OVER () AS total
  FROM generate_series(CAST(:low AS integer), CAST(:high AS integer)) AS n
 WHERE NOT EXISTS (SELECT 1 FROM receipts r WHERE r.series = :series AND r.number = n)
 ORDER BY n
 LIMIT :shown
"""
)


def _with_units(query: Any) -> Any:
    return query.bindparams(bindparam("units", type_=ARRAY(Text)))


@dataclass(frozen=True)
class ClosingRow:
    """One issuing unit (None: money nobody identified) at one bank."""

    unit: str | None
    bank: str | None
    collected_vnd: int = 0
    refunded_vnd: int = 0
    suspense_vnd: int = 0
    open_discrepancies: int = 0
    open_disputes: int = 0
    receipts: int = 0


@dataclass(frozen=True)
class SeriesRow:
    """The receipts of one series issued that day."""

    series: str
    unit: str
    first_number: int
    last_number: int
    issued: int
    previous_last: int | None
    gaps: tuple[int, ...]
    gaps_total: int

    @property
    def no_gaps(self) -> bool:
        return self.gaps_total == 0


@dataclass(frozen=True)
class DailyClosing:
    day: date
    since: datetime
    until: datetime
    rows: tuple[ClosingRow, ...]
    series: tuple[SeriesRow, ...]
    total: ClosingRow = field(default_factory=lambda: ClosingRow(None, None))


# The fields of a row that add up (the total sums them), in the report's order.
SUMMED: Final = (
    "collected_vnd",
    "refunded_vnd",
    "suspense_vnd",
    "open_discrepancies",
    "open_disputes",
    "receipts",
)


async def daily_closing(
    conn: AsyncConnection,
    day: date,
    *,
    unit: str | None = None,
    bank: str | None = None,
    units: Sequence[str] | None = None,
) -> DailyClosing:
    """The report of ``day``, narrowed to ``unit`` and ``bank`` if given;
    ``units``: the reader's scope (None: every unit)."""
    since = business_day_start(day)
    until = business_day_start(day + timedelta(days=1))
    args = {"since": since, "until": until, "units": list(units) if units is not None else None}
    rows: dict[tuple[str | None, str | None], ClosingRow] = {}

    def merge(key: tuple[str | None, str | None], **values: Any) -> None:
        rows[key] = replace(rows.get(key, ClosingRow(*key)), **values)

    for r in (await conn.execute(_with_units(_MONEY), args)).mappings():
        merge(
            (r["unit"], r["bank"]),
            collected_vnd=int(r["collected_vnd"]),
            refunded_vnd=int(r["refunded_vnd"]),
            suspense_vnd=int(r["suspense_vnd"]),
        )
    for r in (await conn.execute(_with_units(_OPEN), args)).mappings():
        merge(
            (r["unit"], r["bank"]),
            open_discrepancies=int(r["discrepancies"]),
            open_disputes=int(r["disputes"]),
        )
    for r in (await conn.execute(_with_units(_RECEIPTS), args)).mappings():
        merge((r["unit"], r["bank"]), receipts=int(r["receipts"]))
    shown = tuple(
        row
        for key, row in sorted(rows.items(), key=lambda kv: (kv[0][0] or "\uffff", kv[0][1] or ""))
        if (unit is None or row.unit == unit)
        and (bank is None or row.bank == bank)
        and any(getattr(row, name) for name in SUMMED)
    )
    total = ClosingRow(None, None, **{n: sum(getattr(r, n) for r in shown) for n in SUMMED})
    return DailyClosing(day, since, until, shown, await _series(conn, args, unit), total)


async def _series(
    conn: AsyncConnection, args: dict[str, Any], unit: str | None
) -> tuple[SeriesRow, ...]:
    found = []
    for r in (await conn.execute(_with_units(_SERIES), {**args, "unit": unit})).mappings():
        low = (r["previous_last"] or 0) + 1
        missing = (
            await conn.execute(
                _GAPS,
                {"low": low, "high": r["last_number"], "series": r["series"], "shown": GAPS_SHOWN},
            )
        ).all()
        found.append(
            SeriesRow(
                series=r["series"],
                unit=r["unit"],
                first_number=int(r["first_number"]),
                last_number=int(r["last_number"]),
                issued=int(r["issued"]),
                previous_last=r["previous_last"],
                gaps=tuple(int(m.n) for m in missing),
                gaps_total=int(missing[0].total) if missing else 0,
            )
        )
    return tuple(found)
