"""Production refuses to start the worker without its keys: nothing is
generated on the fly, and nothing is connected before the refusal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.receipts.signing import ReceiptSigner, SigningKeyError
from reconciler.cli.main import main
from reconciler.settings import Settings
from reconciler.worker import run_worker


def test_no_signing_key_no_worker(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="no receipt signing key"):
        asyncio.run(run_worker(Settings(data_dir=tmp_path)))
    assert list(tmp_path.iterdir()) == []


def test_no_audit_key_no_worker(tmp_path: Path) -> None:
    signer = ReceiptSigner.generate()
    settings = Settings(
        data_dir=tmp_path,
        receipt_signing_key_b64=signer.seed_b64(),
        receipt_public_keys=[signer.public_key_b64],
    )
    with pytest.raises(SigningKeyError, match="RECONCILER_AUDIT_KEY"):
        asyncio.run(run_worker(settings))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("command", "missing"),
    [("worker", "no receipt signing key"), ("api", "no receipt public keys")],
)
def test_the_commands_say_what_is_missing(tmp_path: Path, command: str, missing: str) -> None:
    result = CliRunner().invoke(main, [command], env={"RECONCILER_DATA_DIR": str(tmp_path)})
    assert result.exit_code == 1
    assert missing in result.output
    assert "Traceback" not in result.output
