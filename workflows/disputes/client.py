"""How the API drives DisputeWorkflows: start one when a resolution needs
approval, and deliver a decision (signal-with-start, so a decision reaches a
workflow that could not be started earlier, e.g. while Temporal was down)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ledger.core.approvals import Approval
from workflows.disputes import types as dt
from workflows.disputes.workflow import DisputeWorkflow, workflow_id_for


@dataclass(frozen=True)
class DisputePolicy:
    task_queue: str
    timeout_seconds: float
    reminder_interval_seconds: float
    reminders_max: int

    def input_for(self, dispute_id: int, approval: Approval) -> dt.DisputeWorkflowInput:
        return dt.DisputeWorkflowInput(
            dispute_id=dispute_id,
            approval_id=approval.id,
            action=str(approval.payload.get("action", "")),
            timeout_seconds=self.timeout_seconds,
            reminder_interval_seconds=self.reminder_interval_seconds,
            reminders_max=self.reminders_max,
        )


async def _start(
    client: Client,
    policy: DisputePolicy,
    dispute_id: int,
    approval: Approval,
    decision: dt.ApprovalDecision | None = None,
) -> None:
    """Start the dispute's workflow for ``approval``; with a ``decision``,
    signal-with-start (the running one, if any, gets the signal)."""
    await client.start_workflow(
        DisputeWorkflow.run,
        policy.input_for(dispute_id, approval),
        id=workflow_id_for(dispute_id),
        task_queue=policy.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        start_signal=dt.DECISION_SIGNAL if decision is not None else None,
        start_signal_args=[decision] if decision is not None else [],
    )


async def start_dispute(
    client: Client, policy: DisputePolicy, dispute_id: int, approval: Approval
) -> None:
    """Start the dispute's workflow for this approval (a running one is kept)."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await _start(client, policy, dispute_id, approval)


async def deliver_decision(
    client: Client, policy: DisputePolicy, approval: Approval, decision: dt.ApprovalDecision
) -> bool:
    """Tell the workflow waiting for ``approval`` what was decided. Returns
    False when no workflow waits for it (nothing to tell)."""
    if approval.subject_type == "dispute":
        await _start(client, policy, int(approval.subject_id), approval, decision)
        return True
    if approval.workflow_id is None:
        return False
    try:
        await client.get_workflow_handle(approval.workflow_id).signal(dt.DECISION_SIGNAL, decision)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True
