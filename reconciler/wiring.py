"""The composition root's shared pieces: banks, signing key, Temporal client."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import aiohttp
from temporalio.client import Client
from temporalio.runtime import Runtime

from bank_adapters.base import BankAdapter
from bank_adapters.factory import build_adapter
from ledger.receipts.signing import ReceiptSigner, load_or_create_signing_key
from reconciler.settings import Settings
from workflows.payment import types as wt
from workflows.payment.client import SagaConfig


def build_adapters(settings: Settings, session: aiohttp.ClientSession) -> Mapping[str, BankAdapter]:
    return {
        bank_id: build_adapter(
            bank_id,
            bank.protocol,
            bank.url,
            session,
            account_number=bank.account_number,
            bank_bin=bank.bank_bin,
        )
        for bank_id, bank in settings.banks.items()
    }


def signing_key_path(settings: Settings) -> Path:
    return settings.receipt_signing_key_path or settings.data_dir / "receipt-signing-key.pem"


def load_signer(settings: Settings) -> ReceiptSigner:
    """Production: the key from settings. Dev: generated once in the data dir."""
    if settings.receipt_signing_key_b64:
        return ReceiptSigner.from_base64(settings.receipt_signing_key_b64)
    return load_or_create_signing_key(signing_key_path(settings))


def saga_config(settings: Settings) -> SagaConfig:
    return SagaConfig(
        task_queue=settings.task_queue,
        policy=wt.VerifyPolicy(
            poll_interval_seconds_initial=settings.verify_poll_interval_seconds_initial,
            poll_interval_seconds_max=settings.verify_poll_interval_seconds_max,
            link_down_window_seconds=settings.link_down_window_seconds,
            link_down_retry_seconds=settings.link_down_retry_seconds,
            in_doubt_alert_seconds=settings.in_doubt_alert_seconds,
        ),
    )


async def connect_temporal(settings: Settings, runtime: Runtime | None = None) -> Client:
    """``runtime``: the worker's, which exports the SDK's metrics."""
    return await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, runtime=runtime
    )
