"""The operations guide describes every metric the service defines."""

from __future__ import annotations

from prometheus_client.metrics import MetricWrapperBase

from observability import metrics
from tests.unit.observability.promql import REPO


def test_operations_guide_describes_every_metric() -> None:
    text = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    missing = []
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            [family] = value.describe()
            name = family.name + ("_total" if family.type == "counter" else "")
            if f"`{name}`" not in text:
                missing.append(name)
    assert missing == []
