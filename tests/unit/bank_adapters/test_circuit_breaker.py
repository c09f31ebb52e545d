"""The per-bank circuit breaker, on a fake clock."""

from __future__ import annotations

from prometheus_client import REGISTRY

from bank_adapters.base import BreakerConfig, CircuitBreaker, CircuitState


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _gauge(bank: str) -> float | None:
    return REGISTRY.get_sample_value("circuit_breaker_state", {"bank": bank})


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
    clock = Clock()
    breaker = CircuitBreaker(
        "cb-half", BreakerConfig(failures_to_open=1, open_seconds=10), clock=clock
    )
    breaker.try_acquire()
    breaker.record_failure()
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
    clock = Clock()
    breaker = CircuitBreaker(
        "cb-abandon", BreakerConfig(failures_to_open=1, open_seconds=1), clock=clock
    )
    breaker.try_acquire()
    breaker.record_failure()
    clock.now = 1.0
    assert breaker.try_acquire()
    breaker.record_abandoned()
    assert breaker.try_acquire()


def test_a_good_probe_half_opens_at_once() -> None:
    clock = Clock()
    breaker = CircuitBreaker(
        "cb-probe", BreakerConfig(failures_to_open=1, open_seconds=600), clock=clock
    )
    breaker.try_acquire()
    breaker.record_failure()
    breaker.record_probe_success()
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.try_acquire()
