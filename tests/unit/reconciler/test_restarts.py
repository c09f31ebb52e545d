"""The dev stack's restart policy: backoff, the cap per window, exit text."""

from __future__ import annotations

import signal

import pytest

from reconciler.devstack.restarts import RestartBudget, RestartPolicy, describe_exit


def test_delays_double_from_half_a_second_up_to_the_ceiling() -> None:
    budget = RestartBudget(RestartPolicy(max_per_window=10, window_seconds=60.0))
    delays = []
    for step in range(7):
        delay = budget.next_delay(now=float(step))
        assert delay is not None
        delays.append(delay)
        budget.record(now=float(step))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_past_the_cap_within_a_minute_it_gives_up() -> None:
    budget = RestartBudget(RestartPolicy())  # 5 per 60 s
    attempts = [budget.record(now=10.0 + i) for i in range(5)]
    assert attempts == [1, 2, 3, 4, 5]
    assert budget.next_delay(now=20.0) is None
    assert budget.total == 5


def test_restarts_older_than_the_window_no_longer_count() -> None:
    budget = RestartBudget(RestartPolicy())
    for i in range(5):
        budget.record(now=float(i))
    assert budget.next_delay(now=59.0) is None
    # At t=60 the first restart (t=0) left the window: one more is allowed,
    # with the delay of the fifth attempt.
    assert budget.next_delay(now=60.0) == 8.0
    # Long after, the component is back to the first delay.
    assert budget.next_delay(now=500.0) == 0.5
    assert budget.record(now=500.0) == 1
    assert budget.total == 6


def test_a_nonsense_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="restart delays"):
        RestartPolicy(initial_delay_seconds=0)
    with pytest.raises(ValueError, match="restart delays"):
        RestartPolicy(initial_delay_seconds=5, max_delay_seconds=1)
    with pytest.raises(ValueError, match="restart cap"):
        RestartPolicy(max_per_window=0)


def test_exit_text_names_the_signal_or_the_code() -> None:
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(None) == "exit status unknown"
