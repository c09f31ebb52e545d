"""Uptime from outage records (``ledger.link_health``): windows clip
outages, overlaps count once, an open outage lasts until now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ledger.link_health import downtime_seconds, health_of, uptime
from observability.outages import Outage

NOW = datetime(2026, 3, 8, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def _outage(bank: str, start: datetime, end: datetime | None, n: int = 1) -> Outage:
    return Outage(id=n, bank=bank, started_at=start, ended_at=end, cause="probe failed")


def test_no_outage_is_full_uptime() -> None:
    assert uptime([], NOW - 24 * H, NOW) == 1.0


def test_outages_are_clipped_to_the_window_and_overlaps_count_once() -> None:
    outages = [
        _outage("vcb", NOW - 30 * H, NOW - 23 * H),  # 1 h inside the last 24 h
        _outage("vcb", NOW - 10 * H, NOW - 8 * H),  # 2 h
        _outage("vcb", NOW - 9 * H, NOW - 7 * H),  # overlaps: 1 more hour
    ]
    assert downtime_seconds(outages, NOW - 24 * H, NOW) == 4 * 3600
    assert uptime(outages, NOW - 24 * H, NOW) == pytest.approx(20 / 24)


def test_an_open_outage_lasts_until_the_end_of_the_window() -> None:
    health = health_of("vcb", [_outage("vcb", NOW - 6 * H, None)], NOW)
    assert not health.up
    assert health.down_since == NOW - 6 * H
    assert health.uptime_24h == pytest.approx(18 / 24)
    assert health.uptime_7d == pytest.approx(1 - 6 / (7 * 24))


def test_other_banks_outages_do_not_count() -> None:
    health = health_of("tcb", [_outage("vcb", NOW - 6 * H, None)], NOW)
    assert health.up
    assert health.uptime_24h == 1.0
    assert health.outages_7d == ()


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(ValueError, match="after"):
        uptime([], NOW, NOW)
