"""A bank link's availability from its outages: clipped to the period, open
ones counted until now, overlaps once, other banks' ignored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from observability.outages import Outage
from observability.uptime import uptime

START = datetime(2026, 10, 31, 17, tzinfo=UTC)  # 2026-11-01 00:00 in Vietnam
END = datetime(2026, 11, 30, 17, tzinfo=UTC)
AFTER = END + timedelta(days=3)


def outage(start: datetime, minutes: float | None, bank: str = "sgbank") -> Outage:
    end = None if minutes is None else start + timedelta(minutes=minutes)
    return Outage(id=1, bank=bank, started_at=start, ended_at=end, cause="x")


def test_outages_are_clipped_to_the_period_and_counted_once() -> None:
    outages = [
        outage(START - timedelta(minutes=30), 50),  # 20 min inside
        outage(START + timedelta(days=2), 45),
        outage(START + timedelta(days=2, minutes=30), 30),  # 15 min of it already counted
        outage(END - timedelta(minutes=10), 70),  # 10 min inside
        outage(START + timedelta(days=5), 600, bank="hnbank"),
        outage(END + timedelta(days=1), 60),  # another month
    ]
    report = uptime("sgbank", outages, START, END, AFTER)
    assert report.seconds_down == (20 + 45 + 15 + 10) * 60
    assert report.outages == 4
    assert report.period_seconds == 30 * 86400
    assert report.budget_seconds == pytest.approx(216 * 60)  # 0.5% of 30 days
    assert report.budget_left_seconds == pytest.approx((216 - 90) * 60)
    assert report.availability_percent == pytest.approx(100 * (1 - 90 / 43200))


def test_an_open_outage_counts_until_now_and_the_future_not_at_all() -> None:
    now = START + timedelta(days=10)
    report = uptime("sgbank", [outage(now - timedelta(hours=5), None)], START, END, now)
    assert report.seconds_down == 5 * 3600
    assert report.measured_until == now
    assert report.availability_percent == pytest.approx(100 * (1 - 5 / 240))
    # The budget is the whole month's; missed once the downtime passes it.
    assert report.budget_left_seconds == pytest.approx((216 - 300) * 60)


def test_a_period_not_begun_is_all_up() -> None:
    report = uptime("sgbank", [], START, END, START - timedelta(days=1))
    assert (report.seconds_down, report.availability_percent) == (0, 100.0)


@pytest.mark.parametrize("target", [0, 100, -1, 150])
def test_a_target_outside_0_to_100_is_refused(target: float) -> None:
    with pytest.raises(ValueError, match="target"):
        uptime("sgbank", [], START, END, AFTER, target)


def test_an_empty_period_is_refused() -> None:
    with pytest.raises(ValueError, match="period"):
        uptime("sgbank", [], END, START, AFTER)
