"""Settings, read from the environment (``RECONCILER_*``) by pydantic-settings.

Settings are built once in the composition root (the CLI) and passed down;
nothing below ``reconciler`` reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

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

    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8080, ge=0, le=65535)
    public_base_url: str = "http://127.0.0.1:8080"
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=64 * 1_048_576)
    max_amount_vnd: int = Field(default=MAX_AMOUNT_VND_DEFAULT, ge=1, le=10**15)

    data_dir: Path = Path(".data")
    receipt_signing_key_path: Path | None = None
    receipt_signing_key_b64: str | None = None

    banks: dict[str, BankSettings] = Field(default_factory=dict)

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["console", "json"] = "console"
