"""The in-memory side of the login throttle: a window per key, a wait the
database decided held in memory, and a successful attempt taken back. Pure
logic with a fake clock; the shared side is tested on PostgreSQL in
tests/integration/identity/test_login.py."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciler.api.login_throttle import Attempt, FailureWindow, LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_waits_once_it_reaches_the_limit_until_the_oldest_leaves() -> None:
    clock = Clock()
    window = FailureWindow(3, 60.0, clock=clock)
    for _ in range(2):
        window.failed("k")
        clock.now += 10
    assert window.retry_after("k") is None
    window.failed("k")
    assert window.retry_after("k") == pytest.approx(40.0)
    clock.now += 41
    assert window.retry_after("k") is None


def test_a_held_key_waits_as_long_as_told_and_no_longer_than_the_window() -> None:
    clock = Clock()
    window = FailureWindow(5, 60.0, clock=clock)
    window.hold("k", 12.5)
    assert window.retry_after("k") == pytest.approx(12.5)
    clock.now += 13
    assert window.retry_after("k") is None
    window.hold("other", 600.0)
    assert window.retry_after("other") == pytest.approx(60.0)


def test_release_takes_back_only_the_latest_attempt() -> None:
    clock = Clock()
    window = FailureWindow(2, 60.0, clock=clock)
    window.failed("k")
    window.failed("k")
    assert window.retry_after("k") is not None
    window.release("k")
    assert window.retry_after("k") is None
    window.release("k")
    window.release("k")  # nothing left: no error, nothing negative
    assert len(window) == 0


def test_holds_stay_within_the_bound_on_keys() -> None:
    window = FailureWindow(3, 60.0, keys_max=10)
    for i in range(100):
        window.hold(f"k{i}", 30.0)
    assert len(window) == 10


async def test_without_the_database_attempts_are_counted_as_they_arrive() -> None:
    """Counted before the password is checked: the fourth of four parallel
    guesses is refused although none has failed yet."""
    throttle = LoginThrottle(FailureWindow(100, 60.0), FailureWindow(3, 60.0), shared=False)
    engine: AsyncEngine = None  # type: ignore[assignment]  # never used: shared=False
    *tried, refused = [await throttle.begin(engine, "10.0.0.1", "an") for _ in range(4)]
    assert [isinstance(a, Attempt) for a in tried] == [True, True, True]
    # The whole window, rounded up: all three were counted just now.
    assert refused == 60
    await throttle.succeeded(engine, tried[0])  # type: ignore[arg-type]
    # The name's failures are forgotten; the address keeps the other two.
    assert isinstance(await throttle.begin(engine, "10.0.0.1", "an"), Attempt)
    assert throttle.by_address.retry_after("10.0.0.1") is None
