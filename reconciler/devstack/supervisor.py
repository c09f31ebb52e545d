"""Watching the dev stack's components and restarting those that die.

Components are watched in start order (PostgreSQL, Temporal, then the
services), and at most one is revived per pass: when PostgreSQL dies and
takes a service down with it, PostgreSQL is back before the service is
started again. A running service is not restarted because PostgreSQL or
Temporal was: the API, the worker and the prober reconnect on their own
(pooled connections are checked before use, the Temporal client retries).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NoReturn, Protocol

from reconciler.devstack.process import ComponentFailedError
from reconciler.devstack.restarts import RestartBudget, RestartPolicy, describe_exit

TICK_SECONDS = 0.5


class Watched(Protocol):
    name: str

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def alive(self) -> bool: ...
    def returncode(self) -> int | None: ...
    @property
    def pid(self) -> int | None: ...
    @property
    def log_path(self) -> Path: ...


def _append(path: Path, line: str) -> None:
    """The supervisor's word, in the component's own log next to its last
    output; a log we cannot write to does not stop the supervision."""
    try:
        with path.open("a", encoding="utf-8") as log:
            log.write(line + "\n")
    except OSError:
        pass


class Supervisor:
    """``policy`` None: the first death stops the stack (``--no-restart``)."""

    def __init__(
        self,
        components: Sequence[Watched],
        policy: RestartPolicy | None,
        *,
        on_restart: Callable[[], None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._components = list(components)
        self._policy = policy
        self._on_restart = on_restart
        self._clock = clock
        self._sleep = sleep
        self._budgets: dict[str, RestartBudget] = {}

    def restarts(self) -> dict[str, int]:
        """Restarts so far, by component (only those restarted)."""
        return {name: budget.total for name, budget in self._budgets.items()}

    def watch(self) -> NoReturn:
        while True:
            self.check_once()
            self._sleep(TICK_SECONDS)

    def check_once(self) -> None:
        for component in self._components:
            if not component.alive():
                self._revive(component)
                return

    def _say(self, component: Watched, message: str) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        print(f"  {message}", flush=True)
        _append(component.log_path, f"{stamp} reconciler dev: {message}")

    def _revive(self, component: Watched) -> None:
        name, status = component.name, describe_exit(component.returncode())
        if self._policy is None:
            raise ComponentFailedError(name, f"stopped unexpectedly ({status})", component.log_path)
        budget = self._budgets.setdefault(name, RestartBudget(self._policy))
        delay = budget.next_delay(self._clock())
        if delay is None:
            policy = self._policy
            self._say(
                component,
                f"{name} died ({status}) after {policy.max_per_window} restarts within "
                f"{policy.window_seconds:.0f} s: GIVING UP on {name}, stopping the stack",
            )
            raise ComponentFailedError(
                name,
                f"gave up after {policy.max_per_window} restarts within "
                f"{policy.window_seconds:.0f} s (last: {status})",
                component.log_path,
            )
        attempt = budget.record(self._clock())
        self._say(
            component,
            f"{name} died ({status}, pid {component.pid}); restart attempt {attempt} "
            f"in {delay:.1f} s",
        )
        self._sleep(delay)
        component.stop()  # reaps it and whatever of its process group is left
        try:
            component.start()
        # Whatever a start raises (not ready in time, a port still taken, the
        # database refusing its first query) is one failed attempt: the part
        # is tried again within the same cap, so this never loops for ever.
        except Exception as err:
            component.stop()  # alive but not ready counts as dead: try again
            first_line = str(err).splitlines()[0] if str(err) else repr(err)
            self._say(component, f"{name} restart attempt {attempt} failed: {first_line}")
            return
        self._say(component, f"{name} restarted (pid {component.pid}, attempt {attempt})")
        self._on_restart()
