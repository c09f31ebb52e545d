"""One seeded dev stack (``reconciler dev``) shared by the end-to-end tests
that only read it or add to it (the API contract test, the browser tests):
starting one costs ~10 s, so they share it instead of each starting its own.
Tests that stop, kill or restart a stack start their own."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.dev_cli import (
    descendants,
    start_dev,
    stop_and_check_no_orphans,
    wait_for_dev_json,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The API contract test writes at random through the shared stack (a
    generated id 1 is the seed's dispute or discrepancy): it runs after the
    tests that read the seed's story."""
    items.sort(key=lambda item: item.path.name == "test_api_contract.py")


@pytest.fixture(scope="session")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``dev.json`` of a running, seeded dev stack; stopped after the session."""
    data_dir: Path = tmp_path_factory.mktemp("shared-dev-stack")
    proc = start_dev(data_dir, seed=True)
    try:
        info = wait_for_dev_json(proc, data_dir)
        info["data_dir"] = str(data_dir)
        yield info
    finally:
        if proc.poll() is None:
            stop_and_check_no_orphans(proc, descendants(proc.pid), signal.SIGTERM)
