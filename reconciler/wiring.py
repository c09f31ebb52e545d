"""The composition root's shared pieces: banks, receipt keys, Temporal client."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import aiohttp
from temporalio.client import Client
from temporalio.runtime import Runtime
from temporalio.service import TLSConfig

from bank_adapters.base import AdapterOptions, BankAdapter
from bank_adapters.factory import build_adapter
from bank_adapters.http import Timeouts
from ledger.receipts.keyring import (
    ensure_keyring,
    keyring_verifier,
    load_keyring_signer,
    verifier_for,
)
from ledger.receipts.signing import (
    LEGACY_DEV_KEY_FILENAME,
    ReceiptSigner,
    ReceiptVerifier,
    SigningKeyError,
)
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
            options=AdapterOptions(timeouts=Timeouts(read_seconds=bank.read_timeout_seconds)),
        )
        for bank_id, bank in settings.banks.items()
    }


def keys_dir(settings: Settings) -> Path | None:
    """The receipt keyring directory: configured, or the dev data dir's own
    (created on first use, adopting a key of the time before keyrings)."""
    if settings.receipt_keys_dir is not None:
        return settings.receipt_keys_dir
    if settings.env != "dev":
        return None
    directory = settings.data_dir / "receipt-keys"
    ensure_keyring(directory, adopt=settings.data_dir / LEGACY_DEV_KEY_FILENAME)
    return directory


def load_signer(settings: Settings) -> ReceiptSigner:
    """The worker's current private key. Production never makes one up: the
    seed (RECONCILER_RECEIPT_SIGNING_KEY_B64) or a keyring directory must be
    configured, and the key must be among the public keys the API is given."""
    if settings.receipt_signing_key_b64 is not None:
        signer = ReceiptSigner.from_base64(settings.receipt_signing_key_b64.get_secret_value())
    else:
        directory = keys_dir(settings)
        if directory is None:
            raise SigningKeyError(
                "no receipt signing key: set RECONCILER_RECEIPT_SIGNING_KEY_B64 (see "
                "`reconciler keys rotate --print-env`) or RECONCILER_RECEIPT_KEYS_DIR"
            )
        signer = load_keyring_signer(directory)
    published = settings.receipt_public_keys
    if published and signer.key_id not in verifier_for(published).key_ids:
        raise SigningKeyError(
            f"the receipt signing key {signer.key_id} is not among "
            "RECONCILER_RECEIPT_PUBLIC_KEYS: every receipt it signs would look forged"
        )
    return signer


def load_verifier(settings: Settings) -> ReceiptVerifier:
    """Public keys only (the API's and `receipts verify`'s): the configured
    list (current and retired keys), or the keyring directory's."""
    if settings.receipt_public_keys:
        return verifier_for(settings.receipt_public_keys)
    directory = keys_dir(settings)
    if directory is None:
        raise SigningKeyError(
            "no receipt public keys: set RECONCILER_RECEIPT_PUBLIC_KEYS (current and "
            "retired keys) or RECONCILER_RECEIPT_KEYS_DIR"
        )
    return keyring_verifier(directory)


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


TLS_FILE_BYTES_MAX = 64 * 1024


def temporal_tls(settings: Settings) -> TLSConfig | bool:
    """Mutual TLS to Temporal from the RECONCILER_TEMPORAL_TLS_* files, or
    False (plain gRPC: the embedded dev server). Read once, at start."""
    paths = {
        "RECONCILER_TEMPORAL_TLS_CA_PATH": settings.temporal_tls_ca_path,
        "RECONCILER_TEMPORAL_TLS_CERT_PATH": settings.temporal_tls_cert_path,
        "RECONCILER_TEMPORAL_TLS_KEY_PATH": settings.temporal_tls_key_path,
    }
    if not any(paths.values()):
        return False
    pem: dict[str, bytes] = {}
    for name, path in paths.items():
        if path is None:
            raise TemporalTLSError(f"{name} is not set (mutual TLS needs all three files)")
        try:
            with path.open("rb") as handle:
                data = handle.read(TLS_FILE_BYTES_MAX + 1)
        except OSError as err:
            raise TemporalTLSError(f"{name}: cannot read {path}: {err}") from err
        if len(data) > TLS_FILE_BYTES_MAX or b"-----BEGIN " not in data:
            raise TemporalTLSError(f"{name}: {path} is not a PEM file")
        pem[name] = data
    return TLSConfig(
        server_root_ca_cert=pem["RECONCILER_TEMPORAL_TLS_CA_PATH"],
        client_cert=pem["RECONCILER_TEMPORAL_TLS_CERT_PATH"],
        client_private_key=pem["RECONCILER_TEMPORAL_TLS_KEY_PATH"],
        domain=settings.temporal_tls_server_name,
    )


class TemporalTLSError(Exception):
    """The Temporal TLS settings name files that cannot be used."""


async def connect_temporal(settings: Settings, runtime: Runtime | None = None) -> Client:
    """``runtime``: the worker's, which exports the SDK's metrics."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        tls=temporal_tls(settings),
        runtime=runtime,
    )


AUDIT_KEY_FILE = "audit-key"


def audit_key(settings: Settings, *, create: bool = False) -> bytes | None:
    """The key that anchors the audit chain (never in the database).

    Production: RECONCILER_AUDIT_KEY or nothing. Dev: that, or a key kept in
    DATA_DIR/audit-key, made (``create``) by the first process that anchors.
    """
    if settings.audit_key is not None:
        return settings.audit_key.get_secret_value().encode("utf-8")
    if settings.env != "dev":
        return None
    path = settings.data_dir / AUDIT_KEY_FILE
    if not path.exists():
        if not create:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{AUDIT_KEY_FILE}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(32))
        # Another process made one meanwhile: theirs stands.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
        tmp.unlink(missing_ok=True)
    return path.read_bytes().strip()
