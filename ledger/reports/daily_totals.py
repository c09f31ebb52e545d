"""Money collected and refunded per business day (Asia/Ho_Chi_Minh) over a
run of days: the daily closing's "collected" and "refunded" figures for
each day, in one query (bounded: at most ``DAYS_MAX`` days, one row each).

The same postings and the same attribution as ``daily_closing``: collected
is the bank clearing accounts' debits by payment entries (``fine_payment``,
``duplicate_payment``), refunded their credits by ``refund`` entries; an
entry's unit is its payment's or dispute's fine's. So a day's point equals
that day's closing total under the same ``unit``, ``bank`` and scope.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.types import Text

from domain.business_time import VIETNAM_TZ_NAME, business_day_start
from ledger.reports.daily_closing import ATTRIBUTED_CTE

DAYS_MAX: Final = 31

_TOTALS: Final = text(
    """
WITH per_entry AS (
    SELECT e.id, e.kind,
           CAST(e.created_at AT TIME ZONE CAST(:tz AS text) AS date) AS day,
           max(substring(a.code FROM '^bank\\:(.+)\\:clearing$')) AS bank,
           sum(p.amount_vnd) AS clearing_vnd,
           e.metadata ->> 'payment_id' AS payment_id,
           e.metadata ->> 'dispute_id' AS dispute_id
      FROM journal_entries e
      JOIN postings p ON p.entry_id = e.id
      JOIN accounts a ON a.id = p.account_id AND a.code LIKE 'bank\\:%\\:clearing'
     WHERE e.created_at >= :since AND e.created_at < :until
       AND e.kind IN ('fine_payment', 'duplicate_payment', 'refund')
     GROUP BY e.id, e.kind, e.created_at, e.metadata
), {attributed}
SELECT day,
       coalesce(sum(clearing_vnd) FILTER (WHERE kind <> 'refund'), 0) AS collected_vnd,
       coalesce(-sum(clearing_vnd) FILTER (WHERE kind = 'refund'), 0) AS refunded_vnd
  FROM attributed
 WHERE (CAST(:units AS text[]) IS NULL OR unit = ANY(CAST(:units AS text[])))
   AND (CAST(:unit AS text) IS NULL OR unit = :unit)
   AND (CAST(:bank AS text) IS NULL OR bank = :bank)
 GROUP BY day
""".replace("{attributed}", ATTRIBUTED_CTE)
).bindparams(bindparam("units", type_=ARRAY(Text)))


@dataclass(frozen=True)
class DayTotal:
    day: date
    collected_vnd: int = 0
    refunded_vnd: int = 0


async def daily_totals(
    conn: AsyncConnection,
    until: date,
    days: int,
    *,
    unit: str | None = None,
    bank: str | None = None,
    units: Sequence[str] | None = None,
) -> tuple[DayTotal, ...]:
    """One point per day of the ``days`` days ending with ``until`` (oldest
    first; a day without money is a zero point); ``units``: the reader's
    scope (None: every unit)."""
    if not 1 <= days <= DAYS_MAX:
        raise ValueError(f"days must be in 1..{DAYS_MAX}")
    first = until - timedelta(days=days - 1)
    args = {
        "tz": VIETNAM_TZ_NAME,
        "since": business_day_start(first),
        "until": business_day_start(until + timedelta(days=1)),
        "units": list(units) if units is not None else None,
        "unit": unit,
        "bank": bank,
    }
    found = {
        r["day"]: DayTotal(r["day"], int(r["collected_vnd"]), int(r["refunded_vnd"]))
        for r in (await conn.execute(_TOTALS, args)).mappings()
    }
    every = (first + timedelta(days=i) for i in range(days))
    return tuple(found.get(day, DayTotal(day)) for day in every)
