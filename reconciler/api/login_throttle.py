"""Failed logins, throttled per client address and per username, in memory.

The database's lock-out (``ledger.access.login``) is durable but counts only
existing accounts; this throttle answers 429 with ``Retry-After`` to whoever
fails too often from one address, or against one name (existing or not),
before any password is checked, so guessing costs time and not our CPU.
Per process and bounded: at most ``keys_max`` names and addresses each,
the least recently failing forgotten first.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from typing import Final

from aiohttp import web

KEYS_MAX_DEFAULT: Final = 10_000


class FailureWindow:
    """At most ``limit`` failures per key within ``window_seconds``."""

    def __init__(
        self,
        limit: int,
        window_seconds: float,
        keys_max: int = KEYS_MAX_DEFAULT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert limit >= 1, limit
        assert window_seconds > 0, window_seconds
        assert keys_max >= 1, keys_max
        self.limit = limit
        self.window_seconds = window_seconds
        self.keys_max = keys_max
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._failures)

    def retry_after(self, key: str) -> float | None:
        """Seconds until ``key`` may try again, or None if it may now."""
        times = self._failures.get(key)
        if times is None:
            return None
        now = self._clock()
        while times and now - times[0] >= self.window_seconds:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        if len(times) < self.limit:
            return None
        return self.window_seconds - (now - times[0])

    def failed(self, key: str) -> None:
        times = self._failures.pop(key, None)
        if times is None:
            times = deque(maxlen=self.limit)
        times.append(self._clock())
        self._failures[key] = times
        while len(self._failures) > self.keys_max:
            self._failures.popitem(last=False)

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)


class LoginThrottle:
    """One window per client address and one per username."""

    def __init__(self, by_address: FailureWindow, by_username: FailureWindow) -> None:
        self.by_address = by_address
        self.by_username = by_username

    def retry_after(self, address: str, username: str) -> int | None:
        """Whole seconds to wait (at least 1), or None."""
        waits = [
            wait
            for wait in (
                self.by_address.retry_after(address),
                self.by_username.retry_after(username),
            )
            if wait is not None
        ]
        return max(1, math.ceil(max(waits))) if waits else None

    def failed(self, address: str, username: str) -> None:
        self.by_address.failed(address)
        self.by_username.failed(username)

    def succeeded(self, username: str) -> None:
        # The address keeps its failures: behind one NAT, another person's
        # success says nothing about who is guessing.
        self.by_username.forget(username)


LOGIN_THROTTLE: Final = web.AppKey("login_throttle", LoginThrottle)
