"""Running ``docker-compose config`` on the repository's file with chosen
variables, and nothing else: no .env of the checkout, no variable of the
shell that runs the tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TOOL_TIMEOUT_SECONDS = 120
# Test values for every required variable (not secrets: nothing runs).
REQUIRED_VARIABLES = {
    "POSTGRES_PASSWORD": "test-postgres-password",
    "APP_DB_PASSWORD": "test-app-password",
    "SGBANK_WEBHOOK_SECRET": "test-webhook-secret",
    "GRAFANA_ADMIN_PASSWORD": "test-grafana-password",
    "RECEIPT_SIGNING_KEY": "test-signing-key",
    "RECEIPT_PUBLIC_KEYS": '["test-public-key"]',
    "RECEIPT_LINK_KEY": "test-link-key",
    "AUDIT_KEY": "test-audit-key",
    "ALERT_WEBHOOK_TOKEN": "test-alert-webhook-token",
    "TLS_DIR": "/srv/tls",
}


def compose_config(tmp_path: Path, variables: dict[str, str]) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.fail("docker-compose is not installed: run scripts/install-system-tools.sh")
    empty = tmp_path / "empty.env"
    empty.write_text("")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), **variables}
    return subprocess.run(
        [tool, "--env-file", str(empty), "-f", str(REPO / "docker-compose.yml"), "config", "-q"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_SECONDS,
        check=False,
    )
