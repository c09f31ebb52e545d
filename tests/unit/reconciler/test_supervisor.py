"""The supervisor's loop over fake components (pure: a fake clock and sleep;
the real processes are killed in tests/e2e/test_dev_stack_restarts.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from reconciler.devstack.process import ComponentFailedError
from reconciler.devstack.restarts import RestartPolicy
from reconciler.devstack.supervisor import Supervisor


class Halt(BaseException):
    """What a signal handler raises to stop the stack."""


@dataclass
class Fake:
    name: str
    log_path: Path
    running: bool = True
    starts: int = 0
    # What each start does: None starts it; an exception is raised.
    start_effects: list[BaseException | None] = field(default_factory=list)
    pid: int | None = 100

    def start(self) -> None:
        self.starts += 1
        effect = self.start_effects.pop(0) if self.start_effects else None
        if effect is not None:
            raise effect
        self.running = True
        self.pid = 100 + self.starts

    def stop(self) -> None:
        self.running = False

    def alive(self) -> bool:
        return self.running

    def returncode(self) -> int | None:
        return None if self.running else -9


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _supervisor(parts: list[Fake], clock: Clock, policy: RestartPolicy | None) -> Supervisor:
    return Supervisor(parts, policy, clock=clock.time, sleep=clock.sleep)


def test_infrastructure_first_then_the_service(tmp_path: Path) -> None:
    db, api = Fake("postgres", tmp_path / "pg.log"), Fake("api", tmp_path / "api.log")
    db.running = api.running = False
    clock = Clock()
    supervisor = _supervisor([db, api], clock, RestartPolicy())
    supervisor.check_once()
    assert (db.running, api.running) == (True, False)
    supervisor.check_once()
    assert (db.running, api.running) == (True, True)
    assert supervisor.restarts() == {"postgres": 1, "api": 1}
    log = (tmp_path / "pg.log").read_text()
    assert "postgres died (killed by SIGKILL, pid 100); restart attempt 1 in 0.5 s" in log
    assert "postgres restarted (pid 101, attempt 1)" in log


def test_a_start_that_fails_is_an_attempt_and_the_cap_ends_it(tmp_path: Path) -> None:
    worker = Fake("worker", tmp_path / "w.log", running=False)
    worker.start_effects = [RuntimeError("port taken")] * 10
    clock = Clock()
    supervisor = _supervisor([worker], clock, RestartPolicy())
    for _ in range(5):
        supervisor.check_once()
    assert clock.slept == [0.5, 1.0, 2.0, 4.0, 8.0]
    with pytest.raises(ComponentFailedError, match="gave up after 5 restarts within 60 s"):
        supervisor.check_once()
    assert worker.starts == 5
    assert "GIVING UP on worker" in (tmp_path / "w.log").read_text()


def test_a_stop_signal_during_a_restart_is_not_swallowed(tmp_path: Path) -> None:
    api = Fake("api", tmp_path / "api.log", running=False, start_effects=[Halt()])
    supervisor = _supervisor([api], Clock(), RestartPolicy())
    with pytest.raises(Halt):
        supervisor.check_once()


def test_without_a_policy_the_first_death_stops_everything(tmp_path: Path) -> None:
    api = Fake("api", tmp_path / "api.log", running=False)
    supervisor = _supervisor([api], Clock(), None)
    with pytest.raises(ComponentFailedError, match=r"stopped unexpectedly \(killed by SIGKILL\)"):
        supervisor.check_once()
    assert api.starts == 0
