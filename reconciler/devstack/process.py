"""A child process that dies with its parent and can be stopped cleanly."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


class ComponentFailedError(RuntimeError):
    """A dev-stack component did not start or died; names it and its log."""

    def __init__(self, component: str, reason: str, log_path: Path | None) -> None:
        where = f" (log: {log_path})" if log_path else ""
        super().__init__(f"{component}: {reason}{where}")
        self.component = component
        self.log_path = log_path


def _die_with_parent(sig: int) -> Callable[[], None]:
    """preexec_fn: ask the kernel to send ``sig`` when our parent exits, so a
    SIGKILLed supervisor leaves no orphan servers behind."""
    libc_name = ctypes.util.find_library("c") or "libc.so.6"

    def _set() -> None:
        libc = ctypes.CDLL(libc_name, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)

    return _set


def log_tail(path: Path, max_lines: int = 20) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-max_lines:])


class ManagedProcess:
    """One child process with its output in a log file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        stop_signal: int = signal.SIGTERM,
        user: str | None = None,
        group: str | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.stop_signal = stop_signal
        self.user = user
        self.group = group
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        assert self._proc is None, f"{self.name} already started"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=_die_with_parent(self.stop_signal),  # noqa: PLW1509
                user=self.user,
                group=self.group,
            )

    def returncode(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout_seconds: float = 15.0) -> None:
        """Signal, wait, then SIGKILL the whole process group if needed."""
        proc = self._proc
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, self.stop_signal)
        try:
            proc.wait(timeout=timeout_seconds)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        # Grandchildren in the same group (none expected) must not outlive us.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)

    def wait_until(
        self,
        ready: Callable[[], bool],
        timeout_seconds: float,
        what: str,
        poll_interval_seconds: float = 0.1,
    ) -> None:
        deadline = time.monotonic() + timeout_seconds
        while time.monotonic() < deadline:
            if not self.alive():
                code = self.returncode()
                raise ComponentFailedError(
                    self.name,
                    f"exited with code {code} before {what}:\n{log_tail(self.log_path)}",
                    self.log_path,
                )
            if ready():
                return
            time.sleep(poll_interval_seconds)
        raise ComponentFailedError(
            self.name, f"not {what} after {timeout_seconds:.0f} s", self.log_path
        )


class Component:
    """A server the dev stack runs as one ``ManagedProcess`` (set by ``start``)."""

    stop_timeout_seconds: float = 20.0
    log_path: Path
    _proc: ManagedProcess | None = None

    def start(self) -> object:
        raise NotImplementedError

    def alive(self) -> bool:
        return self._proc is not None and self._proc.alive()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def returncode(self) -> int | None:
        return self._proc.returncode() if self._proc else None

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop(timeout_seconds=self.stop_timeout_seconds)
