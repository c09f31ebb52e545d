"""The scenarios ``record.py`` records: each drives the real API, worker and
bank simulators into one story of one workflow and returns its handle, and
names the markers its history must show (see ``record.py``)."""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from ledger.fines import get_fine
from tests.support.api import make_token
from tests.support.stack import PAYER, SagaStack, eventually
from workflows.disputes.workflow import workflow_id_for as dispute_workflow_id
from workflows.ops import types as ot
from workflows.ops.schedules import polled_queues
from workflows.ops.workflow import HeartbeatWorkflow, IntegrityChecksWorkflow
from workflows.payment import types as wt
from workflows.payment.client import (
    SagaConfig,
    request_recheck,
    start_external_debit,
    wake_bank,
)
from workflows.payment.external_debit import ExternalDebitWorkflow
from workflows.payment.external_debit import workflow_id_for as external_workflow_id
from workflows.payment.workflow import FinePaymentWorkflow, workflow_id_for

LOCAL_ACTIVITY_MARKER = "core_local_activity"

Handle = WorkflowHandle[Any, Any]
ScenarioFn = Callable[[SagaStack], Awaitable[Handle]]


@dataclass(frozen=True)
class Scenario:
    name: str
    run: ScenarioFn
    expect: dict[str, int] = field(default_factory=dict)
    overrides: dict[str, Any] = field(default_factory=dict)


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    name: str, *, expect: dict[str, int] | None = None, **overrides: Any
) -> Callable[[ScenarioFn], ScenarioFn]:
    def register(fn: ScenarioFn) -> ScenarioFn:
        assert name not in SCENARIOS, f"scenario {name} defined twice"
        SCENARIOS[name] = Scenario(name, fn, dict(expect or {}), overrides)
        return fn

    return register


# --- helpers for scenarios -----------------------------------------------------------


async def decision_key(stack: SagaStack, number: str) -> str:
    async with stack.engine.connect() as conn:
        return (await get_fine(conn, number)).decision_key


async def payment_handle(stack: SagaStack, number: str) -> Handle:
    workflow_id = workflow_id_for(await decision_key(stack, number))
    return stack.client.get_workflow_handle_for(FinePaymentWorkflow.run, workflow_id)


async def finished_payment(stack: SagaStack, number: str, bank: str) -> Handle:
    """The fine's payment workflow once it closed, the bank's faults cleared
    (a refund is a money request too: let it through)."""
    await stack.admins[bank].clear_faults()
    handle = await payment_handle(stack, number)
    await handle.result()
    return handle


async def pay(stack: SagaStack, number: str, bank: str, payer: str = PAYER) -> str:
    status, body = await stack.pay(number, bank, payer=payer)
    assert status == 202, body
    return str(body["payment_id"])


async def activity_count(handle: Handle, activity_type: str) -> int:
    history = await handle.fetch_history()
    return markers(history)[f"activity:{activity_type}"]


async def external_handle_when_started(stack: SagaStack, workflow_id: str) -> Handle:
    handle = stack.client.get_workflow_handle_for(ExternalDebitWorkflow.run, workflow_id)

    async def started() -> bool:
        try:
            await handle.describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise
        return True

    await eventually(started, 30, f"workflow {workflow_id} to start")
    return handle


def markers(history: WorkflowHistory) -> collections.Counter[str]:
    """What a history shows, as countable markers (see the module doc)."""
    seen: collections.Counter[str] = collections.Counter()
    for event in history.events:
        match event.event_type:
            case EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled = event.activity_task_scheduled_event_attributes
                seen[f"activity:{scheduled.activity_type.name}"] += 1
            case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
                signaled = event.workflow_execution_signaled_event_attributes
                seen[f"signal:{signaled.signal_name}"] += 1
            case EventType.EVENT_TYPE_TIMER_STARTED:
                seen["timer"] += 1
            case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                seen["continue_as_new"] += 1
            case EventType.EVENT_TYPE_MARKER_RECORDED:
                marker = event.marker_recorded_event_attributes
                # A local activity is a marker, not a scheduled activity: the
                # SDK's marker data names its type.
                if marker.marker_name == LOCAL_ACTIVITY_MARKER and "data" in marker.details:
                    data = json.loads(marker.details["data"].payloads[0].data)
                    seen[f"activity:{data['activity_type']}"] += 1
    return seen


