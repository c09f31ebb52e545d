"""docker-compose.yml read as data: every service of the stack, health checks,
named volumes, pinned images, and wiring that agrees with prometheus.yml and
the application's settings. (`docker-compose config` runs in integration.)"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from reconciler.settings import BankSettings
from tests.unit.observability.promql import REPO

APP_SERVICES = {"migrate", "api", "worker", "prober", "sim-rest", "sim-vietqr"}
INFRA_SERVICES = {"postgres", "temporal", "temporal-ui", "prometheus", "grafana"}
STATEFUL = {
    "postgres": "/var/lib/postgresql/data",
    "prometheus": "/prometheus",
    "grafana": "/var/lib/grafana",
    "sim-rest": "/data",
    "sim-vietqr": "/data",
    "api": "/data",
    "worker": "/data",
}


def _interpolate(value: str) -> str:
    """Compose's ${VAR:-default}, with every variable unset."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    return doc


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = compose["services"]
    return result


@pytest.fixture(scope="module")
def prometheus_targets() -> dict[str, list[str]]:
    config = yaml.safe_load((REPO / "observability/prometheus/prometheus.yml").read_text())
    return {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }


def env(service: dict[str, Any]) -> dict[str, str]:
    return {k: _interpolate(str(v)) for k, v in service.get("environment", {}).items()}


def test_every_service_is_present(services: dict[str, Any]) -> None:
    assert set(services) >= APP_SERVICES | INFRA_SERVICES


def test_long_running_services_have_health_checks(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if name == "migrate":
            continue
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert check["test"], f"{name} has an empty healthcheck"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name} healthcheck lacks {key}"


def test_images_are_pinned(services: dict[str, Any]) -> None:
    for name, service in services.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository, f"{name}: {image} has no tag"
        assert tag != "latest", f"{name}: {image} is not pinned"
        assert re.search(r"\d", tag), f"{name}: {image} tag has no version"


def test_app_services_share_one_built_image(services: dict[str, Any]) -> None:
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1
    for name in APP_SERVICES:
        assert services[name]["build"]["context"] == "."
    assert (REPO / services["api"]["build"]["dockerfile"]).is_file()


@pytest.mark.parametrize(
    ("name", "command"),
    [
        ("migrate", ["reconciler", "migrate"]),
        ("api", ["reconciler", "api"]),
        ("worker", ["reconciler", "worker"]),
        ("prober", ["reconciler", "prober"]),
    ],
)
def test_app_commands(services: dict[str, Any], name: str, command: list[str]) -> None:
    assert services[name]["command"] == command


@pytest.mark.parametrize(("name", "protocol"), [("sim-rest", "rest"), ("sim-vietqr", "vietqr")])
def test_simulators(services: dict[str, Any], name: str, protocol: str) -> None:
    command = services[name]["command"]
    assert command[:2] == ["reconciler", "sim"]
    assert command[command.index("--protocol") + 1] == protocol


def test_migrate_runs_once_before_the_app(services: dict[str, Any]) -> None:
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker", "prober"):
        dependency = services[name]["depends_on"]["migrate"]
        assert dependency["condition"] == "service_completed_successfully", name
        assert services[name]["depends_on"]["temporal"]["condition"] == "service_healthy"


def test_workers_do_not_wait_for_banks(services: dict[str, Any]) -> None:
    for name in ("api", "worker", "prober"):
        assert not set(services[name]["depends_on"]) & {"sim-rest", "sim-vietqr"}


