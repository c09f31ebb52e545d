"""Static checks of the alert rules: labels, runbook links, metric names, and
that alerts_test.yml covers every alert both firing and not firing. The
rules' behaviour itself is tested by promtool (tests/integration/observability)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from tests.unit.observability.promql import ALERTS_PATH, REPO, allowed_metric_names, metric_names

RUNBOOK = REPO / "docs" / "runbook.md"
REQUIRED_ALERTS = {
    "BankLinkDown",
    "PaymentsInDoubtTooLong",
    "ReceiptLagHigh",
    "ReconciliationDiscrepanciesOpen",
    "PaymentSuccessBurnRateFast",
    "PaymentSuccessBurnRateSlow",
    "ReconcilerWorkerDown",
    "ReconcilerProberDown",
}


def _rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(ALERTS_PATH.read_text())
    return [rule for group in doc["groups"] for rule in group["rules"]]


ALERTS = [rule for rule in _rules() if "alert" in rule]


def github_anchors(markdown: str) -> set[str]:
    anchors = set()
    for line in markdown.splitlines():
        if match := re.match(r"#{1,6}\s+(.*)", line):
            slug = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def test_required_alerts_exist() -> None:
    names = [rule["alert"] for rule in ALERTS]
    assert len(names) == len(set(names))
    assert set(names) >= REQUIRED_ALERTS


@pytest.mark.parametrize("rule", ALERTS, ids=lambda rule: rule["alert"])
def test_alert_has_severity_and_runbook(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in {"critical", "warning"}
    annotations = rule["annotations"]
    assert annotations["summary"].strip()
    assert annotations["description"].strip()
    prefix = "docs/runbook.md#"
    assert annotations["runbook_url"].startswith(prefix)
    anchor = annotations["runbook_url"].removeprefix(prefix)
    assert anchor == rule["alert"].lower()
    assert anchor in github_anchors(RUNBOOK.read_text(encoding="utf-8"))


@pytest.mark.parametrize("rule", _rules(), ids=lambda rule: rule.get("alert", rule.get("record")))
def test_rule_names_only_known_metrics(rule: dict[str, Any]) -> None:
    unknown = metric_names(rule["expr"]) - allowed_metric_names()
    assert not unknown, f"unknown metrics {sorted(unknown)}"


def test_link_down_and_burn_rate_rules_are_as_specified() -> None:
    by_name = {rule["alert"]: rule for rule in ALERTS}
    assert by_name["BankLinkDown"]["for"] == "1m"
    fast = by_name["PaymentSuccessBurnRateFast"]["expr"]
    assert "ratio_rate1h > (14.4 * 0.01)" in fast
    assert "ratio_rate5m > (14.4 * 0.01)" in fast
    slow = by_name["PaymentSuccessBurnRateSlow"]["expr"]
    assert "ratio_rate6h > (6 * 0.01)" in slow
    assert "ratio_rate30m > (6 * 0.01)" in slow


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    tests = yaml.safe_load((ALERTS_PATH.parent / "alerts_test.yml").read_text())
    assert tests["rule_files"] == [ALERTS_PATH.name]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in ALERTS}
    assert names - firing == set(), "alerts without a firing test"
    assert names - quiet == set(), "alerts without a not-firing test"


def test_runbook_has_no_section_for_a_removed_alert() -> None:
    names = {rule["alert"].lower() for rule in ALERTS}
    text = RUNBOOK.read_text(encoding="utf-8")
    alert_sections = {
        m.group(1).lower() for m in re.finditer(r"^## ([A-Z][A-Za-z]+)\s*$", text, re.MULTILINE)
    }
    assert alert_sections <= names