# --- FinePayment ---------------------------------------------------------------------


@scenario(
    "fine_payment.happy_path",
    expect={"activity:payment.send_debit": 1, "activity:payment.settle_with_receipt": 1},
)
async def fine_payment_happy_path(stack: SagaStack) -> Handle:
    number = await stack.new_fine()
    payment_id = await pay(stack, number, "sgbank")
    await stack.wait_payment(payment_id, {"succeeded"})
    return await payment_handle(stack, number)


@scenario("fine_payment.declined", expect={"activity:payment.decline": 1})
async def fine_payment_declined(stack: SagaStack) -> Handle:
    number = await stack.new_fine(900_000)
    poor = "555000111"
    await stack.admins["sgbank"].set_account(poor, balance_vnd=1_000)
    payment_id = await pay(stack, number, "sgbank", payer=poor)
    await stack.wait_payment(payment_id, {"declined"})
    return await payment_handle(stack, number)


@scenario(
    "fine_payment.verifying_then_succeeded",
    expect={
        "activity:payment.check_status": 3,
        "signal:link_recovered": 1,
        "activity:payment.settle_with_receipt": 1,
        "timer": 3,
    },
    verify_poll_interval_seconds_max=8.0,
)
async def fine_payment_verifying_then_succeeded(stack: SagaStack) -> Handle:
    """The answer is lost and so are the first status checks (the VietQR
    bank sends no webhooks); then the link is back, the prober's wake-up
    signal arrives and the next check finds the transfer."""
    bank = "hnbank"
    number = await stack.new_fine()
    await stack.admins[bank].add_fault("lost_response")
    payment_id = await pay(stack, number, bank)
    handle = await payment_handle(stack, number)

    async def polled_thrice() -> bool:
        return await activity_count(handle, "payment.check_status") >= 3

    await eventually(polled_thrice, 30, "three status checks")
    # Backoff has reached ~1.6 s: the signal lands before the next timer.
    await stack.admins[bank].clear_faults()
    # The per-workflow wake-up (the link-recovery event settles in bulk
    # first: see link_recovery.bulk_settled), so this run settles itself.
    assert await wake_bank(stack.client, stack.engine, bank) == 1
    await stack.wait_payment(payment_id, {"succeeded"})
    return handle


@scenario(
    "fine_payment.recheck_then_succeeded",
    expect={"signal:recheck": 1, "activity:payment.settle_with_receipt": 1},
    verify_poll_interval_seconds_initial=60.0,
    verify_poll_interval_seconds_max=120.0,
)
async def fine_payment_recheck_then_succeeded(stack: SagaStack) -> Handle:
    """The answer is lost; the next status check is a minute away. An
    operator's "re-check now" (the ``recheck`` signal) asks the bank at once,
    which finds the transfer."""
    bank = "hnbank"
    number = await stack.new_fine()
    await stack.admins[bank].add_fault("lost_response")
    payment_id = await pay(stack, number, bank)
    await stack.wait_payment(payment_id, {"verifying"})
    await stack.admins[bank].clear_faults()
    handle = await payment_handle(stack, number)
    key = await decision_key(stack, number)
    await request_recheck(stack.client, key, UUID(payment_id))
    await stack.wait_payment(payment_id, {"succeeded"})
    return handle


