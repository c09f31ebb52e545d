"""A bank link's availability over a period, from its outage records: the
minutes down, the share of the period up, and what is left of the error
budget an availability target allows (the monthly figure the banks' SLA
talks use; ``reconciler report uptime``).

Pure arithmetic on ``Outage`` records: each outage is clipped to the period
(an outage still open counts until ``now``), overlapping outages count once,
and time after ``now`` is never counted as down or up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from observability.outages import Outage, check_utc

# The link availability a bank's SLA asks for unless told otherwise: 99.5%
# of a 30-day month is 216 minutes of downtime.
DEFAULT_TARGET_PERCENT: Final = 99.5


@dataclass(frozen=True)
class Uptime:
    bank: str
    period_start: datetime
    period_end: datetime
    measured_until: datetime  # the period's end, or now if the period is not over
    outages: int
    seconds_down: float
    target_percent: float

    @property
    def period_seconds(self) -> float:
        return (self.period_end - self.period_start).total_seconds()

    @property
    def measured_seconds(self) -> float:
        return max(0.0, (self.measured_until - self.period_start).total_seconds())

    @property
    def availability_percent(self) -> float:
        """Up over the measured part of the period (100 before it starts)."""
        if self.measured_seconds <= 0:
            return 100.0
        return 100.0 * (1 - self.seconds_down / self.measured_seconds)

    @property
    def budget_seconds(self) -> float:
        """The downtime the target allows over the whole period."""
        return self.period_seconds * (100.0 - self.target_percent) / 100.0

    @property
    def budget_left_seconds(self) -> float:
        """Negative once the budget is spent (the SLA is missed)."""
        return self.budget_seconds - self.seconds_down


def uptime(
    bank: str,
    outages: list[Outage],
    period_start: datetime,
    period_end: datetime,
    now: datetime,
    target_percent: float = DEFAULT_TARGET_PERCENT,
) -> Uptime:
    """``bank``'s availability in ``[period_start, period_end)`` as of ``now``
    from its outages (others' are ignored)."""
    start, end, now = check_utc(period_start), check_utc(period_end), check_utc(now)
    if end <= start:
        raise ValueError("the period must end after it starts")
    if not 0 < target_percent < 100:
        raise ValueError("the target must be a percentage above 0 and below 100")
    until = min(end, max(now, start))
    spans = sorted(
        (max(o.started_at, start), min(o.ended_at or now, until)) for o in outages if o.bank == bank
    )
    spans = [(s, e) for s, e in spans if e > s]
    seconds_down = 0.0
    covered_until = start
    for span_start, span_end in spans:
        counted_from = max(span_start, covered_until)  # overlaps count once
        if span_end > counted_from:
            seconds_down += (span_end - counted_from).total_seconds()
            covered_until = span_end
    return Uptime(
        bank=bank,
        period_start=start,
        period_end=end,
        measured_until=until,
        outages=len(spans),
        seconds_down=seconds_down,
        target_percent=target_percent,
    )
