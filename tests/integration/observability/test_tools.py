"""The alert rules, Prometheus config and compose file through the real tools.

promtool and docker-compose are installed by scripts/install-system-tools.sh
(run by scripts/test); a missing tool is a failure, not a skip.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

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


PROMTOOL_PROCESSES = 2  # this machine's cores: promtool runs one test group at a time
_DURATION = re.compile(r"(\d+)([smhd])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def eval_seconds(group: dict[str, Any]) -> int:
    """How far a test group's clock runs: its longest eval_time, the cost
    that grows with it (promtool evaluates every rule at each interval)."""
    longest = 0
    for case in group.get("alert_rule_test", []) + group.get("promql_expr_test", []):
        seconds = sum(int(n) * _SECONDS[u] for n, u in _DURATION.findall(str(case["eval_time"])))
        longest = max(longest, seconds)
    return longest


def split_groups(groups: list[dict[str, Any]], parts: int) -> list[list[dict[str, Any]]]:
    """Longest first, each group to the lightest part: parts of about equal cost."""
    shares: list[list[dict[str, Any]]] = [[] for _ in range(parts)]
    costs = [0] * parts
    for group in sorted(groups, key=eval_seconds, reverse=True):
        lightest = costs.index(min(costs))
        shares[lightest].append(group)
        costs[lightest] += eval_seconds(group) or 1
    return [share for share in shares if share]


def test_promtool_test_rules(tmp_path: Path) -> None:
    """``promtool test rules observability/prometheus/alerts_test.yml``, its
    test groups split over two promtool processes run side by side (one
    process took ~23 s of the suite's 10-minute budget)."""
    tool = shutil.which("promtool")
    if tool is None:
        pytest.fail("promtool is not installed: run scripts/install-system-tools.sh")
    suite = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text(encoding="utf-8"))
    rule_files = [str(PROMETHEUS_DIR / name) for name in suite["rule_files"]]
    shares = split_groups(suite["tests"], PROMTOOL_PROCESSES)
    assert sum(len(share) for share in shares) == len(suite["tests"])
    running = []
    for i, share in enumerate(shares):
        part = tmp_path / f"alerts_test_{i}.yml"
        part.write_text(yaml.safe_dump({**suite, "rule_files": rule_files, "tests": share}))
        running.append(
            subprocess.Popen(
                [tool, "test", "rules", str(part)],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    try:
        for proc in running:
            out, _ = proc.communicate(timeout=TOOL_TIMEOUT_SECONDS)
            assert proc.returncode == 0, out
            assert "SUCCESS" in out, out
    finally:
        for proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()


def test_promtool_test_rules_fails_on_a_wrong_expectation(tmp_path: Path) -> None:
    """The split run above must be able to fail: the first group with an
    alert expectation, its expected alerts turned into none, is refused."""
    suite = yaml.safe_load((PROMETHEUS_DIR / "alerts_test.yml").read_text(encoding="utf-8"))
    group = next(
        g
        for g in suite["tests"]
        if any(case.get("exp_alerts") for case in g.get("alert_rule_test", []))
    )
    for case in group["alert_rule_test"]:
        if case.get("exp_alerts"):
            case["exp_alerts"] = []
            break
    part = tmp_path / "wrong.yml"
    rule_files = [str(PROMETHEUS_DIR / name) for name in suite["rule_files"]]
    part.write_text(yaml.safe_dump({**suite, "rule_files": rule_files, "tests": [group]}))
    run_tool("promtool", "test", "rules", str(part), expect_failure=True)


def test_docker_compose_config(tmp_path: Path) -> None:
    """With every required variable set (tests/integration/observability/
    test_compose_secrets.py: and with one missing)."""
    result = compose_config(tmp_path, REQUIRED_VARIABLES)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""
