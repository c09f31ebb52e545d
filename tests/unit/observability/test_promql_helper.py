"""The test helper that reads metric names out of PromQL, checked on its own."""

from __future__ import annotations

import pytest

from tests.unit.observability.promql import metric_names, service_metric_names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('bank_link_up{bank=~"$bank"} == 0', {"bank_link_up"}),
        (
            "histogram_quantile(0.95, sum by (le, bank) "
            "(rate(bank_request_duration_seconds_bucket[5m])))",
            {"bank_request_duration_seconds_bucket"},
        ),
        (
            "a:b:ratio_rate1h > (14.4 * 0.01) and on (bank) x offset 5m",
            {"a:b:ratio_rate1h", "x"},
        ),
        ("sum(rate(payments_total[$__rate_interval])) by (outcome)", {"payments_total"}),
        ('time() - hb{component="worker"} > 120', {"hb"}),
        ('up{job="a"} == 0 or absent(up)', {"up"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_service_metric_names_include_suffixes() -> None:
    names = service_metric_names()
    assert {"bank_outages_total", "receipt_lag_seconds_bucket", "bank_link_up"} <= names
    assert "bank_outages" not in names
