"""Settings, read from the environment (``RECONCILER_*``) by pydantic-settings.

Settings are built once in the composition root (the CLI) and passed down;
nothing below ``reconciler`` reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.money import AMOUNT_VND_MAX

MAX_AMOUNT_VND_DEFAULT = 1_000_000_000


class BankSettings(BaseModel):
    """How to reach one bank. ``protocol`` picks the adapter."""

    protocol: Literal["rest", "vietqr"]
    url: str
    admin_url: str | None = None
    webhook_secret: str = ""
    # VietQR: our receiving account at that bank.
    account_number: str = ""
    bank_bin: str = ""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RECONCILER_", env_nested_delimiter="__")

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
    max_amount_vnd: int = Field(default=MAX_AMOUNT_VND_DEFAULT, ge=1, le=AMOUNT_VND_MAX)

    data_dir: Path = Path(".data")
    receipt_signing_key_path: Path | None = None
    receipt_signing_key_b64: str | None = None

    banks: dict[str, BankSettings] = Field(default_factory=dict)

    # Worker and prober expose /metrics on these ports (0: pick a free one).
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535)
    prober_metrics_port: int = Field(default=9102, ge=0, le=65535)
    worker_activities_max: int = Field(default=200, ge=1, le=2000)

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

    # Alertmanager's bearer secret for the service's alert receiver
    # (POST /ops/alerts/webhook); empty: the receiver refuses every delivery.
    alert_webhook_token: str = ""
    # The worker's Temporal SDK metrics (the SDK's own Prometheus exporter).
    worker_sdk_metrics_port: int = Field(default=9103, ge=0, le=65535)

    # Where "receipt issued" notices go (the portal); unset: logged only.
    notify_url: str | None = None

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"
