"""Settings, read from the environment (``RECONCILER_*``) by pydantic-settings.

Settings are built once in the composition root (the CLI) and passed down;
nothing below ``reconciler`` reads the environment.

``RECONCILER_ENV`` is the deployment mode: ``production`` (the default, what
``reconciler api|worker|prober`` run as) or ``dev`` (set by ``reconciler dev``
and the test stacks). In production every secret that is set must be at least
``SECRET_BYTES_MIN`` bytes long and must not be a value this repository ever
published (``reconciler.secret_rules``); keys are never generated on the fly.
A secret is any setting typed ``SecretStr`` or named ``*_secret``, ``*_key``,
``*_password`` or ``*_token``, every bank's webhook secret, and the password
in ``RECONCILER_DATABASE_URL``: declare a new secret that way and the check
covers it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.money import AMOUNT_VND_MAX
from reconciler.secret_rules import production_secret_problems

MAX_AMOUNT_VND_DEFAULT = 1_000_000_000
Environment = Literal["production", "dev"]
# A PostgreSQL role name we can quote without surprises.
DB_ROLE_PATTERN = r"^[a-z_][a-z0-9_]{0,62}$"


class BankSettings(BaseModel):
    """How to reach one bank. ``protocol`` picks the adapter."""

    protocol: Literal["rest", "vietqr"]
    url: str
    admin_url: str | None = None
    webhook_secret: str = ""
    # VietQR: our receiving account at that bank.
    account_number: str = ""
    bank_bin: str = ""
    # How long to wait for the bank's answer once a request is sent; past
    # it the outcome is unknown and the payment is verified, never failed.
    # Banks differ: tune per bank from its latency (bank_request_seconds).
    read_timeout_seconds: float = Field(default=10.0, gt=0, le=30)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECONCILER_", env_nested_delimiter="__")

    env: Environment = "production"

    database_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/reconciler"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    task_queue: str = "fine-payments"
    # How long the API waits for Temporal before answering without it.
    temporal_connect_timeout_seconds: float = Field(default=3.0, gt=0, le=60)

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    public_base_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    # The HTTP edge (reconciler/api/edge.py, docs/security.md): a body must
    # have arrived this long after its headers (a statement upload: the
    # second figure); an idle or half-sent connection is closed after the
    # third; public pages allow this many requests a minute per client
    # address, in bursts of so many, remembering so many addresses.
    body_read_seconds: float = Field(default=20.0, gt=0, le=300)
    upload_read_seconds: float = Field(default=120.0, gt=0, le=1800)
    http_idle_seconds: float = Field(default=30.0, gt=0, le=3600)
    public_rate_per_minute: int = Field(default=30, ge=1, le=100_000)
    public_rate_burst: int = Field(default=10, ge=1, le=10_000)
    rate_limit_clients_max: int = Field(default=10_000, ge=1, le=1_000_000)
    citizen_link_ttl_seconds: int = Field(default=30 * 86400, ge=60, le=366 * 86400)
    max_amount_vnd: int = Field(default=MAX_AMOUNT_VND_DEFAULT, ge=1, le=AMOUNT_VND_MAX)

    data_dir: Path = Path(".data")
    # Receipt keys (ledger.receipts.keyring). The worker signs with the private
    # seed of the current key; the API verifies with public keys only (the
    # current one and every retired one, base64url, a JSON list). Or both from
    # a keyring directory (`reconciler keys rotate --dir`); dev: DATA_DIR/receipt-keys.
    receipt_signing_key_b64: SecretStr | None = None
    receipt_public_keys: list[str] = Field(default_factory=list, max_length=100)
    receipt_keys_dir: Path | None = None
    # Key of the citizens' signed PDF links (HMAC-SHA256 with an expiry;
    # production refuses one under 32 bytes, as every secret). Unset: a
    # random key per API process, so links die with it, and the worker's
    # notices carry none.
    receipt_link_key: SecretStr | None = None
    # HMAC key anchoring the audit chain (ledger.core.audit_anchor); the worker
    # anchors the head this often. Never stored in the database.
    audit_key: SecretStr | None = None
    audit_anchor_interval_seconds: float = Field(default=60.0, gt=0, le=86400)

    # The role the app (api, worker, prober) connects as: DML only, created and
    # granted by the migrations, which run as the database owner. `reconciler
    # migrate` sets its password when RECONCILER_DB_APP_PASSWORD is given.
    db_app_role: str = Field(default="reconciler_app", pattern=DB_ROLE_PATTERN)
    db_app_password: SecretStr | None = None

    # Temporal over mutual TLS: the CA that signed the server's certificate,
    # our client certificate and key (PEM files), and the name the server's
    # certificate carries. All unset: plain gRPC (the embedded dev server).
    temporal_tls_ca_path: Path | None = None
    temporal_tls_cert_path: Path | None = None
    temporal_tls_key_path: Path | None = None
    temporal_tls_server_name: str | None = Field(default=None, max_length=253)

    banks: dict[str, BankSettings] = Field(default_factory=dict)

    # Worker and prober expose /metrics on these ports (0: pick a free one).
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535)
    prober_metrics_port: int = Field(default=9102, ge=0, le=65535)
    worker_activities_max: int = Field(default=200, ge=1, le=2000)
    # Each bank's calls run on its own task queue with this many slots per
    # worker, so a bank whose calls hang fills only its own.
    worker_bank_activities_max: int = Field(default=50, ge=1, le=2000)

    # Payment verification (see workflows.payment.types.VerifyPolicy).
    verify_poll_interval_seconds_initial: float = Field(default=2.0, gt=0, le=3600)
    verify_poll_interval_seconds_max: float = Field(default=60.0, gt=0, le=86400)
    link_down_window_seconds: float = Field(default=120.0, ge=0, le=86400)
    link_down_retry_seconds: float = Field(default=5.0, gt=0, le=3600)
    in_doubt_alert_seconds: float = Field(default=1800.0, gt=0, le=30 * 86400)
    sweeper_interval_seconds: float = Field(default=10.0, gt=0, le=3600)

    # Link prober: probe interval and hysteresis.
    probe_interval_seconds: float = Field(default=3.0, gt=0, le=3600)
    # While a link is down or failing: probe this often, so its return (and
    # the bulk receipting of its in-doubt payments) is seen within seconds.
    probe_suspect_interval_seconds: float = Field(default=1.0, gt=0, le=3600)
    probe_failures_to_down: int = Field(default=3, ge=1, le=100)
    probe_successes_to_up: int = Field(default=2, ge=1, le=100)

    # Disputes: how long an approval may wait, reminders while it waits, and
    # how long the evidence waits for a bank's live status answer.
    dispute_approval_timeout_seconds: float = Field(default=3 * 86400.0, gt=0, le=30 * 86400)
    dispute_reminder_interval_seconds: float = Field(default=8 * 3600.0, gt=0, le=7 * 86400)
    dispute_reminders_max: int = Field(default=9, ge=0, le=100)
    evidence_bank_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    # The console's advice on a payment in doubt: open a dispute if there is
    # still no receipt this many hours after the payment (or after the
    # bank's link came back). A debit the bank has not confirmed a day later
    # is not a slow bank any more. Whole hours: the advice says "{n} hours".
    dispute_after_hours: int = Field(default=24, ge=1, le=30 * 24)
    # A citizen's contact on a dispute is erased this many days after the
    # dispute ended (``ledger.disputes.retention``; the worker, hourly).
    dispute_contact_retention_days: int = Field(default=90, ge=1, le=3650)

    # Reconciliation: schedules per bank (Vietnam time), uploads, follow-up.
    recon_schedules_enabled: bool = True
    recon_end_of_day_time: str = Field(default="23:30", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    recon_end_of_day_offset_days: int = Field(default=0, ge=-7, le=0)
    recon_intraday_minutes: int = Field(default=15, ge=0, le=1440)  # 0: no intraday runs
    recon_upload_bytes_max: int = Field(default=32 * 1_048_576, ge=1024, le=64 * 1_048_576)
    recon_statement_lines_max: int = Field(default=1_000_000, ge=1, le=1_000_000)
    recon_actions_concurrency: int = Field(default=16, ge=1, le=256)
    recon_missing_grace_seconds: float = Field(default=1800.0, ge=0, le=7 * 86400)
    recon_in_doubt_seconds: float = Field(default=3600.0, gt=0, le=30 * 86400)
    recon_report_lines_max: int = Field(default=1_000_000, ge=1, le=1_000_000)
    # A refund or manual match of a discrepancy waits this long for approval.
    recon_approval_timeout_seconds: float = Field(default=3 * 86400.0, gt=0, le=30 * 86400)

    # Staff identity (ledger/access): login tokens, API tokens, lock-out and
    # the API's login throttle (per client address and per name, in each
    # process's memory and shared by every API process in the database).
    login_token_hours: float = Field(default=8.0, gt=0, le=24)
    login_lock_failures: int = Field(default=10, ge=1, le=1000)
    login_lock_window_seconds: float = Field(default=1800.0, gt=0, le=86400)
    login_lock_seconds: float = Field(default=1800.0, gt=0, le=86400)
    login_throttle_window_seconds: float = Field(default=300.0, gt=0, le=86400)
    login_failures_per_address: int = Field(default=30, ge=1, le=10_000)
    login_failures_per_username: int = Field(default=5, ge=1, le=10_000)
    argon2_concurrency: int = Field(default=2, ge=1, le=64)

    # Alertmanager's bearer secret for the service's alert receiver
    # (POST /ops/alerts/webhook); empty: the receiver refuses every delivery.
    alert_webhook_token: SecretStr | None = None
    # `receipts verify` and `audit verify` run this often, on a Temporal
    # Schedule (workflows.ops.schedules), and when the schedule is created.
    integrity_check_interval_seconds: float = Field(default=3600.0, ge=60, le=86400)
    # The heartbeat workflow proves every task queue's pollers this often
    # (worker_poll_heartbeat_timestamp_seconds; WorkerPollersStuck: 3 min).
    ops_heartbeat_seconds: float = Field(default=30.0, ge=5, le=60)
    # The worker's Temporal SDK metrics (the SDK's own Prometheus exporter).
    worker_sdk_metrics_port: int = Field(default=9103, ge=0, le=65535)

    # Where "receipt issued" notices go (the portal); unset: logged only.
    notify_url: str | None = None

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"

    @model_validator(mode="after")
    def _production_secrets(self) -> Settings:
        """Production refuses published and short secrets, naming the setting."""
        if self.env == "production":
            problems = production_secret_problems(self)
            if problems:
                raise ValueError("; ".join(problems))
        tls = (self.temporal_tls_ca_path, self.temporal_tls_cert_path, self.temporal_tls_key_path)
        if any(tls) and not all(tls):
            raise ValueError(
                "RECONCILER_TEMPORAL_TLS_CA_PATH, _CERT_PATH and _KEY_PATH go together "
                "(mutual TLS needs all three)"
            )
        return self

    def receipt_link_secret(self) -> str:
        """The link key's text; empty when unset (a random key per process)."""
        return self.receipt_link_key.get_secret_value() if self.receipt_link_key else ""
