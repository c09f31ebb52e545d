"""DisputeWorkflow: a dispute's confirm or refund waits for a second
person's approval, then is carried out.

Id ``dispute/<id>``; started when finance requests the resolution. It waits
for the ``decision`` signal (sent by the API after it recorded the decision
in the database) with an overall timeout, sending a reminder every interval
(bounded in number). The signal only wakes it: each wake, and each reminder
tick, re-reads the approval from the database, so a lost signal costs at most
one interval and a forged one moves nothing.

* rejected: nothing to do (the API reopened the dispute with the decision);
* expired: the approval expires and the dispute is open again;
* approved confirm: the bank debit is booked through the ExternalDebit saga
  (settle + receipt; a duplicate is refunded by that saga), or, if a payment
  of the fine at that bank is still being verified, after that payment
  ends;
* approved refund: refunded through the bank adapter, retried with the same
  key until the bank confirms, then booked.

Deterministic code only; all I/O is in ``workflows.disputes.activities``.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import ChildWorkflowError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from workflows.common import BANK_WAIT, LEDGER_STEP, ApprovalWaiting, remote
    from workflows.disputes import types as dt
    from workflows.disputes.activities import DisputeActivities as Steps
    from workflows.payment.external_debit import ExternalDebitWorkflow
    from workflows.payment.external_debit import workflow_id_for as external_workflow_id

WORKFLOW_ID_PREFIX = "dispute/"
PLAN_ROUNDS_MAX = 5
# Every step is remote: a dispute moves a few steps a day, and its steps
# (waiting on the bank, on the payment saga) are worth seeing as activities.
# A database step uses LEDGER_STEP; waiting on the bank (a refund not
# confirmed yet, a payment still being verified) BANK_WAIT: up to a week.
CHILD_EXECUTION_TIMEOUT = timedelta(days=8)


def workflow_id_for(dispute_id: int) -> str:
    return f"{WORKFLOW_ID_PREFIX}{dispute_id}"


@workflow.defn(name="Dispute")
class DisputeWorkflow(ApprovalWaiting):
    @workflow.run
    async def run(self, inp: dt.DisputeWorkflowInput) -> dt.DisputeOutcome:
        ref = dt.DisputeRef(inp.dispute_id, inp.approval_id)
        approval = await self._await_decision(inp, ref)
        if approval.status == "approved":
            self._state = f"carrying out {inp.action}"
            if inp.action == "confirm":
                return await self._confirm(ref)
            return await remote(Steps.refund, ref, BANK_WAIT)
        self._state = approval.status
        if approval.next_approval_id is not None and approval.next_action is not None:
            # A new request was made while this run was finishing: take it up.
            workflow.continue_as_new(
                dt.DisputeWorkflowInput(
                    dispute_id=inp.dispute_id,
                    approval_id=approval.next_approval_id,
                    action=approval.next_action,
                    timeout_seconds=inp.timeout_seconds,
                    reminder_interval_seconds=inp.reminder_interval_seconds,
                    reminders_max=inp.reminders_max,
                )
            )
        ended = (dt.Resolution.REJECTED, dt.Resolution.EXPIRED)
        outcome = approval.status if approval.status in ended else dt.Resolution.FAILED
        return dt.DisputeOutcome(inp.dispute_id, inp.approval_id, outcome, approval.status)

    async def _await_decision(
        self, inp: dt.DisputeWorkflowInput, ref: dt.DisputeRef
    ) -> dt.ApprovalState:
        started = workflow.now()
        deadline = started + timedelta(seconds=inp.timeout_seconds)
        reminders = 0
        while True:
            remaining = (deadline - workflow.now()).total_seconds()
            if remaining <= 0:
                return await remote(Steps.expire, ref, LEDGER_STEP)
            try:
                await workflow.wait_condition(
                    lambda: self._woken,
                    timeout=timedelta(seconds=min(inp.reminder_interval_seconds, remaining)),
                )
                signalled = True
            except TimeoutError:
                signalled = False
            self._woken = False
            approval = await remote(Steps.approval_state, ref, LEDGER_STEP)
            if approval.status != "pending":
                return approval
            late = workflow.now() >= deadline
            if not signalled and not late and reminders < inp.reminders_max:
                reminders += 1
                waiting = int((workflow.now() - started).total_seconds())
                await remote(
                    Steps.remind,
                    dt.ReminderInput(inp.dispute_id, inp.approval_id, reminders, waiting),
                    LEDGER_STEP,
                )

    async def _confirm(self, ref: dt.DisputeRef) -> dt.DisputeOutcome:
        for _ in range(PLAN_ROUNDS_MAX):
            plan = await remote(Steps.plan_confirm, ref, LEDGER_STEP)
            if plan.mode == dt.ConfirmMode.FAILED:
                return await self._fail(ref, plan.reason)
            assert plan.payment_id is not None, plan
            wait = dt.PaymentWait(ref.dispute_id, ref.approval_id, plan.payment_id)
            if plan.mode == dt.ConfirmMode.WAIT_LIVE:
                self._state = f"waiting for payment {plan.payment_id} to be verified"
                await remote(Steps.await_payment, wait, BANK_WAIT)
                continue
            if plan.mode == dt.ConfirmMode.EXTERNAL:
                assert plan.external is not None, plan
                failure = await self._book_external(plan)
                if failure is not None:
                    return await self._fail(ref, failure)
            return await remote(Steps.finish_confirm, wait, BANK_WAIT)
        return await self._fail(ref, "the fine's payments kept changing; look again")

    async def _book_external(self, plan: dt.ConfirmPlan) -> str | None:
        """Run the ExternalDebit saga for the debit; None when it is booked
        (or being booked by a run someone else started)."""
        assert plan.external is not None
        self._state = "booking the debit"
        try:
            await workflow.execute_child_workflow(
                ExternalDebitWorkflow.run,
                plan.external,
                id=external_workflow_id(plan.external.bank, plan.external.bank_ref),
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                # The saga moves money: it must finish even if this run is ended.
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                execution_timeout=CHILD_EXECUTION_TIMEOUT,
            )
        except WorkflowAlreadyStartedError:
            return None
        except ChildWorkflowError as err:
            return f"booking the debit failed: {err.cause or err}"
        return None

    async def _fail(self, ref: dt.DisputeRef, reason: str) -> dt.DisputeOutcome:
        self._state = "failed"
        return await remote(
            Steps.fail, dt.FailInput(ref.dispute_id, ref.approval_id, reason), LEDGER_STEP
        )
