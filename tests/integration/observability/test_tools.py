"""The alert rules, Prometheus config and compose file through the real tools.

promtool and docker-compose are installed by scripts/install-system-tools.sh
(run by scripts/test); a missing tool is a failure, not a skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.compose import REQUIRED_VARIABLES, compose_config

REPO = Path(__file__).resolve().parents[3]
PROMETHEUS_DIR = REPO / "observability" / "prometheus"
TOOL_TIMEOUT_SECONDS = 120


def run_tool(*argv: str, expect_failure: bool = False) -> subprocess.CompletedProcess[str]:
    tool = shutil.which(argv[0])
    if tool is None:
        pytest.fail(f"{argv[0]} is not installed: run scripts/install-system-tools.sh")
    result = subprocess.run(
        [tool, *argv[1:]],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_SECONDS,
        check=False,
    )
    if expect_failure:
        assert result.returncode != 0, f"{' '.join(argv)} succeeded\n{result.stdout}"
        return result
    assert result.returncode == 0, (
        f"{' '.join(argv)} exited {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return result


def test_promtool_check_rules() -> None:
    result = run_tool("promtool", "check", "rules", str(PROMETHEUS_DIR / "alerts.yml"))
    assert "SUCCESS" in result.stdout


def test_promtool_check_config() -> None:
    result = run_tool("promtool", "check", "config", str(PROMETHEUS_DIR / "prometheus.yml"))
    assert "SUCCESS" in result.stdout


def test_promtool_test_rules() -> None:
    result = run_tool("promtool", "test", "rules", str(PROMETHEUS_DIR / "alerts_test.yml"))
    assert "SUCCESS" in result.stdout


def test_docker_compose_config(tmp_path: Path) -> None:
    """With every required variable set (tests/integration/observability/
    test_compose_secrets.py: and with one missing)."""
    result = compose_config(tmp_path, REQUIRED_VARIABLES)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""