@scenario(
    "link_recovery.bulk_settled",
    expect={"activity:recovery.recover_bank": 1, "signal:link_recovered": 1},
    verify_poll_interval_seconds_initial=60.0,
    verify_poll_interval_seconds_max=120.0,
)
async def link_recovery_bulk_settled(stack: SagaStack) -> Handle:
    """Two payments left verifying by garbled answers and an outage; the
    link-recovery event settles both in bulk and wakes their workflows."""
    bank = "hnbank"
    await stack.admins[bank].add_fault("malformed")
    payment_ids = [await pay(stack, await stack.new_fine(), bank) for _ in range(2)]
    for payment_id in payment_ids:
        await stack.wait_payment(payment_id, {"verifying"})
    await stack.admins[bank].clear_faults()
    status, report = await stack.call("POST", f"/api/v1/banks/{bank}/link-recovered")
    assert status == 200, report
    assert report["settled"] == 2, report
    return stack.client.get_workflow_handle(report["recovery_workflow_id"])


@scenario(
    "fine_payment.double_debit_refunded",
    expect={
        "signal:bank_update": 1,
        "activity:payment.record_double_debit": 1,
        "activity:payment.settle_with_receipt": 2,
        "activity:payment.refund": 1,
    },
)
async def fine_payment_double_debit_refunded(stack: SagaStack) -> Handle:
    """The REST bank books the debit twice and loses its answer: both
    bookings arrive as webhooks while the payment is being verified; one
    settles the fine, the other is recorded and refunded by the same run."""
    bank = "sgbank"
    number = await stack.new_fine()
    await stack.admins[bank].add_fault("duplicate_debit")
    await stack.admins[bank].add_fault("lost_response")
    payment_id = await pay(stack, number, bank)
    await stack.wait_payment(payment_id, {"succeeded"})
    return await finished_payment(stack, number, bank)


@scenario(
    "fine_payment.settled_elsewhere_double_debit",
    expect={
        "signal:bank_update": 2,
        "signal:link_recovered": 1,
        "activity:payment.record_double_debit": 1,
        "activity:payment.refund": 1,
    },
)
async def fine_payment_settled_elsewhere_double_debit(stack: SagaStack) -> Handle:
    """The REST bank books the debit twice and holds its answer past the read
    timeout; both bookings arrive as webhooks meanwhile, and the link recovery
    settles the payment with the first. The run finds it final when the
    answer comes back unknown, and records and refunds the second booking."""
    bank = "sgbank"
    number = await stack.new_fine()
    await stack.admins[bank].add_fault("duplicate_debit", seconds=30)
    await stack.admins[bank].add_fault("timeout_after_debit", hang_seconds=12.0, seconds=30)
    payment_id = await pay(stack, number, bank)

    async def both_notified() -> bool:
        delivered = [h for h in await stack.admins[bank].webhooks() if h["delivered_at"]]
        return len(delivered) >= 2

    await eventually(both_notified, 10, "both bookings notified")
    status, body = await stack.call("POST", f"/api/v1/banks/{bank}/link-recovered")
    assert status in (200, 202), body
    await stack.wait_payment(payment_id, {"succeeded"})
    return await finished_payment(stack, number, bank)


@scenario(
    "fine_payment.link_down_then_declined",
    expect={"activity:payment.send_debit": 3, "timer": 2, "activity:payment.decline": 1},
)
async def fine_payment_link_down_then_declined(stack: SagaStack) -> Handle:
    """The bank's port refuses connections for longer than the resend window:
    nothing was ever sent, so the payment is declined as 'bank unavailable'."""
    bank = "sgbank"
    number = await stack.new_fine()
    await stack.admins[bank].add_fault("link_down", seconds=60)
    payment_id = await pay(stack, number, bank)
    payment = await stack.wait_payment(payment_id, {"declined"})
    assert payment["decline_reason"] == "bank unavailable, nothing debited", payment
    await stack.admins[bank].clear_faults()
    return await payment_handle(stack, number)


# --- ExternalDebit -------------------------------------------------------------------


