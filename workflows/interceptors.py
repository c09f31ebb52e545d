"""The worker's activity interceptors: the one place where an error raised by
a step becomes Temporal's non-retryable failure, and the log context of every
step.

An error class says itself whether retrying can change the outcome (its
``non_retryable`` class attribute: ``ledger.core.errors.LedgerError``,
``bank_adapters.types.InvalidRequestError`` and ``BankAdapterError``, the
activities' own errors); subclasses inherit it. The ledger and the adapters
stay free of Temporal: they set a plain flag, and this interceptor turns an
error that carries it into ``ApplicationError(non_retryable=True)`` under the
error's class name, so the workflow's step stops at its first attempt instead
of being retried for as long as its schedule-to-close timeout allows.
"""

from __future__ import annotations

from typing import Any

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from observability.metrics import workflow_steps_stopped_total

log = structlog.get_logger(__name__)


def retrying_cannot_help(err: BaseException) -> bool:
    """The error's own word on whether a retry could succeed."""
    if isinstance(err, ApplicationError):
        return err.non_retryable
    return bool(getattr(type(err), "non_retryable", False))


class _LogContext(ActivityInboundInterceptor):
    """Every log line of an activity carries its workflow id and activity."""

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        with structlog.contextvars.bound_contextvars(
            workflow_id=info.workflow_id, activity=info.activity_type, attempt=info.attempt
        ):
            return await super().execute_activity(input)


class _NonRetryable(ActivityInboundInterceptor):
    """A step whose error says retrying cannot help fails for good, logged at
    error level and counted (``workflow_steps_stopped_total``): a person must
    look."""

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        try:
            return await super().execute_activity(input)
        except Exception as err:
            if not retrying_cannot_help(err):
                raise
            error_type = err.type if isinstance(err, ApplicationError) else None
            error_type = error_type or type(err).__name__
            activity_type = activity.info().activity_type
            workflow_steps_stopped_total.labels(activity_type, error_type).inc()
            log.error("workflow.step_stopped", error_type=error_type, error=str(err)[:500])
            if isinstance(err, ApplicationError):
                raise
            raise ApplicationError(str(err), type=error_type, non_retryable=True) from err


class ActivityInterceptor(Interceptor):
    """Installed by ``reconciler.worker.build_worker``: the log context
    outermost, so the error line of a stopped step carries it too."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _LogContext(_NonRetryable(next))
