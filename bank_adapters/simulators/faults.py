"""Fault injection: the modes, their validation, and the dice.

``POST /faults`` takes ``{"mode", "probability" (0..1, default 1),
"seconds" (how long the fault lasts; omitted = until ``DELETE /faults``),
...mode parameters}``. Several faults can be active at once. What each does
on the bank port:

===========================  ===================================================
``link_down``                the bank port refuses connections (its listener is
                             closed, open connections are cut) for ``seconds``;
                             ``probability`` is the chance the outage happens
``flap``                     the link goes down and up: every ``period_seconds``
                             (default 1) it is down with ``probability``
``latency``                  each request waits ``latency_ms`` (default 500)
``timeout_after_debit``      a money request is carried out, then the answer is
                             held ``hang_seconds`` (default 30): the client times
                             out not knowing
``lost_response``            the request is carried out, then the connection is
                             cut without an answer
``duplicate_debit``          a debit is booked twice (two bank refs, the payer
                             charged twice); the answer names the first
``http_500``                 answer 500; with ``after_debit: true`` the money
                             request is carried out first
``malformed``                the request is carried out, the answer is garbled
``late_webhook``             webhooks are sent ``delay_seconds`` (default 10) late
``statement_extra_lines``    statements gain ``count`` (default 1) lines that
                             match nothing (an unknown credit, a fee)
``statement_missing_lines``  each statement line is left out with ``probability``
===========================  ===================================================

Faults are stored with the rest of the state, so they survive a restart.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

SECONDS_MAX: Final = 86_400.0


class FaultMode(StrEnum):
    LINK_DOWN = "link_down"
    FLAP = "flap"
    LATENCY = "latency"
    TIMEOUT_AFTER_DEBIT = "timeout_after_debit"
    LOST_RESPONSE = "lost_response"
    DUPLICATE_DEBIT = "duplicate_debit"
    HTTP_500 = "http_500"
    MALFORMED = "malformed"
    LATE_WEBHOOK = "late_webhook"
    STATEMENT_EXTRA_LINES = "statement_extra_lines"
    STATEMENT_MISSING_LINES = "statement_missing_lines"


class FaultSpecError(ValueError):
    """A ``POST /faults`` body that cannot be a fault (answered 400)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class _Param:
    kind: type
    default: float | bool
    low: float = 0.0
    high: float = 0.0


_PARAMS: Final[dict[FaultMode, dict[str, _Param]]] = {
    FaultMode.LINK_DOWN: {},
    FaultMode.FLAP: {"period_seconds": _Param(float, 1.0, 0.05, 3600.0)},
    FaultMode.LATENCY: {"latency_ms": _Param(int, 500, 1, 120_000)},
    FaultMode.TIMEOUT_AFTER_DEBIT: {"hang_seconds": _Param(float, 30.0, 0.01, 600.0)},
    FaultMode.LOST_RESPONSE: {},
    FaultMode.DUPLICATE_DEBIT: {},
    FaultMode.HTTP_500: {"after_debit": _Param(bool, False)},
    FaultMode.MALFORMED: {},
    FaultMode.LATE_WEBHOOK: {"delay_seconds": _Param(float, 10.0, 0.0, 3600.0)},
    FaultMode.STATEMENT_EXTRA_LINES: {"count": _Param(int, 1, 1, 100)},
    FaultMode.STATEMENT_MISSING_LINES: {},
}


@dataclass(frozen=True, slots=True)
class FaultSpec:
    mode: FaultMode
    probability: float
    seconds: float | None
    params: dict[str, Any]


def _number(name: str, value: object, low: float, high: float, *, integer: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultSpecError("invalid_fault", f"{name} must be a number")
    if integer and not isinstance(value, int):
        raise FaultSpecError("invalid_fault", f"{name} must be a whole number")
    if not math.isfinite(value) or not low <= value <= high:
        raise FaultSpecError("invalid_fault", f"{name} must be in {low:g}..{high:g}")
    return value


def parse_fault(body: object) -> FaultSpec:
    if not isinstance(body, dict):
        raise FaultSpecError("invalid_fault", "body must be a JSON object")
    mode_text = str(body.get("mode"))
    try:
        mode = FaultMode(mode_text)
    except ValueError:
        known = ", ".join(m.value for m in FaultMode)
        raise FaultSpecError(
            "unknown_fault_mode", f"unknown mode {mode_text[:40]!r}; known: {known}"
        ) from None
    probability = _number("probability", body.get("probability", 1.0), 0.0, 1.0, integer=False)
    seconds_value = body.get("seconds")
    seconds = (
        None
        if seconds_value is None
        else _number("seconds", seconds_value, 0.001, SECONDS_MAX, integer=False)
    )
    allowed = _PARAMS[mode]
    unknown = sorted(set(body) - {"mode", "probability", "seconds"} - set(allowed))
    if unknown:
        raise FaultSpecError(
            "invalid_fault", f"mode {mode.value} takes no {', '.join(unknown)[:100]}"
        )
    params: dict[str, Any] = {}
    for name, spec in allowed.items():
        value = body.get(name, spec.default)
        if spec.kind is bool:
            if not isinstance(value, bool):
                raise FaultSpecError("invalid_fault", f"{name} must be true or false")
            params[name] = value
        else:
            params[name] = _number(name, value, spec.low, spec.high, integer=spec.kind is int)
    return FaultSpec(mode, float(probability), seconds, params)


def flap_down(
    fault_id: int, created_at: float, period_seconds: float, probability: float, now: float
) -> bool:
    """Whether a flapping link is down at ``now``: decided once per period,
    reproducibly (the same fault gives the same pattern after a restart)."""
    period = int((now - created_at) // period_seconds)
    return random.Random(f"flap:{fault_id}:{period}").random() < probability  # noqa: S311
