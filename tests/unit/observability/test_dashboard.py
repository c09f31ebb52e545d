"""The provisioned Grafana dashboard: valid JSON, the panels operators need,
and PromQL that only names metrics the service (or Prometheus) defines."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.unit.observability.promql import REPO, allowed_metric_names, metric_names

GRAFANA = REPO / "observability" / "grafana"
DASHBOARD_PATH = GRAFANA / "dashboards" / "reconciler.json"
# The same dashboard in Vietnamese: same panels and queries, titles translated.
DASHBOARD_VI_PATH = GRAFANA / "dashboards" / "reconciler.vi.json"
UIDS = {DASHBOARD_PATH: "fine-reconciler-ops", DASHBOARD_VI_PATH: "fine-reconciler-ops-vi"}


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return doc


@pytest.fixture(scope="module", params=[DASHBOARD_PATH, DASHBOARD_VI_PATH], ids=["en", "vi"])
def dashboard(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Every check below holds for both languages."""
    doc = _load(request.param)
    assert doc["uid"] == UIDS[request.param]
    return doc


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) for every panel target, annotation and variable."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield f"panel {panel['title']!r}", target["expr"]
    for annotation in dashboard["annotations"]["list"]:
        if "expr" in annotation:
            yield f"annotation {annotation['name']!r}", annotation["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable["definition"])
            assert match, f"variable {variable['name']}: unexpected query"
            yield f"variable {variable['name']!r}", match.group(1)


def exprs_of(dashboard: dict[str, Any], panel_type: str | None = None) -> list[str]:
    return [
        target["expr"]
        for panel in panels(dashboard)
        if panel_type is None or panel["type"] == panel_type
        for target in panel.get("targets", [])
    ]


def test_identity_and_datasource(dashboard: dict[str, Any]) -> None:
    datasources = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    [prometheus] = datasources["datasources"]
    assert prometheus["type"] == "prometheus"
    assert prometheus["url"] == "http://prometheus:9090"
    for panel in panels(dashboard):
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": prometheus["uid"]}


def test_panels_are_well_formed(dashboard: dict[str, Any]) -> None:
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels(dashboard):
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        assert panel["title"].strip()
        if panel["type"] != "row":
            assert panel["targets"], f"{panel['title']} has no query"
            refs = [t["refId"] for t in panel["targets"]]
            assert len(refs) == len(set(refs))


def checked_queries(dashboard: dict[str, Any]) -> int:
    """How many queries the dashboard has, each naming only known metrics."""
    allowed = allowed_metric_names()
    checked = 0
    for where, expr in queries(dashboard):
        unknown = metric_names(expr) - allowed
        assert not unknown, f"{where}: unknown metrics {sorted(unknown)} in {expr!r}"
        checked += 1
    return checked


def test_every_query_names_only_known_metrics(dashboard: dict[str, Any]) -> None:
    assert checked_queries(dashboard) > 20


@pytest.mark.parametrize(
    ("panel_type", "pattern", "what"),
    [
        ("stat", r"bank_link_up", "link status per bank"),
        ("state-timeline", r"bank_link_up", "outage timeline"),
        (None, r"bank_outages_total", "outages opened"),
        (
            "timeseries",
            r"histogram_quantile\(.*bank_request_duration_seconds_bucket",
            "bank request latency",
        ),
        ("timeseries", r"rate\(payments_total", "payments by outcome"),
        (None, r"\bpayments_in_doubt\b", "in-doubt count"),
        (None, r"payments_in_doubt_oldest_seconds", "oldest in-doubt age"),
        ("timeseries", r"histogram_quantile\(.*receipt_lag_seconds_bucket", "receipt lag"),
        (None, r"reconciliation_discrepancies", "discrepancies"),
        ("state-timeline", r"circuit_breaker_state", "circuit breaker state"),
        (
            "timeseries",
            r"http_request_duration_seconds_bucket\{route=\"/api/v1/fines/",
            "lookup SLO",
        ),
        (None, r"\bpostgres_up\b", "PostgreSQL health"),
        (None, r"outbox_dead_letters", "outbox dead letters"),
        (None, r"temporal_task_queue_backlog", "task-queue backlog"),
        (None, r"reconciliation_last_success_timestamp_seconds", "last reconciliation"),
        (None, r"ALERTS\{alertstate=\"firing\"", "firing alerts"),
    ],
)
def test_required_panel(
    dashboard: dict[str, Any], panel_type: str | None, pattern: str, what: str
) -> None:
    assert any(re.search(pattern, e) for e in exprs_of(dashboard, panel_type)), what


def test_provider_path_is_where_compose_mounts_the_dashboards() -> None:
    provider = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "reconciler.yml").read_text()
    )
    [entry] = provider["providers"]
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./observability/grafana/dashboards:{entry['options']['path']}:ro" in mounts


def test_outages_and_critical_alerts_are_annotated(dashboard: dict[str, Any]) -> None:
    exprs = [a.get("expr", "") for a in dashboard["annotations"]["list"] if a.get("enable")]
    assert any("bank_outages_total" in e for e in exprs), "outages opened"
    assert any(re.search(r'ALERTS\{.*severity="critical"', e) for e in exprs), "critical alerts"


def test_links_lead_to_the_temporal_ui_and_the_alerts(dashboard: dict[str, Any]) -> None:
    """The ports are those docker-compose.yml publishes."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    published = {
        name: [str(port).rsplit(":", 2)[-2] for port in service.get("ports", [])]
        for name, service in compose["services"].items()
    }
    urls = [link["url"] for link in dashboard["links"]]
    for service in ("temporal-ui", "prometheus", "alertmanager"):
        [port] = published[service]
        assert any(url.startswith(f"http://127.0.0.1:{port}") for url in urls), service
    assert all(link["targetBlank"] for link in dashboard["links"] if link["url"].startswith("http"))


def _shape(doc: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (p["id"], p["type"], p["gridPos"], [t["expr"] for t in p.get("targets", [])])
        for p in panels(doc)
    ]


def test_the_vietnamese_dashboard_is_the_english_one_translated() -> None:
    """Same panels, places and queries (they cannot drift apart); every
    title translated; each links to the other, keeping time and bank."""
    en, vi = _load(DASHBOARD_PATH), _load(DASHBOARD_VI_PATH)
    assert _shape(vi) == _shape(en)
    assert [a.get("expr") for a in vi["annotations"]["list"]] == [
        a.get("expr") for a in en["annotations"]["list"]
    ]
    same = [
        p["title"] for p, q in zip(panels(en), panels(vi), strict=True) if p["title"] == q["title"]
    ]
    assert not same, f"not translated: {same}"
    untranslated = [
        p["id"]
        for p, q in zip(panels(en), panels(vi), strict=True)
        if p.get("description") and p["description"] == q.get("description")
    ]
    assert not untranslated, f"descriptions not translated: {untranslated}"
    assert vi["title"] != en["title"]
    for doc, other in ((en, vi), (vi, en)):
        [link] = [link for link in doc["links"] if link["url"] == f"/d/{other['uid']}"]
        assert link["keepTime"]
        assert link["includeVars"]
