"""DiscrepancyActionWorkflow: a refund or manual match of a discrepancy waits
for a second person's approval, then is carried out.

Id ``discrepancy/<id>``; started when finance requests the action. The
``decision`` signal (sent by the approvals API once the decision is in the
database) only wakes it: every wake, and a periodic check, re-reads the
approval, so a lost signal costs at most one check interval and a forged one
moves nothing. Not decided before the timeout: the approval expires and the
discrepancy stays open.

Deterministic code only; the I/O is in ``workflows.reconciliation.activities``.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from workflows.disputes.types import DECISION_SIGNAL, ApprovalDecision
    from workflows.payment.workflow import LEDGER_STEP_SCHEDULE_TO_CLOSE, LEDGER_STEP_TIMEOUT
    from workflows.reconciliation import types as rt

WORKFLOW_ID_PREFIX = "discrepancy/"
CHECK_INTERVAL = timedelta(hours=1)
T = TypeVar("T")
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=500),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
)
# A refund the bank has not confirmed yet is asked again, with the same key,
# for up to a week.
BANK_WAIT_TIMEOUT = timedelta(seconds=60)
BANK_WAIT_SCHEDULE_TO_CLOSE = timedelta(days=7)


def workflow_id_for(discrepancy_id: int) -> str:
    return f"{WORKFLOW_ID_PREFIX}{discrepancy_id}"


@workflow.defn(name="DiscrepancyAction")
class DiscrepancyActionWorkflow:
    def __init__(self) -> None:
        self._woken = False
        self._state = "waiting for approval"

    @workflow.signal(name=DECISION_SIGNAL)
    def decision(self, decision: ApprovalDecision) -> None:
        self._woken = True

    @workflow.query(name="state")
    def state(self) -> str:
        return self._state

    @workflow.run
    async def run(self, inp: rt.DiscrepancyActionInput) -> rt.DiscrepancyActionResult:
        ref = rt.ApprovalRef(inp.discrepancy_id, inp.approval_id)
        status = await self._await_decision(inp, ref)
        if status != "approved":
            self._state = status
            outcome = status if status in ("rejected", "expired") else "failed"
            return rt.DiscrepancyActionResult(inp.discrepancy_id, inp.approval_id, outcome, status)
        self._state = f"carrying out {inp.action}"
        if inp.action == "refund":
            result: rt.DiscrepancyActionResult = await workflow.execute_activity(
                "discrepancy.refund",
                ref,
                result_type=rt.DiscrepancyActionResult,
                start_to_close_timeout=BANK_WAIT_TIMEOUT,
                schedule_to_close_timeout=BANK_WAIT_SCHEDULE_TO_CLOSE,
                retry_policy=STEP_RETRY,
            )
        else:
            result = await self._step("discrepancy.manual_match", ref, rt.DiscrepancyActionResult)
        self._state = result.outcome
        return result

    async def _await_decision(self, inp: rt.DiscrepancyActionInput, ref: rt.ApprovalRef) -> str:
        deadline = workflow.now() + timedelta(seconds=inp.timeout_seconds)
        while True:
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                expired = await self._step("discrepancy.expire", ref, rt.ApprovalStatus)
                return expired.status
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._woken, timeout=min(remaining, CHECK_INTERVAL)
                )
            self._woken = False
            current = await self._step("discrepancy.approval_status", ref, rt.ApprovalStatus)
            if current.status != "pending":
                return current.status

    async def _step(self, activity: str, arg: object, result_type: type[T]) -> T:
        result: T = await workflow.execute_activity(
            activity,
            arg,
            result_type=result_type,
            start_to_close_timeout=LEDGER_STEP_TIMEOUT,
            schedule_to_close_timeout=LEDGER_STEP_SCHEDULE_TO_CLOSE,
            retry_policy=STEP_RETRY,
        )
        return result