@scenario(
    "external_debit.settle",
    expect={"activity:payment.settle_with_receipt": 1},
)
async def external_debit_settle(stack: SagaStack) -> Handle:
    """A citizen's own transfer that no payment of ours waits for (as
    reconciliation finds it on a statement) pays the unpaid fine."""
    bank = "hnbank"
    number = await stack.new_fine(750_000)
    payer = "555000222"
    transfer = await stack.admins[bank].transfer(payer, 750_000, f"NOP PHAT {number}")
    inp = wt.ExternalDebitInput(
        bank=bank,
        bank_ref=transfer["bank_ref"],
        decision_key=await decision_key(stack, number),
        amount_vnd=750_000,
        payer_account=payer,
        cause="statement line without a payment",
    )
    config = SagaConfig(stack.settings.task_queue, wt.VerifyPolicy())
    await start_external_debit(stack.client, config, inp)
    handle = await external_handle_when_started(stack, external_workflow_id(bank, inp.bank_ref))
    result = await handle.result()
    assert result.status == "succeeded", result
    return handle


@scenario(
    "external_debit.duplicate_refund",
    expect={"activity:payment.refund": 1},
)
async def external_debit_duplicate_refund(stack: SagaStack) -> Handle:
    """The bank books a debit twice and notifies both late, after the
    payment is done: the second booking is its own workflow, refunded."""
    bank = "sgbank"
    number = await stack.new_fine()
    await stack.admins[bank].add_fault("duplicate_debit")
    await stack.admins[bank].add_fault("late_webhook", delay_seconds=3)
    payment_id = await pay(stack, number, bank)
    await stack.wait_payment(payment_id, {"succeeded"})
    await (await payment_handle(stack, number)).result()
    debits = await stack.bank_movements(bank, "debit")
    duplicate = next(d for d in debits if d["duplicate_of"] is not None)
    await stack.admins[bank].clear_faults()
    handle = await external_handle_when_started(
        stack, external_workflow_id(bank, duplicate["bank_ref"])
    )
    result = await handle.result()
    assert result.refunded, result
    return handle


# --- Reconciliation ------------------------------------------------------------------


async def as_role(stack: SagaStack, role: str, name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_token(stack.engine, role, name)}"}


@scenario(
    "reconciliation.small_statement",
    # recon.begin and recon.finish are local activities (markers, not counted).
    expect={"activity:recon.load": 1, "activity:recon.act": 2},
)
async def reconciliation_small_statement(stack: SagaStack) -> Handle:
    """A statement of three lines: a payment of ours (matched), a citizen's
    own transfer naming a fine (healed: the fine is paid) and a transfer
    nobody can place (an unknown discrepancy)."""
    bank = "hnbank"
    paid = await stack.new_fine(510_000)
    payment_id = await pay(stack, paid, bank)
    await stack.wait_payment(payment_id, {"succeeded"})
    await (await payment_handle(stack, paid)).result()
    healed = await stack.new_fine(650_000)
    await stack.admins[bank].transfer(PAYER, 650_000, f"Nop phat {healed} Nguyen Van A")
    await stack.admins[bank].transfer("555000333", 123_000, "chuyen tien nham")
    run, workflow_id = await stack.reconcile(bank)
    assert run["status"] == "completed", run
    assert (run["lines"], run["matched"], run["healed"], run["unknown"]) == (3, 1, 1, 1), run
    return stack.client.get_workflow_handle(workflow_id)


# --- Dispute -------------------------------------------------------------------------


