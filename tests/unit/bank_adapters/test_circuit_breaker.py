"""The per-bank circuit breaker, on a fake clock."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY

from bank_adapters.breaker import BreakerConfig, CircuitBreaker, CircuitState


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _gauge(bank: str) -> float | None:
    return REGISTRY.get_sample_value("circuit_breaker_state", {"bank": bank})


def _opened(bank: str, open_seconds: float) -> tuple[CircuitBreaker, Clock]:
    """A breaker that one failure opens, just opened, on a fake clock at 0."""
    clock = Clock()
    breaker = CircuitBreaker(
        bank, BreakerConfig(failures_to_open=1, open_seconds=open_seconds), clock=clock
    )
    assert breaker.try_acquire()
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    return breaker, clock


def test_opens_after_consecutive_failures_and_refuses() -> None:
    clock = Clock()
    breaker = CircuitBreaker(
        "cb-open", BreakerConfig(failures_to_open=3, open_seconds=10), clock=clock
    )
    assert _gauge("cb-open") == 0
    for _ in range(2):
        assert breaker.try_acquire()
        breaker.record_failure()
    breaker.record_success()  # the run is broken: consecutive failures only
    for _ in range(3):
        assert breaker.try_acquire()
        breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    assert _gauge("cb-open") == 2
    assert not breaker.try_acquire()


def test_half_open_lets_one_trial_through() -> None:
    breaker, clock = _opened("cb-half", 10)
    clock.now = 9.9
    assert not breaker.try_acquire()
    clock.now = 10.0
    assert breaker.state is CircuitState.HALF_OPEN
    assert _gauge("cb-half") == 1
    assert breaker.try_acquire()
    assert not breaker.try_acquire()  # only one trial at a time
    breaker.record_failure()
    assert breaker.state is CircuitState.OPEN
    clock.now = 20.0
    assert breaker.try_acquire()
    breaker.record_success()
    assert breaker.state is CircuitState.CLOSED
    assert _gauge("cb-half") == 0


def test_an_abandoned_trial_frees_the_slot() -> None:
    breaker, clock = _opened("cb-abandon", 1)
    clock.now = 1.0
    assert breaker.try_acquire()
    breaker.record_abandoned()
    assert breaker.try_acquire()


def test_a_good_probe_half_opens_at_once() -> None:
    breaker, _ = _opened("cb-probe", 600)
    breaker.record_probe_success()
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.try_acquire()


async def test_calls_behind_a_successful_trial_go_through() -> None:
    """A link comes back: the burst queued behind the half-open trial goes
    out as soon as the trial succeeds, instead of being refused."""
    breaker, _ = _opened("cb-wait-ok", 600)
    breaker.record_probe_success()
    assert await breaker.acquire(1.0)  # the trial
    waiters = [asyncio.create_task(breaker.acquire(5.0)) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    breaker.record_success()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert breaker.state is CircuitState.CLOSED


async def test_calls_behind_a_failed_trial_are_refused() -> None:
    breaker, _ = _opened("cb-wait-fail", 600)
    breaker.record_probe_success()
    assert await breaker.acquire(1.0)
    waiter = asyncio.create_task(breaker.acquire(5.0))
    await asyncio.sleep(0)
    breaker.record_failure()
    assert await waiter is False
    assert breaker.state is CircuitState.OPEN


async def test_waiting_is_bounded_and_an_open_breaker_refuses_at_once() -> None:
    breaker, _ = _opened("cb-wait-bound", 600)
    assert await breaker.acquire(5.0) is False  # open: no trial to wait for
    breaker.record_probe_success()
    assert await breaker.acquire(0.01)  # the trial, never reported
    assert await breaker.acquire(0.01) is False  # the wait ran out
    breaker.record_abandoned()
    assert await breaker.acquire(0.01)  # the slot is free again
