"""When the console sends a citizen to open a dispute (a day by default,
and the advice follows it) and how long their contact is kept after the
dispute ends (90 days): settings, bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from pydantic import ValidationError

from ledger.fines import Fine, FineStatus, FineView, PaymentSummary
from observability.outages import Outage
from reconciler.console.explain import dispute_after, explain
from reconciler.settings import Settings

PAID_AT = datetime(2025, 3, 3, 2, 30, tzinfo=UTC)  # 09:30 in Vietnam


def _in_doubt() -> FineView:
    fine = Fine(1, "01234/QĐ-XPHC", "01234/qd-xphc", 800_000, "A", "29A-1", "U", "v", PAID_AT)
    payment = PaymentSummary(uuid4(), "sgbank", 800_000, "verifying", False, PAID_AT, PAID_AT)
    return FineView(fine, FineStatus.VERIFYING, (payment,), None)


def test_a_day_by_default_and_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert dispute_after(Settings(env="dev")) == timedelta(days=1)
    monkeypatch.setenv("RECONCILER_DISPUTE_AFTER_HOURS", "48")
    assert dispute_after(Settings(env="dev")) == timedelta(hours=48)


@pytest.mark.parametrize("hours", ["0", "-1", "721", "1.5", "a day"])
def test_a_value_out_of_bounds_is_refused_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, hours: str
) -> None:
    monkeypatch.setenv("RECONCILER_DISPUTE_AFTER_HOURS", hours)
    with pytest.raises(ValidationError) as caught:
        Settings(env="dev")
    [error] = caught.value.errors()
    assert error["loc"] == ("dispute_after_hours",)


def test_the_advice_follows_the_setting() -> None:
    wait = dispute_after(Settings(env="dev", dispute_after_hours=48))
    up = explain(_in_doubt(), [], "en", wait)
    assert up.lines[-1].startswith("If there is still no receipt by 09:30 on 05/03/2025")
    down = Outage(1, "sgbank", PAID_AT, None, "HTTP 503")
    assert (
        "still no receipt 48 hours after the link is back"
        in explain(_in_doubt(), [down], "en", wait).lines[-1]
    )
    assert "48 giờ sau khi kết nối" in explain(_in_doubt(), [down], "vi", wait).lines[-1]


@pytest.mark.parametrize("days", ["0", "-1", "3651", "1.5", "forever"])
def test_a_contact_retention_out_of_bounds_is_refused(
    monkeypatch: pytest.MonkeyPatch, days: str
) -> None:
    assert Settings(env="dev").dispute_contact_retention_days == 90
    monkeypatch.setenv("RECONCILER_DISPUTE_CONTACT_RETENTION_DAYS", days)
    with pytest.raises(ValidationError) as caught:
        Settings(env="dev")
    [error] = caught.value.errors()
    assert error["loc"] == ("dispute_contact_retention_days",)
