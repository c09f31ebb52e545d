"""Business time: dates a person reads (statement dates, receipt years, the
daily report) are Vietnam's; everything stored is UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

VIETNAM_TZ_NAME: Final = "Asia/Ho_Chi_Minh"
VIETNAM_TZ: Final = ZoneInfo(VIETNAM_TZ_NAME)
# Vietnam has kept UTC+7 without daylight saving since 1975. Workflow code
# uses the fixed offset (no time zone database inside the sandbox); the test
# of this module checks that the two agree.
VIETNAM_UTC_OFFSET: Final = timedelta(hours=7)
# The dates any business fact of this service can carry. Outside them a date
# is a typing error or an attack: year 1 or 9999 cannot even be moved to
# another time zone (``OverflowError``).
DATE_MIN: Final = date(2000, 1, 1)
DATE_MAX: Final = date(2099, 12, 31)


def business_date(at: datetime) -> date:
    """The Vietnamese calendar date of an aware moment."""
    assert at.tzinfo is not None, "a naive datetime has no business date"
    return at.astimezone(VIETNAM_TZ).date()


def business_day_start(day: date) -> datetime:
    """The UTC moment a Vietnamese business date begins."""
    return datetime.combine(day, time(0), tzinfo=VIETNAM_TZ).astimezone(UTC)