def test_state_lives_in_named_volumes(compose: dict[str, Any], services: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    for name, target in STATEFUL.items():
        named = [
            v.split(":")[0]
            for v in services[name].get("volumes", [])
            if v.split(":")[1] == target and not v.startswith(".")
        ]
        assert named, f"{name}: {target} is not on a volume"
        assert named[0] in declared, f"{name}: {named[0]} is not a declared named volume"


def test_bind_mounts_exist_in_the_repository(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name}: {source} missing"


def test_prometheus_gets_config_and_rules(services: dict[str, Any]) -> None:
    volumes = services["prometheus"]["volumes"]
    assert "./observability/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in volumes
    assert "./observability/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in volumes
    assert "--config.file=/etc/prometheus/prometheus.yml" in services["prometheus"]["command"]


def test_grafana_is_provisioned(services: dict[str, Any]) -> None:
    volumes = services["grafana"]["volumes"]
    assert "./observability/grafana/provisioning:/etc/grafana/provisioning:ro" in volumes


def test_temporal_runs_on_postgres_with_metrics(
    services: dict[str, Any], prometheus_targets: dict[str, list[str]]
) -> None:
    temporal = services["temporal"]
    assert temporal["image"].startswith("temporalio/auto-setup:")
    settings = env(temporal)
    assert settings["DB"] == "postgres12"
    assert settings["POSTGRES_SEEDS"] == "postgres"
    port = settings["PROMETHEUS_ENDPOINT"].rpartition(":")[2]
    assert prometheus_targets["temporal"] == [f"temporal:{port}"]
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"


def test_app_settings_point_at_compose_services(services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        settings = env(services[name])
        database = urlsplit(settings["RECONCILER_DATABASE_URL"])
        assert database.scheme == "postgresql+psycopg"
        assert database.hostname == "postgres"
        assert settings["RECONCILER_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert settings["RECONCILER_API_HOST"] == "0.0.0.0"


def test_banks_setting_names_both_simulators(services: dict[str, Any]) -> None:
    banks = json.loads(env(services["api"])["RECONCILER_BANKS"])
    assert set(banks) == {"sgbank", "hnbank"}
    parsed = {bank: BankSettings.model_validate(value) for bank, value in banks.items()}
    assert parsed["sgbank"].protocol == "rest"
    assert parsed["hnbank"].protocol == "vietqr"
    for bank, simulator in (("sgbank", "sim-rest"), ("hnbank", "sim-vietqr")):
        command = services[simulator]["command"]
        for url, flag in ((parsed[bank].url, "--port"), (parsed[bank].admin_url, "--admin-port")):
            assert url is not None
            split = urlsplit(url)
            assert split.hostname == simulator
            assert str(split.port) == command[command.index(flag) + 1]
        assert command[command.index("--bank") + 1] == bank
    webhook_command = services["sim-rest"]["command"]
    secret = _interpolate(webhook_command[webhook_command.index("--webhook-secret") + 1])
    assert secret == parsed["sgbank"].webhook_secret


@pytest.mark.parametrize(
    ("name", "job", "port_variable"),
    [
        ("api", "reconciler-api", "RECONCILER_API_PORT"),
        ("worker", "reconciler-worker", "RECONCILER_WORKER_METRICS_PORT"),
        ("prober", "reconciler-prober", "RECONCILER_PROBER_METRICS_PORT"),
    ],
)
def test_prometheus_scrapes_each_app_process(
    services: dict[str, Any],
    prometheus_targets: dict[str, list[str]],
    name: str,
    job: str,
    port_variable: str,
) -> None:
    port = env(services[name])[port_variable]
    assert prometheus_targets[job] == [f"{name}:{port}"]
    assert f"127.0.0.1:{port}/healthz" in " ".join(services[name]["healthcheck"]["test"])


def test_published_ports_are_loopback_only(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for mapping in service.get("ports", []):
            assert str(mapping).startswith("127.0.0.1:"), f"{name}: {mapping}"


def test_secrets_are_dev_placeholders(services: dict[str, Any]) -> None:
    values: list[str] = []
    for service in services.values():
        for key, value in service.get("environment", {}).items():
            if re.search(r"PASSWORD|SECRET|PWD", key):
                values.append(str(value))
        command = service.get("command", [])
        values += [command[i + 1] for i, arg in enumerate(command) if "secret" in arg]
        values += re.findall(r'"webhook_secret": "([^"]*)"', str(service.get("environment")))
    assert len(values) >= 5
    for value in values:
        assert "dev-only" in _interpolate(value), value
