"""The finance pages' pure parts: their texts in both languages (and no
key of the console's own taken over), ages and dispute deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ledger import disputes as ds
from reconciler.console import texts, texts_finance
from reconciler.console.finance import dispute_deadline, format_age

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def test_both_languages_hold_every_key_and_none_is_taken_over() -> None:
    assert set(texts_finance.VI) == set(texts_finance.EN)
    assert not set(texts_finance.VI) & set(texts.VI)
    assert set(texts.TEXTS["vi"]) == set(texts.TEXTS["en"])


def test_ages() -> None:
    assert format_age(timedelta(days=2, hours=3, minutes=5), "vi") == "2 ngày 3 giờ"
    assert format_age(timedelta(hours=1, minutes=5), "en") == "1 h 5 min"
    assert format_age(timedelta(seconds=-5), "vi") == "0 phút"


def _dispute(status: str, opened: datetime) -> ds.Dispute:
    values: dict[str, Any] = dict.fromkeys(ds.Dispute.__dataclass_fields__)
    return ds.Dispute(**{**values, "status": status, "opened_at": opened})


def test_deadlines() -> None:
    open_late = dispute_deadline(_dispute("open", NOW - 4 * DAY), None, 3 * DAY, NOW)
    assert open_late.at == NOW - DAY
    assert open_late.overdue
    open_fresh = dispute_deadline(_dispute("open", NOW - DAY), None, 3 * DAY, NOW)
    assert not open_fresh.overdue
    final = dispute_deadline(_dispute("refunded", NOW - 9 * DAY), None, 3 * DAY, NOW)
    assert (final.at, final.overdue) == (None, False)
