"""A bank link drops and a person is told: the real link prober sees the
simulator's link go down, a real Prometheus (Debian ``prometheus``) scrapes the
service's /metrics and fires ``BankLinkDown`` from the rule in alerts.yml, a
real Alertmanager (Debian ``prometheus-alertmanager``) routes it with
alertmanager.yml to the service's own receiver, and operators read it on
``GET /api/v1/alerts``. Inhibition is checked on the same Alertmanager.

Only timings are shortened (scrape and evaluation every second, the rule's
``for`` and the routes' waits one second); expressions, labels and routing
are the repository's files.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.outages import PostgresOutageStore
from observability.prober import LinkProber, ProberConfig
from reconciler.api.alerts import WEBHOOK_PATH
from reconciler.devstack.ports import free_port
from reconciler.devstack.temporal import TemporalInfo
from reconciler.prober import health_check
from tests.support.stack import SagaStack, eventually, saga_stack

REPO = Path(__file__).resolve().parents[2]
BANK = "sgbank"
OTHER = "hnbank"
FIRE_SECONDS_MAX = 120.0


def _tool(*names: str) -> str:
    for name in names:
        if path := shutil.which(name):
            return path
    pytest.fail(f"{names[0]} is not installed: run scripts/install-system-tools.sh")


def _rules(tmp: Path) -> Path:
    """alerts.yml's BankLinkDown, as it is but for a one-second ``for``."""
    doc = yaml.safe_load((REPO / "observability/prometheus/alerts.yml").read_text())
    [rule] = [r for g in doc["groups"] for r in g["rules"] if r.get("alert") == "BankLinkDown"]
    rule["for"] = "1s"
    path = tmp / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "e2e", "rules": [rule]}]}))
    return path


def _alertmanager_config(tmp: Path, api_url: str, secret: str) -> Path:
    doc = yaml.safe_load((REPO / "observability/alertmanager/alertmanager.yml").read_text())
    token = tmp / "webhook-token"
    token.write_text(secret)
    for receiver in doc["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = api_url + WEBHOOK_PATH
            hook["http_config"]["authorization"]["credentials_file"] = str(token)
    for route in [doc["route"], *doc["route"]["routes"]]:
        route.update(group_wait="1s", group_interval="1s")
    path = tmp / "alertmanager.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _prometheus_config(tmp: Path, api_url: str, am_port: int) -> Path:
    target = api_url.removeprefix("http://")
    doc = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(_rules(tmp))],
        "alerting": {
            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
        },
        "scrape_configs": [
            {"job_name": "reconciler-api", "static_configs": [{"targets": [target]}]}
        ],
    }
    path = tmp / "prometheus.yml"
    path.write_text(yaml.safe_dump(doc))
    return path


@contextlib.contextmanager
def _process(argv: list[str], log: Path) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.asynccontextmanager
async def _prober(stack: SagaStack) -> AsyncIterator[None]:
    adapters = stack.activities._adapters
    prober = LinkProber(
        {bank: health_check(adapter) for bank, adapter in adapters.items()},
        PostgresOutageStore(stack.engine),
        config=ProberConfig(interval_seconds=0.2, failures_to_down=2, successes_to_up=2),
    )
    task = asyncio.create_task(prober.run())
    try:
        yield
    finally:
        prober.stop()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, 10)


async def _received(stack: SagaStack, name: str, bank: str) -> dict[str, Any] | None:
    status, body = await stack.call("GET", "/api/v1/alerts?status=firing")
    assert status == 200, body
    for alert in body["alerts"]:
        if alert["alertname"] == name and alert["bank"] == bank:
            return dict(alert)
    return None


async def _post_to_alertmanager(stack: SagaStack, am_url: str, name: str, bank: str) -> None:
    labels = {"alertname": name, "bank": bank, "severity": "warning", "team": "operators"}
    alert = {"labels": labels, "annotations": {"summary": f"{name} {bank} (e2e)"}}
    async with stack.session.post(f"{am_url}/api/v2/alerts", json=[alert]) as resp:
        assert resp.status == 200, await resp.text()


async def _inhibited_by(stack: SagaStack, am_url: str, name: str, bank: str) -> list[str]:
    query = f'?filter=alertname="{name}"&filter=bank="{bank}"'
    async with stack.session.get(f"{am_url}/api/v2/alerts{query}") as resp:
        alerts = json.loads(await resp.text())
    return [fp for a in alerts for fp in a["status"]["inhibitedBy"]]


async def test_a_bank_link_drop_reaches_the_services_alert_receiver(
    tmp_path: Path,
    engine: AsyncEngine,
    db_url: str,
    temporal_server: TemporalInfo,
    task_queue: str,
) -> None:
    prometheus, alertmanager = _tool("prometheus"), _tool("prometheus-alertmanager", "alertmanager")
    secret = secrets.token_urlsafe(24)
    am_port, prom_port = free_port(), free_port()
    am_url = f"http://127.0.0.1:{am_port}"
    async with (
        saga_stack(
            tmp_path,
            engine,
            db_url,
            temporal_server.address,
            task_queue,
            alert_webhook_token=secret,
        ) as stack,
        _prober(stack),
    ):
        am_config = _alertmanager_config(tmp_path, stack.api_url, secret)
        prom_config = _prometheus_config(tmp_path, stack.api_url, am_port)
        am_argv = [
            alertmanager,
            f"--config.file={am_config}",
            f"--storage.path={tmp_path / 'am'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ]
        prom_argv = [
            prometheus,
            f"--config.file={prom_config}",
            f"--storage.tsdb.path={tmp_path / 'prom'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ]
        with (
            _process(am_argv, tmp_path / "alertmanager.log"),
            _process(prom_argv, tmp_path / "prometheus.log"),
        ):
            await stack.admins[BANK].add_fault("link_down")
            alert = await eventually(
                lambda: _received(stack, "BankLinkDown", BANK),
                FIRE_SECONDS_MAX,
                "BankLinkDown to reach the service's receiver",
            )
            assert alert["severity"] == "critical"
            assert alert["team"] == "operators"
            assert alert["receiver"] == "operators-page"
            assert alert["annotations"]["runbook_url"] == "docs/runbook.md#banklinkdown"
            # The bank whose link is up raised nothing.
            assert await _received(stack, "BankLinkDown", OTHER) is None

            # Inhibition: the down bank's payment alerts stay quiet, the
            # other bank's go through.
            for bank in (BANK, OTHER):
                await _post_to_alertmanager(stack, am_url, "PaymentsInDoubtTooLong", bank)
            await eventually(
                lambda: _received(stack, "PaymentsInDoubtTooLong", OTHER),
                FIRE_SECONDS_MAX,
                "the other bank's payment alert to be delivered",
            )
            assert await _inhibited_by(stack, am_url, "PaymentsInDoubtTooLong", BANK)
            assert not await _inhibited_by(stack, am_url, "PaymentsInDoubtTooLong", OTHER)
            assert await _received(stack, "PaymentsInDoubtTooLong", BANK) is None
            await stack.admins[BANK].clear_faults()
