"""When the dev stack restarts a component that died, and when it gives up.

Pure: the clock is passed in, so the policy is tested without waiting. A
component that keeps dying is restarted after a delay that doubles (0.5 s,
1 s, 2 s ... up to 10 s); past ``max_per_window`` restarts within
``window_seconds`` the supervisor gives up on it, since a part that cannot
stay up is a bug to look at, not something to hide behind a loop.
"""

from __future__ import annotations

import signal
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class RestartPolicy:
    initial_delay_seconds: float = 0.5
    max_delay_seconds: float = 10.0
    max_per_window: int = 5
    window_seconds: float = 60.0

    def __post_init__(self) -> None:
        if self.initial_delay_seconds <= 0 or self.max_delay_seconds < self.initial_delay_seconds:
            raise ValueError("restart delays: need 0 < initial_delay_seconds <= max_delay_seconds")
        if self.max_per_window < 1 or self.window_seconds <= 0:
            raise ValueError("restart cap: need max_per_window >= 1 and window_seconds > 0")


@dataclass
class RestartBudget:
    """One component's restarts within the policy's window."""

    policy: RestartPolicy = field(default_factory=RestartPolicy)
    # Bounded by the cap: older entries leave the window anyway.
    _recent: deque[float] = field(default_factory=deque)
    total: int = 0

    def _forget_before(self, now: float) -> None:
        while self._recent and now - self._recent[0] >= self.policy.window_seconds:
            self._recent.popleft()

    def next_delay(self, now: float) -> float | None:
        """The delay before the next restart, or None: the cap is reached."""
        self._forget_before(now)
        recent = len(self._recent)
        if recent >= self.policy.max_per_window:
            return None
        delay: float = self.policy.initial_delay_seconds * 2.0**recent
        return min(delay, self.policy.max_delay_seconds)

    def record(self, now: float) -> int:
        """Count a restart made at ``now``; returns its attempt number
        within the window (1 for the first)."""
        self._forget_before(now)
        self._recent.append(now)
        while len(self._recent) > self.policy.max_per_window:
            self._recent.popleft()
        self.total += 1
        return len(self._recent)


def describe_exit(returncode: int | None) -> str:
    """``exit code 3`` / ``killed by SIGKILL`` / ``exit status unknown``."""
    if returncode is None:
        return "exit status unknown"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"
