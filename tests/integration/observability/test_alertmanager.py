"""The Alertmanager config through the real amtool: it loads, and alerts go
to the right team's receiver by severity.

amtool is installed by scripts/install-system-tools.sh (Debian package
prometheus-alertmanager); a missing tool is a failure, not a skip.
"""

from __future__ import annotations

import pytest

from tests.integration.observability.test_tools import REPO, run_tool

CONFIG = REPO / "observability" / "alertmanager" / "alertmanager.yml"


def test_amtool_check_config() -> None:
    result = run_tool("amtool", "check-config", str(CONFIG))
    assert "SUCCESS" in result.stdout
    assert "4 receivers" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (
            ["alertname=BankLinkDown", "severity=critical", "team=operators", "bank=sgbank"],
            "operators-page",
        ),
        (
            ["alertname=BankLinkFlapping", "severity=warning", "team=operators", "bank=hnbank"],
            "operators",
        ),
        (
            ["alertname=ReconcilerWorkerDown", "severity=critical", "team=operators"],
            "operators-page",
        ),
        (
            ["alertname=ReconciliationDiscrepanciesOpen", "severity=warning", "team=finance"],
            "finance",
        ),
        (["alertname=IntegrityCheckFailed", "severity=critical", "team=finance"], "finance-page"),
        (["alertname=DisputeOpenTooLong", "severity=warning", "team=finance"], "finance"),
        # An alert someone forgot to label still reaches a person.
        (["alertname=Unlabelled"], "operators"),
    ],
)
def test_amtool_routes(labels: list[str], receiver: str) -> None:
    run_tool(
        "amtool",
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        f"--verify.receivers={receiver}",
        *labels,
    )


def test_amtool_routes_test_can_fail() -> None:
    """The routing check above is a real check: a wrong receiver fails."""
    result = run_tool(
        "amtool",
        "config",
        "routes",
        "test",
        f"--config.file={CONFIG}",
        "--verify.receivers=operators-page",
        "alertname=DisputeOpenTooLong",
        "severity=warning",
        "team=finance",
        expect_failure=True,
    )
    assert "finance" in result.stdout + result.stderr
