"""Production refuses to start the worker without its key: nothing is
generated on the fly, and nothing is connected before the refusal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.receipts.signing import SigningKeyError
from reconciler.cli.main import main
from reconciler.settings import Settings
from reconciler.worker import run_worker


def test_no_signing_key_no_worker(tmp_path: Path) -> None:
    with pytest.raises(SigningKeyError, match="no receipt signing key"):
        asyncio.run(run_worker(Settings(data_dir=tmp_path)))
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
