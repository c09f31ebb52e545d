"""Failed logins, throttled per client address and per username.

The database's lock-out (``ledger.access.login``) is durable but counts only
existing accounts; this throttle answers 429 with ``Retry-After`` to whoever
fails too often from one address, or against one name (existing or not),
before any password is checked, so guessing costs time and not our CPU.
In memory per process and bounded: at most ``keys_max`` names and
addresses each, the least recently failing forgotten first; and the same
limits over every API process, in the database (``LoginThrottle``).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.access import login_failures as lf

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

    def hold(self, key: str, seconds: float) -> None:
        """Make ``key`` wait ``seconds`` as if it had failed ``limit`` times:
        what another process's failures decided (shared in the database),
        answered from memory from now on, without a query."""
        seconds = min(seconds, self.window_seconds)
        self._failures.pop(key, None)
        at = self._clock() - self.window_seconds + seconds
        self._failures[key] = deque([at] * self.limit, maxlen=self.limit)
        while len(self._failures) > self.keys_max:
            self._failures.popitem(last=False)

    def release(self, key: str) -> None:
        """Take back the latest attempt counted for ``key`` (it succeeded)."""
        times = self._failures.get(key)
        if times:
            times.pop()
            if not times:
                del self._failures[key]

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)


@dataclass(frozen=True)
class Attempt:
    """A login attempt let through and already counted as a failure (so
    that parallel guesses cannot all pass the check while the passwords are
    being verified); ``LoginThrottle.succeeded`` takes it back."""

    address: str
    username: str
    shared_ids: tuple[int, ...]


class LoginThrottle:
    """One window per client address and one per username, in this process
    and, with ``shared``, in the database for every API process
    (``ledger.access.login_failures``): a guesser who spreads attempts over
    several processes meets the same limits. The in-memory windows answer
    first; a wait the database decided is held in memory too, so a
    throttled flood costs no query for the rest of its wait.

    An attempt is counted before its password is checked (``begin``) and
    taken back if it succeeds (``succeeded``): a burst of parallel guesses
    is counted as it arrives, not after the slow hashes."""

    def __init__(
        self,
        by_address: FailureWindow,
        by_username: FailureWindow,
        *,
        shared: bool = True,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        assert by_address.window_seconds == by_username.window_seconds
        self.by_address = by_address
        self.by_username = by_username
        self.shared = shared
        self._clock = clock
        self._window = timedelta(seconds=by_address.window_seconds)

    def _local_wait(self, address: str, username: str) -> float | None:
        waits = [
            wait
            for wait in (
                self.by_address.retry_after(address),
                self.by_username.retry_after(username),
            )
            if wait is not None
        ]
        return max(waits) if waits else None

    async def begin(self, engine: AsyncEngine, address: str, username: str) -> Attempt | int:
        """The attempt, counted; or the whole seconds to wait (at least 1)."""
        wait = self._local_wait(address, username)
        ids: tuple[int, ...] = ()
        if wait is None and self.shared:
            keyed: dict[lf.Kind, tuple[FailureWindow, str]] = {
                "address": (self.by_address, address),
                "username": (self.by_username, username),
            }
            keys = [lf.FailureKey(kind, key, window.limit) for kind, (window, key) in keyed.items()]
            outcome = await lf.attempt(engine, keys, self._window, self._clock())
            for kind, seconds in outcome.waits.items():
                window, key = keyed[kind]
                window.hold(key, seconds)
            wait = max(outcome.waits.values()) if outcome.waits else None
            ids = outcome.ids
        if wait is not None:
            return max(1, math.ceil(wait))
        self.by_address.failed(address)
        self.by_username.failed(username)
        return Attempt(address, username, ids)

    async def succeeded(self, engine: AsyncEngine, attempt: Attempt) -> None:
        """Take the attempt back, and forget the name's failures. The
        address keeps its other failures: behind one NAT, another person's
        success says nothing about who is guessing."""
        self.by_username.forget(attempt.username)
        self.by_address.release(attempt.address)
        if self.shared:
            await lf.succeeded(engine, attempt.shared_ids, attempt.username)


LOGIN_THROTTLE: Final = web.AppKey("login_throttle", LoginThrottle)
