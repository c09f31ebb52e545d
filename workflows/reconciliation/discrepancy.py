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

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.common import BANK_WAIT, LEDGER_STEP, ApprovalWaiting, remote
    from workflows.reconciliation import types as rt
    from workflows.reconciliation.activities import ReconciliationActivities as Steps

WORKFLOW_ID_PREFIX = "discrepancy/"
CHECK_INTERVAL = timedelta(hours=1)


def workflow_id_for(discrepancy_id: int) -> str:
    return f"{WORKFLOW_ID_PREFIX}{discrepancy_id}"


@workflow.defn(name="DiscrepancyAction")
class DiscrepancyActionWorkflow(ApprovalWaiting):
    @workflow.run
    async def run(self, inp: rt.DiscrepancyActionInput) -> rt.DiscrepancyActionResult:
        ref = rt.ApprovalRef(inp.discrepancy_id, inp.approval_id)
        status = await self._await_decision(inp, ref)
        if status != "approved":
            self._state = status
            outcome = (
                rt.ActionOutcome(status)
                if status in (rt.ActionOutcome.REJECTED, rt.ActionOutcome.EXPIRED)
                else rt.ActionOutcome.FAILED
            )
            return rt.DiscrepancyActionResult(inp.discrepancy_id, inp.approval_id, outcome, status)
        self._state = f"carrying out {inp.action}"
        if inp.action == "refund":
            # A refund the bank has not confirmed yet is asked again, with
            # the same key, for up to a week.
            result = await remote(Steps.refund, ref, BANK_WAIT)
        else:
            result = await remote(Steps.manual_match, ref, LEDGER_STEP)
        self._state = result.outcome
        return result

    async def _await_decision(self, inp: rt.DiscrepancyActionInput, ref: rt.ApprovalRef) -> str:
        deadline = workflow.now() + timedelta(seconds=inp.timeout_seconds)
        while True:
            remaining = deadline - workflow.now()
            if remaining <= timedelta(0):
                expired = await remote(Steps.expire, ref, LEDGER_STEP)
                return expired.status
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._woken, timeout=min(remaining, CHECK_INTERVAL)
                )
            self._woken = False
            current = await remote(Steps.approval_status, ref, LEDGER_STEP)
            if current.status != "pending":
                return current.status
