"""Production refuses published and short secrets, naming the setting; dev
mode (``reconciler dev``, the test stacks) does not care."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import SecretStr, ValidationError

from reconciler.cli.main import main
from reconciler.secret_rules import KNOWN_DEV_SECRETS, SECRET_BYTES_MIN, secret_problem
from reconciler.settings import Settings

STRONG = secrets.token_urlsafe(32)
# What docker-compose.yml used to start with when the environment was unset.
OLD_COMPOSE_DEFAULTS = (
    "reconciler-dev-only",
    "sgbank-webhook-dev-only",
    "admin-dev-only",
    "alert-webhook-dev-only",
)


def _bank(secret: str) -> dict[str, Any]:
    return {"sgbank": {"protocol": "rest", "url": "http://sim:9001", "webhook_secret": secret}}


def _refusal(**values: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        Settings(**values)
    return str(caught.value)


def test_production_is_the_default() -> None:
    assert Settings().env == "production"


@pytest.mark.parametrize("value", [*OLD_COMPOSE_DEFAULTS, "x" * 31, "change-me-" + "x" * 40])
def test_production_refuses_a_weak_webhook_secret(value: str) -> None:
    message = _refusal(banks=_bank(value))
    assert "RECONCILER_BANKS[sgbank].webhook_secret" in message


@pytest.mark.parametrize(
    ("field", "variable"),
    [
        ("audit_key", "RECONCILER_AUDIT_KEY"),
        ("receipt_link_key", "RECONCILER_RECEIPT_LINK_KEY"),
        ("db_app_password", "RECONCILER_DB_APP_PASSWORD"),
        ("alert_webhook_token", "RECONCILER_ALERT_WEBHOOK_TOKEN"),
    ],
)
@pytest.mark.parametrize(
    "value", ["short", "sgbank-webhook-dev-only", "alert-webhook-dev-only", "a" * 20 + "dev-only"]
)
def test_production_refuses_weak_keys_naming_them(field: str, variable: str, value: str) -> None:
    message = _refusal(**{field: value})
    assert variable in message
    assert "openssl rand" in message


def test_production_refuses_a_published_database_password() -> None:
    url = "postgresql+psycopg://reconciler:reconciler-dev-only@postgres:5432/reconciler"
    assert "RECONCILER_DATABASE_URL" in _refusal(database_url=url)


def test_every_refusal_is_listed_at_once() -> None:
    message = _refusal(audit_key="short", banks=_bank("sgbank-webhook-dev-only"))
    assert "RECONCILER_AUDIT_KEY" in message
    assert "webhook_secret" in message


def test_production_accepts_strong_secrets() -> None:
    settings = Settings(
        banks=_bank(STRONG),
        audit_key=STRONG,
        receipt_link_key=secrets.token_urlsafe(40),
        database_url=f"postgresql+psycopg://reconciler_app:{STRONG}@postgres:5432/reconciler",
    )
    assert settings.audit_key == SecretStr(STRONG)


def test_dev_mode_accepts_anything() -> None:
    settings = Settings(env="dev", banks=_bank("x"), audit_key="short")
    assert settings.banks["sgbank"].webhook_secret == "x"


def test_a_new_secret_setting_is_covered_by_its_name() -> None:
    """Another engineer's new ``*_token`` setting is checked without being
    listed anywhere."""

    class WithAlertToken(Settings):
        alert_webhook_token: str | None = None

    with pytest.raises(ValidationError, match="RECONCILER_ALERT_WEBHOOK_TOKEN"):
        WithAlertToken(alert_webhook_token="admin")


def test_known_placeholders_and_length() -> None:
    assert set(OLD_COMPOSE_DEFAULTS) <= KNOWN_DEV_SECRETS
    for value in KNOWN_DEV_SECRETS:
        assert secret_problem("X", value) is not None
    assert secret_problem("X", "é" * (SECRET_BYTES_MIN // 2)) is None  # bytes, not characters
    assert secret_problem("X", "é" * (SECRET_BYTES_MIN // 2 - 1)) is not None


def test_mtls_paths_go_together() -> None:
    with pytest.raises(ValidationError, match="go together"):
        Settings(env="dev", temporal_tls_ca_path="/tls/ca.pem")


def test_the_cli_refuses_to_start_and_does_not_echo_the_secret(tmp_path: Any) -> None:
    weak = "sgbank-webhook-dev-only"
    env = {
        "RECONCILER_BANKS": '{"sgbank": {"protocol": "rest", "url": "http://x", '
        f'"webhook_secret": "{weak}"}}}}',
        "RECONCILER_DATA_DIR": str(tmp_path),
    }
    result = CliRunner().invoke(main, ["receipts", "verify"], env=env)
    assert result.exit_code == 1
    assert "RECONCILER_BANKS[sgbank].webhook_secret is a published placeholder" in result.output
    assert weak not in result.output
    assert "Traceback" not in result.output
