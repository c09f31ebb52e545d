"""What every workflow shares: the step policies (timeouts and retries),
the two ways of running one step, remote or local, and what a workflow
waiting for an approval exposes (``ApprovalWaiting``).

A step is an activity method (``PaymentActivities.send_debit``), passed by
reference so mypy checks its argument and result types; the activity's
stable name (``@activity.defn(name="payment.send_debit")``) is what
histories record. No ``workflow.patched`` call lives here: a patch belongs to
the workflow whose commands it guards, never to plumbing that other
workflows call (docs/temporal.md).

Which errors are worth a retry is not decided here either: an error that
says retrying cannot help stops its step at the first attempt
(``workflows.interceptors``); every other failure is retried with backoff
within the policy's schedule-to-close bound.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

from workflows.disputes.types import DECISION_SIGNAL, ApprovalDecision

S = TypeVar("S")
A = TypeVar("A")
R = TypeVar("R")

# A local step's retries whose backoff reaches this wait on a durable timer
# (a workflow task each) instead of inside the worker.
LOCAL_RETRY_THRESHOLD = timedelta(minutes=1)


def backoff(initial: timedelta, maximum: timedelta, *, attempts_max: int = 0) -> RetryPolicy:
    """Exponential backoff (factor 2) from ``initial`` to ``maximum``;
    ``attempts_max`` 0 leaves the bound to the schedule-to-close timeout."""
    return RetryPolicy(
        initial_interval=initial,
        backoff_coefficient=2.0,
        maximum_interval=maximum,
        maximum_attempts=attempts_max,
    )


@dataclass(frozen=True)
class StepPolicy:
    """How long one attempt may take, how long the step may take in all
    (its retries included; None: bounded by the retry policy's attempts),
    and how it is retried."""

    start_to_close: timedelta
    schedule_to_close: timedelta | None
    retry: RetryPolicy
    heartbeat: timedelta | None = None


# Bank calls: the adapter maps every bank problem to a result, so an activity
# failure here is our own (database, bug); retry it, bounded in time.
BANK_CALL_TIMEOUT = timedelta(seconds=30)
BANK_CALL_SCHEDULE_TO_CLOSE = timedelta(hours=1)
BANK_CALL_RETRY = backoff(timedelta(seconds=1), timedelta(seconds=30))
# A bank call runs on its bank's task queue, in whichever worker took it; if
# that worker dies mid-call, the heartbeat stops (``keeps_alive``) and the
# call is tried again elsewhere after BANK_CALL_HEARTBEAT, not after the
# 30 s an attempt may take. Safe: the adapter's calls are idempotent by key.
BANK_CALL_HEARTBEAT = timedelta(seconds=5)
BANK_CALL = StepPolicy(
    BANK_CALL_TIMEOUT, BANK_CALL_SCHEDULE_TO_CLOSE, BANK_CALL_RETRY, BANK_CALL_HEARTBEAT
)
# One database step (idempotent): after a debit, forward recovery books,
# receipts and refunds until done, bounded by a week, after which an
# operator must look (alerts fire long before).
LEDGER_STEP = StepPolicy(
    timedelta(seconds=30),
    timedelta(days=7),
    backoff(timedelta(milliseconds=500), timedelta(seconds=60)),
)
# Waiting on the bank (a refund not confirmed yet, a payment still being
# verified): asked again, with the same key, for up to a week.
BANK_WAIT = StepPolicy(
    timedelta(seconds=60),
    timedelta(days=7),
    backoff(timedelta(seconds=1), timedelta(seconds=60)),
)


def bank_queue(task_queue: str, bank: str) -> str:
    """The task queue of the activities that call ``bank``: each bank's
    calls have their own queue and their own bounded slots in the worker
    (``reconciler.worker``), so a bank whose calls hang fills only its own
    slots, never the ones the other banks' payments need."""
    return f"{task_queue}.bank.{bank}"


def recovery_queue(task_queue: str) -> str:
    """The task queue of ``LinkRecoveryWorkflow`` and its bulk step, with
    its own slots in the worker: when a link comes back, the payment
    workflows of the outage all have tasks due on ``task_queue`` at once
    (thousands of them, backed up behind the bank's slots), and a recovery
    queued behind them started minutes late (docs/benchmarks.md)."""
    return f"{task_queue}.recovery"


async def remote(
    step: Callable[[S, A], Awaitable[R]],
    arg: A,
    policy: StepPolicy,
    *,
    task_queue: str | None = None,
) -> R:
    """Run ``step`` as an activity scheduled through the Temporal server (its
    own events in the history, visible while it runs or retries), on
    ``task_queue`` (default: the workflow's own)."""
    return await workflow.execute_activity_method(
        step,
        arg,
        task_queue=task_queue,
        start_to_close_timeout=policy.start_to_close,
        schedule_to_close_timeout=policy.schedule_to_close,
        heartbeat_timeout=policy.heartbeat,
        retry_policy=policy.retry,
    )


async def local(step: Callable[[S, A], Awaitable[R]], arg: A, policy: StepPolicy) -> R:
    """Run ``step`` as a local activity: in this worker, inside the workflow
    task, recorded as one marker (no round trip through the server). Only
    for idempotent steps, as a crashed worker runs it again."""
    return await workflow.execute_local_activity_method(
        step,
        arg,
        start_to_close_timeout=policy.start_to_close,
        schedule_to_close_timeout=policy.schedule_to_close,
        retry_policy=policy.retry,
        local_retry_threshold=LOCAL_RETRY_THRESHOLD,
    )


class ApprovalWaiting:
    """The base of a workflow that waits for a second person's decision: the
    ``decision`` signal only wakes it (it re-reads the approval), and the
    ``state`` query says what it is doing."""

    def __init__(self) -> None:
        self._woken = False
        self._state = "waiting for approval"

    @workflow.signal(name=DECISION_SIGNAL)
    def decision(self, decision: ApprovalDecision) -> None:
        self._woken = True

    @workflow.query(name="state")
    def state(self) -> str:
        return self._state