@scenario(
    "dispute.confirmed",
    expect={"signal:decision": 1, "activity:dispute.finish_confirm": 1},
)
async def dispute_confirmed(stack: SagaStack) -> Handle:
    """A citizen paid by their own transfer and complains; finance asks to
    confirm the payment, an approver approves, the fine is paid."""
    finance = await as_role(stack, "finance", "fin")
    approver = await as_role(stack, "approver", "appr")
    number = await stack.new_fine(800_000)
    transfer = await stack.admins["hnbank"].transfer(PAYER, 800_000, "NOP PHAT GIAO THONG")
    complaint = {
        "decision_number": number,
        "bank": "hnbank",
        "amount_vnd": 800_000,
        "occurred_at": datetime.now(UTC).isoformat(),
        "description": "Đã bị trừ tiền nhưng không nhận được biên lai",
        "payer_account": PAYER,
        "bank_ref": transfer["bank_ref"],
    }
    status, opened = await stack.call("POST", "/api/v1/disputes", json=complaint, headers=finance)
    assert status == 201, opened
    status, requested = await stack.call(
        "POST",
        f"/api/v1/disputes/{opened['id']}/resolutions",
        json={"action": "confirm", "reason": "the bank statement shows the debit"},
        headers=finance,
    )
    assert status == 202, requested
    assert requested["workflow_started"] is True, requested
    status, approved = await stack.call(
        "POST",
        f"/api/v1/approvals/{requested['approval']['id']}/approve",
        json={"reason": "statement line checked"},
        headers=approver,
    )
    assert status == 200, approved
    handle = stack.client.get_workflow_handle(dispute_workflow_id(opened["id"]))
    outcome = await asyncio.wait_for(handle.result(), 30)
    assert outcome["outcome"] == "confirmed", outcome
    return handle


# --- DiscrepancyAction ---------------------------------------------------------------


@scenario(
    "discrepancy_action.refund_approved",
    expect={"signal:decision": 1, "activity:discrepancy.refund": 1},
)
async def discrepancy_action_refund_approved(stack: SagaStack) -> Handle:
    """Money nobody can place is found on the statement; finance asks to
    refund it, a second person approves, it goes back to the payer."""
    bank = "hnbank"
    await stack.admins[bank].transfer(PAYER, 123_000, "chuyen tien nham")
    run, _ = await stack.reconcile(bank)
    assert run["unknown"] == 1, run
    status, page = await stack.call(
        "GET", "/api/v1/discrepancies", params={"kind": "unknown", "status": "open"}
    )
    assert status == 200, page
    [found] = page["items"]
    status, body = await stack.call(
        "POST",
        f"/api/v1/discrepancies/{found['id']}/actions",
        json={"action": "request_refund", "reason": "người nộp chuyển nhầm, xin hoàn"},
    )
    assert status == 202, body
    approval = body["approval"]
    assert approval["workflow_started"] is True, approval
    status, decided = await stack.call(
        "POST",
        f"/api/v1/approvals/{approval['id']}/approve",
        json={},
        headers=await as_role(stack, "approver", "appr"),
    )
    assert status == 200, decided
    handle = stack.client.get_workflow_handle(approval["workflow_id"])
    result = await asyncio.wait_for(handle.result(), 30)
    assert result["outcome"] not in ("rejected", "expired", "failed"), result
    status, item = await stack.call("GET", f"/api/v1/discrepancies/{found['id']}")
    assert (status, item["status"]) == (200, "resolved"), item
    return handle


# --- ops (started by their schedules in production) -----------------------------------


@scenario("ops_heartbeat.every_queue", expect={"activity:ops.heartbeat": 3})
async def ops_heartbeat_every_queue(stack: SagaStack) -> Handle:
    """One heartbeat on the worker's queue and on each bank's."""
    queue = stack.settings.task_queue
    handle = await stack.client.start_workflow(
        HeartbeatWorkflow.run,
        ot.HeartbeatInput(polled_queues(queue, list(stack.settings.banks))),
        id=f"ops-heartbeat/{queue}",
        task_queue=queue,
    )
    report = await asyncio.wait_for(handle.result(), 30)
    assert not report.silent, report
    return handle


@scenario(
    "integrity_checks.clean",
    expect={"activity:ops.verify_receipts": 1, "activity:ops.verify_audit": 1},
)
async def integrity_checks_clean(stack: SagaStack) -> Handle:
    """One round over the fresh database (the fine and audit rows the stack
    wrote): both checks pass."""
    queue = stack.settings.task_queue
    handle = await stack.client.start_workflow(
        IntegrityChecksWorkflow.run, id=f"ops-integrity/{queue}", task_queue=queue
    )
    report = await asyncio.wait_for(handle.result(), 30)
    assert [r.problems for r in report.results] == [0, 0], report
    return handle
