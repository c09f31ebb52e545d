"""Inputs and outputs of the ops workflows and activities (plain values,
serialised to JSON: names are stable, histories carry them)."""

# No ``from __future__ import annotations``: the data converter reads these
# dataclasses' field types (as in workflows/payment/types.py).
from dataclasses import dataclass, field


@dataclass(frozen=True)
class HeartbeatInput:
    """The task queues the heartbeat proves: the worker's and each bank's."""

    task_queues: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Tick:
    """The argument of an ops activity, which takes none: the heartbeat's
    queue is where it runs (the gauge is labelled with the queue that really
    ran it, not with what a caller says), a check reads the whole ledger."""


@dataclass(frozen=True)
class HeartbeatReport:
    answered: list[str]
    silent: list[str]


@dataclass(frozen=True)
class CheckResult:
    check: str
    problems: int


@dataclass(frozen=True)
class IntegrityReport:
    results: list[CheckResult]
