"""The per-unit Grafana dashboard (English and Vietnamese twins): every query
names only metrics the service defines, every panel follows the ``unit``
variable, the panels the issue asks for are there, and the Vietnamese one is
the English one translated."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.unit.observability.test_dashboard import (
    GRAFANA,
    _load,
    _shape,
    checked_queries,
    panels,
)

EN = GRAFANA / "dashboards" / "reconciler-units.json"
VI = GRAFANA / "dashboards" / "reconciler-units.vi.json"
UIDS = {EN: "fine-reconciler-units", VI: "fine-reconciler-units-vi"}


@pytest.fixture(scope="module", params=[EN, VI], ids=["en", "vi"])
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    path: Path = request.param
    doc = _load(path)
    assert doc["uid"] == UIDS[path]
    return doc


def test_every_query_names_only_known_metrics(dashboard: dict[str, Any]) -> None:
    assert checked_queries(dashboard) >= 8


def test_a_unit_variable_that_every_panel_follows(dashboard: dict[str, Any]) -> None:
    [variable] = dashboard["templating"]["list"]
    assert variable["name"] == "unit"
    assert re.fullmatch(r"label_values\(unit_\w+, unit\)", variable["definition"])
    assert variable["includeAll"]
    assert variable["allValue"] == ".*"
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert 'unit=~"$unit"' in target["expr"], panel["title"]
            assert "{{unit}}" in target["legendFormat"], panel["title"]


@pytest.mark.parametrize(
    ("metric", "what"),
    [
        ("unit_payments_last_hour", "payments"),
        ("unit_receipts_issued", "receipts"),
        ("unit_payments_in_doubt", "in doubt"),
        ("unit_disputes_open", "disputes"),
    ],
)
def test_required_panel(dashboard: dict[str, Any], metric: str, what: str) -> None:
    exprs = [t["expr"] for p in panels(dashboard) for t in p["targets"]]
    assert any(re.search(rf"\b{metric}\{{", e) for e in exprs), what


def test_the_vietnamese_dashboard_is_the_english_one_translated() -> None:
    en, vi = _load(EN), _load(VI)
    assert _shape(vi) == _shape(en)
    titles = [(a["title"], b["title"]) for a, b in zip(panels(en), panels(vi), strict=True)]
    assert all(a != b for a, b in titles), titles
    assert any(link["url"] == f"/d/{UIDS[VI]}" for link in en["links"])
    assert any(link["url"] == f"/d/{UIDS[EN]}" for link in vi["links"])
