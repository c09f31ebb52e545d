"""The per-bank circuit breaker: after a run of link failures, calls are
refused without sending (the adapter answers ``LinkDown``) until a trial
call, or a good health probe, shows the link is back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from observability import metrics


class CircuitState(StrEnum):
    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failures_to_open: int = 5
    open_seconds: float = 10.0

    def __post_init__(self) -> None:
        assert self.failures_to_open >= 1, self
        assert self.open_seconds > 0, self


class CircuitBreaker:
    """Per-bank breaker. Closed: calls go through; ``failures_to_open``
    consecutive link failures open it. Open: calls are refused without
    sending (the caller gets ``LinkDown``) for ``open_seconds``, then one
    trial call is let through (half-open); its success closes the breaker,
    its failure opens it again. A good health probe while open moves it to
    half-open at once, so recovery does not wait out the timer.

    Only link-level failures count (no connection, no answer, 5xx); a
    decline is a healthy bank saying no.

    ``acquire`` is ``try_acquire`` for callers that may wait: while a
    half-open trial is in flight they wait (bounded) for its verdict instead
    of being refused, so the calls queued behind a successful trial (a burst
    of status checks when a link comes back) go out at once; after a failed
    trial they are refused as before. Still one trial at a time.
    """

    def __init__(
        self,
        bank_id: str,
        config: BreakerConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bank_id = bank_id
        self._config = config or BreakerConfig()
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        # Set when a trial reports (replaced by a fresh event for the next).
        self._trial_over = asyncio.Event()
        self._export()

    @property
    def state(self) -> CircuitState:
        if (
            self._state is CircuitState.OPEN
            and self._clock() - self._opened_at >= self._config.open_seconds
        ):
            self._set(CircuitState.HALF_OPEN)
        return self._state

    def try_acquire(self) -> bool:
        """Whether a call may be sent now. A True in half-open state is the
        single trial: the caller must report it with ``record_*``."""
        match self.state:
            case CircuitState.CLOSED:
                return True
            case CircuitState.OPEN:
                return False
            case CircuitState.HALF_OPEN:
                if self._trial_in_flight:
                    return False
                self._trial_in_flight = True
                return True

    async def acquire(self, wait_seconds_max: float) -> bool:
        """Like ``try_acquire``, but behind a half-open trial in flight wait
        up to ``wait_seconds_max`` for its verdict."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds_max
        while not self.try_acquire():
            remaining = deadline - loop.time()
            if self._state is not CircuitState.HALF_OPEN or remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._trial_over.wait(), remaining)
            except TimeoutError:
                return False
        return True

    def _end_trial(self) -> None:
        if self._trial_in_flight:
            self._trial_in_flight = False
            self._trial_over.set()
            self._trial_over = asyncio.Event()

    def record_success(self) -> None:
        self._end_trial()
        self._failures = 0
        if self._state is not CircuitState.CLOSED:
            self._set(CircuitState.CLOSED)

    def record_failure(self) -> None:
        self._end_trial()
        self._failures += 1
        if self._state is CircuitState.HALF_OPEN or (
            self._state is CircuitState.CLOSED and self._failures >= self._config.failures_to_open
        ):
            self._opened_at = self._clock()
            self._set(CircuitState.OPEN)

    def record_abandoned(self) -> None:
        """The call was cancelled before it told us anything."""
        self._end_trial()

    def record_probe_success(self) -> None:
        if self._state is CircuitState.OPEN:
            self._set(CircuitState.HALF_OPEN)

    def _set(self, state: CircuitState) -> None:
        self._state = state
        self._export()

    def _export(self) -> None:
        metrics.circuit_breaker_state.labels(bank=self._bank_id).set(
            metrics.CIRCUIT_STATES[self._state.value]
        )
