"""How the rest of the service drives the sagas: start a payment, deliver a
bank's webhook, wake the in-doubt payments of a bank whose link is back, and
sweep for payments whose workflow was never started (API crash, Temporal
down at the time)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ledger import payments as pay
from workflows.common import recovery_queue
from workflows.payment import types as wt
from workflows.payment.external_debit import ExternalDebitWorkflow
from workflows.payment.external_debit import workflow_id_for as external_workflow_id
from workflows.payment.link_recovery import LinkRecoveryWorkflow
from workflows.payment.link_recovery import workflow_id_for as recovery_workflow_id
from workflows.payment.recovery_activities import signal_link_recovered
from workflows.payment.workflow import FinePaymentWorkflow, workflow_id_for

log = structlog.get_logger(__name__)

SWEEP_PAYMENTS_MAX = 5_000
SWEEP_PAGE_SIZE = 1_000
# The type name of FinePaymentWorkflow (``@workflow.defn(name=...)``).
RUNNING_QUERY = "WorkflowType = 'FinePayment' AND ExecutionStatus = 'Running'"


@dataclass(frozen=True)
class SagaConfig:
    task_queue: str
    policy: wt.VerifyPolicy


async def start_payment(
    client: Client, config: SagaConfig, decision_key: str, payment_id: UUID
) -> None:
    """Start the fine's workflow, or tell the running one that this payment
    waits (signal-with-start: idempotent, one workflow per fine)."""
    await client.start_workflow(
        FinePaymentWorkflow.run,
        wt.FinePaymentInput(
            decision_key=decision_key, payment_id=str(payment_id), policy=config.policy
        ),
        id=workflow_id_for(decision_key),
        task_queue=config.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        start_signal="payment_requested",
        start_signal_args=[wt.PaymentRef(str(payment_id))],
    )


async def start_external_debit(
    client: Client, config: SagaConfig, inp: wt.ExternalDebitInput
) -> None:
    """Handle a debit found outside a live payment, once per bank reference."""
    with contextlib.suppress(WorkflowAlreadyStartedError):
        await client.start_workflow(
            ExternalDebitWorkflow.run,
            inp,
            id=external_workflow_id(inp.bank, inp.bank_ref),
            task_queue=config.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
        )


async def signal_bank_update(client: Client, decision_key: str, update: wt.BankUpdate) -> None:
    handle = client.get_workflow_handle(workflow_id_for(decision_key))
    await handle.signal(FinePaymentWorkflow.bank_update, update)


async def request_recheck(client: Client, decision_key: str, payment_id: UUID) -> None:
    """An operator's "re-check now": the fine's workflow asks the bank for
    this payment's status at once (``FinePaymentWorkflow.recheck``). Raises
    RPCError (NOT_FOUND) when no workflow of the fine is running."""
    handle = client.get_workflow_handle(workflow_id_for(decision_key))
    await handle.signal(FinePaymentWorkflow.recheck, wt.PaymentRef(str(payment_id)))


async def wake_bank(client: Client, engine: AsyncEngine, bank: str) -> int:
    """Every in-doubt payment of ``bank`` re-checks now, each in its own
    workflow (the link-recovery event goes through ``start_link_recovery``,
    which settles in bulk first). Returns how many workflows were signalled."""
    async with engine.connect() as conn:
        in_doubt = await pay.payments_in_doubt(conn, bank)
    woken = await signal_link_recovered(client, sorted({p.decision_key for p in in_doubt}))
    log.info("bank.link_recovered.woken", bank=bank, payments=len(in_doubt), workflows=woken)
    return woken


async def start_link_recovery(
    client: Client, task_queue: str, bank: str
) -> WorkflowHandle[LinkRecoveryWorkflow, wt.RecoveryReport]:
    """The link-recovery event (the prober, an operator): settle in bulk what
    the bank confirms, then wake every in-doubt payment of the bank. Joins a
    recovery of the bank already running (it does one more pass). It runs
    on the recovery's own queue (``recovery_queue``), not behind the tasks
    of the payment workflows, which all come due when the link returns."""
    handle = await client.start_workflow(
        LinkRecoveryWorkflow.run,
        wt.BankRef(bank),
        id=recovery_workflow_id(bank),
        task_queue=recovery_queue(task_queue),
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        start_signal="link_recovered",
    )
    log.info("bank.link_recovery.started", bank=bank, workflow_id=handle.id)
    return handle


async def running_payment_workflows(client: Client) -> set[str]:
    """Ids of the running payment workflows, from the visibility store in a
    few pages (it may lag a little behind: callers confirm with describe)."""
    ids: set[str] = set()
    async for execution in client.list_workflows(
        RUNNING_QUERY, limit=SWEEP_PAYMENTS_MAX, page_size=SWEEP_PAGE_SIZE
    ):
        ids.add(execution.id)
    return ids


async def sweep_unstarted(
    client: Client, engine: AsyncEngine, config: SagaConfig, now: datetime, older_than: timedelta
) -> int:
    """Start the workflow of any in-doubt payment that has none running:
    the API may have crashed between its commit and the start, or Temporal
    may have been down. Safe to run any time (start is idempotent).

    One visibility listing tells which are running; only the others are
    described (to rule out visibility lag) and started. During a bank
    outage hundreds of payments are in doubt, all with running workflows:
    a describe for each, every sweep, loaded the server and the worker
    while the link came back."""
    async with engine.connect() as conn:
        in_doubt = await pay.payments_in_doubt(conn, limit=SWEEP_PAYMENTS_MAX)
    due = [p for p in in_doubt if now - p.created_at >= older_than]
    if not due:
        return 0
    running = await running_payment_workflows(client)
    started = 0
    for payment in due:
        if workflow_id_for(payment.decision_key) in running:
            continue
        handle = client.get_workflow_handle(workflow_id_for(payment.decision_key))
        try:
            description = await handle.describe()
            if description.status == WorkflowExecutionStatus.RUNNING:
                continue
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        await start_payment(client, config, payment.decision_key, payment.payment_id)
        started += 1
    if started:
        log.warning("payments.sweeper.started", count=started)
    return started
