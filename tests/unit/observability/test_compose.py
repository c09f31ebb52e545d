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


# ${VAR:?message}: required, docker-compose refuses to start without it.
REQUIRED = re.compile(r"\$\{(\w+):\?([^}]*)\}")
ANY_VARIABLE = re.compile(r"\$\{?(\w+)")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|KEY|PWD|TOKEN")
# File paths, not secrets, though their names say KEY.
KEY_FILE = re.compile(r"^/etc/[\w/.-]+\.pem$")


def _interpolate(value: str) -> str:
    """Compose's ${VAR:-default} and ${VAR:?message}, every variable unset
    (a required one reads as <VAR>)."""
    value = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)
    return REQUIRED.sub(lambda found: f"<{found.group(1)}>", value)


def volumes(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of each volume, short or long syntax."""
    found = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            found.append((_interpolate(str(volume["source"])), str(volume["target"])))
        else:
            source, target = str(volume).split(":")[:2]
            found.append((source, target))
    return found


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
            source
            for source, mounted_at in volumes(services[name])
            if mounted_at == target and not source.startswith((".", "$"))
        ]
        assert named, f"{name}: {target} is not on a volume"
        assert named[0] in declared, f"{name}: {named[0]} is not a declared named volume"


def test_bind_mounts_exist_in_the_repository(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for source, _target in volumes(service):
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
    # The simulator signs with what the API checks (from the environment:
    # a command line is visible to `ps`).
    assert "--webhook-secret" not in services["sim-rest"]["command"]
    secret = env(services["sim-rest"])["RECONCILER_SIM_WEBHOOK_SECRET"]
    assert secret == parsed["sgbank"].webhook_secret == "<SGBANK_WEBHOOK_SECRET>"


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


def _secret_values(services: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, raw value) of everything in the file that carries a secret."""
    found: list[tuple[str, str]] = []
    for name, service in services.items():
        for key, value in service.get("environment", {}).items():
            if SECRET_NAME.search(key) and not KEY_FILE.match(str(value)):
                found.append((f"{name}.{key}", str(value)))
        found += [
            (f"{name}.webhook_secret", v)
            for v in re.findall(r'"webhook_secret": "([^"]*)"', str(service.get("environment")))
        ]
    return found


def test_no_secret_has_a_default(services: dict[str, Any]) -> None:
    """Every secret is a required variable: unset, docker-compose refuses to
    start and says what to set (the stack used to start with published
    defaults, and anyone knowing the webhook one could sign a callback)."""
    values = _secret_values(services)
    assert len(values) >= 10
    for where, value in values:
        required = REQUIRED.findall(value)
        assert required, f"{where} is not a required variable: {value}"
        for variable, message in required:
            assert SECRET_NAME.search(variable), where
            assert len(message.strip()) >= 10, f"{where}: say what to set for {variable}"
    text = (REPO / "docker-compose.yml").read_text()
    for variable in set(ANY_VARIABLE.findall(text)):
        if SECRET_NAME.search(variable):
            assert not re.search(rf"\$\{{{variable}:?-", text), f"{variable} has a default"


def test_env_example_names_every_required_variable_and_no_secret() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    required = {variable for variable, _ in REQUIRED.findall(text)}
    assert required >= {
        "POSTGRES_PASSWORD",
        "APP_DB_PASSWORD",
        "SGBANK_WEBHOOK_SECRET",
        "GRAFANA_ADMIN_PASSWORD",
        "RECEIPT_SIGNING_KEY",
        "RECEIPT_PUBLIC_KEYS",
        "RECEIPT_LINK_KEY",
        "AUDIT_KEY",
        "ALERT_WEBHOOK_TOKEN",
        "TLS_DIR",
    }
    example = dict(
        line.split("=", 1)
        for line in (REPO / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert set(example) == required
    # Empty, so that copying the file unchanged still refuses to start.
    assert all(value == "" for value in example.values())


def test_the_app_runs_in_production_as_its_own_database_role(services: dict[str, Any]) -> None:
    for name in APP_SERVICES - {"migrate"}:
        settings = env(services[name])
        assert settings["RECONCILER_ENV"] == "production"
        assert urlsplit(settings["RECONCILER_DATABASE_URL"]).username == "reconciler_app", name
    migrate = env(services["migrate"])
    assert urlsplit(migrate["RECONCILER_DATABASE_URL"]).username == "reconciler"
    assert migrate["RECONCILER_DB_APP_ROLE"] == "reconciler_app"
    assert migrate["RECONCILER_DB_APP_PASSWORD"] == "<APP_DB_PASSWORD>"
    assert urlsplit(env(services["api"])["RECONCILER_DATABASE_URL"]).password == "<APP_DB_PASSWORD>"


def test_the_private_receipt_key_is_in_the_worker_only(services: dict[str, Any]) -> None:
    holders = [
        name
        for name, service in services.items()
        if "RECONCILER_RECEIPT_SIGNING_KEY_B64" in service.get("environment", {})
    ]
    assert holders == ["worker"]
    assert env(services["api"])["RECONCILER_RECEIPT_PUBLIC_KEYS"] == "<RECEIPT_PUBLIC_KEYS>"
    assert env(services["worker"])["RECONCILER_AUDIT_KEY"] == "<AUDIT_KEY>"
    assert "RECONCILER_AUDIT_KEY" not in services["api"]["environment"]


def test_temporal_requires_client_certificates(services: dict[str, Any]) -> None:
    settings = env(services["temporal"])
    assert settings["TEMPORAL_TLS_REQUIRE_CLIENT_AUTH"] == "true"
    mounted = dict((target, source) for source, target in volumes(services["temporal"]))
    assert mounted["/etc/temporal/tls"] == "<TLS_DIR>/temporal"
    for variable in (
        "TEMPORAL_TLS_SERVER_CERT",
        "TEMPORAL_TLS_SERVER_KEY",
        "TEMPORAL_TLS_SERVER_CA_CERT",
        "TEMPORAL_TLS_FRONTEND_CERT",
        "TEMPORAL_TLS_FRONTEND_KEY",
        "TEMPORAL_TLS_CLIENT1_CA_CERT",
    ):
        assert settings[variable].startswith("/etc/temporal/tls/"), variable
    assert settings["TEMPORAL_TLS_FRONTEND_SERVER_NAME"] == "temporal"
    # Its own CLI (namespace setup, health check) presents a certificate too.
    assert settings["TEMPORAL_TLS_CERT"].startswith("/etc/temporal/tls/")
    assert "tctl" not in " ".join(services["temporal"]["healthcheck"]["test"])


def test_no_plain_temporal_port_reaches_the_host(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for mapping in service.get("ports", []):
            if str(mapping).endswith(":7233"):
                assert name == "temporal"
                assert env(service)["TEMPORAL_TLS_REQUIRE_CLIENT_AUTH"] == "true"


def test_the_temporal_ui_is_read_only_with_its_own_certificate(services: dict[str, Any]) -> None:
    ui = services["temporal-ui"]
    settings = env(ui)
    assert settings["TEMPORAL_DISABLE_WRITE_ACTIONS"] == "true"
    assert settings["TEMPORAL_TLS_ENABLE_HOST_VERIFICATION"] == "true"
    mounted = dict((target, source) for source, target in volumes(ui))
    assert mounted["/etc/temporal-ui/tls"] == "<TLS_DIR>/temporal-ui"
    for variable in ("TEMPORAL_TLS_CA", "TEMPORAL_TLS_CERT", "TEMPORAL_TLS_KEY"):
        assert settings[variable].startswith("/etc/temporal-ui/tls/"), variable


def test_app_processes_reach_temporal_over_mutual_tls(services: dict[str, Any]) -> None:
    for name in ("api", "worker", "prober"):
        settings = env(services[name])
        mounted = dict((target, source) for source, target in volumes(services[name]))
        assert mounted["/etc/reconciler/tls"] == "<TLS_DIR>/app", name
        for variable in ("CA", "CERT", "KEY"):
            path = settings[f"RECONCILER_TEMPORAL_TLS_{variable}_PATH"]
            assert path.startswith("/etc/reconciler/tls/"), (name, variable)
        assert settings["RECONCILER_TEMPORAL_TLS_SERVER_NAME"] == "temporal"


def test_postgres_archives_its_wal_into_its_own_volume(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    """The same never-overwrite archive command as the embedded stack's,
    into a named volume (compose writes a literal $ as $$)."""
    from pathlib import Path

    from reconciler.devstack.postgres import archive_command

    archive = "/var/lib/postgresql/wal-archive"
    postgres = services["postgres"]
    settings = dict(arg.split("=", 1) for arg in postgres["command"][1:] if arg != "-c")
    assert settings["archive_mode"] == "on"
    assert settings["archive_command"].replace("$$", "$") == archive_command(Path(archive))
    assert ("postgres-wal-archive", archive) in volumes(postgres)
    assert "postgres-wal-archive" in compose["volumes"]
    # The archive is made the server's before the image's own entrypoint runs.
    assert f"-o postgres -g postgres -m 0700 {archive}" in postgres["entrypoint"][2]
    assert postgres["entrypoint"][2].endswith('exec docker-entrypoint.sh "$$@"')
