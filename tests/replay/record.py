"""Record the workflow histories that ``test_replay.py`` replays in CI.

Run by hand, from the repository root, never in CI::

    .venv/bin/python -m tests.replay.record                 # every scenario
    .venv/bin/python -m tests.replay.record fine_payment.declined ...
    .venv/bin/python -m tests.replay.record --list
    .venv/bin/python -m tests.replay.record --tag local-steps   # <name>@local-steps.json

What it does: in a temporary directory it starts an embedded PostgreSQL
(migrated to head) and a Temporal dev server; for each scenario it clones a
fresh database and starts the real API, a real worker (the production
workflow classes, ``reconciler.worker.build_worker``) on a fresh task queue
and both bank simulators (``tests.support.stack.saga_stack``). The scenario
drives a payment through the API and the simulators' fault admin, the
recorder waits for the workflow to close, checks that its history shows
what the scenario claims (e.g. a ``link_recovered`` signal), and writes
``handle.fetch_history().to_json()`` to ``tests/replay/histories/<name>.json``.
A scenario whose history misses what it claims writes nothing.

When to record: histories are the record of what *deployed* workers did.
Record a new scenario when you add one. Re-record an existing one only when a
workflow change is intended, not yet deployed, and was reviewed as such: a
history that stops replaying is exactly what the replay test exists to catch
(a change that would break running workflows needs ``workflow.patched``).
After a ``workflow.patched`` change, keep the old files and record the new
path next to them with ``--tag``: both must replay.

Adding a scenario is one function::

    @scenario("dispute.approved", expect={"signal:approve": 1})
    async def dispute_approved(stack: SagaStack) -> WorkflowHandle[Any, Any]:
        ...drive the stack...
        return stack.client.get_workflow_handle(workflow_id)

Names are ``<workflow>.<story>`` (the file name). ``expect`` maps markers to a
minimum count: ``activity:<type>`` (remote or local), ``signal:<name>``,
``timer``, ``continue_as_new``. ``overrides`` are Settings overrides (timings) for that
scenario's stack.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import secrets
import sys
import tempfile
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from domain.business_time import business_date
from ledger.fines import get_fine
from reconciler.devstack.postgres import EmbeddedPostgres, PostgresInfo
from reconciler.devstack.temporal import TemporalDevServer
from reconciler.recon_wiring import recon_activities
from reconciler.wiring import build_adapters
from reconciler.worker import build_worker
from tests.support.api import make_token
from tests.support.stack import PAYER, SagaStack, eventually, saga_stack
from workflows.disputes.activities import DisputeActivities, DisputeDeps
from workflows.disputes.workflow import workflow_id_for as dispute_workflow_id
from workflows.payment import types as wt
from workflows.payment.client import SagaConfig, start_external_debit, wake_bank
from workflows.payment.external_debit import ExternalDebitWorkflow
from workflows.payment.external_debit import workflow_id_for as external_workflow_id
from workflows.payment.workflow import FinePaymentWorkflow, workflow_id_for

HISTORIES_DIR = Path(__file__).resolve().parent / "histories"
LOCAL_ACTIVITY_MARKER = "core_local_activity"
WORKFLOW_CLOSE_SECONDS_MAX = 60.0

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
    # The refund is a money request too: let it through now.
    await stack.admins[bank].clear_faults()
    handle = await payment_handle(stack, number)
    await handle.result()
    return handle


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
    answer comes back unknown, and records and refunds the second booking
    (``FINAL_ELSEWHERE_PATCH``)."""
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
    await stack.admins[bank].clear_faults()
    handle = await payment_handle(stack, number)
    await handle.result()
    return handle


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


async def reconcile(stack: SagaStack, bank: str) -> tuple[dict[str, Any], Handle]:
    """Reconcile today's statement of ``bank`` over the API, wait for the run."""
    today = business_date(datetime.now(UTC)).isoformat()
    status, started = await stack.call(
        "POST", "/api/v1/reconciliations", json={"bank": bank, "statement_date": today}
    )
    assert status == 202, started
    run_id = started["reconciliation_id"]
    handle = stack.client.get_workflow_handle(started["workflow_id"])
    run_id_temporal = (await handle.describe()).run_id
    handle = stack.client.get_workflow_handle(started["workflow_id"], run_id=run_id_temporal)

    async def done() -> dict[str, Any] | None:
        status, run = await stack.call("GET", f"/api/v1/reconciliations/{run_id}")
        assert status == 200, run
        return run if run["status"] != "running" else None

    run: dict[str, Any] = await eventually(done, 60, f"reconciliation {run_id}")
    return run, handle


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
    run, handle = await reconcile(stack, bank)
    assert run["status"] == "completed", run
    assert (run["lines"], run["matched"], run["healed"], run["unknown"]) == (3, 1, 1, 1), run
    return handle


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
    run, _ = await reconcile(stack, bank)
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


# --- running ---------------------------------------------------------------------------


async def _start_full_worker(stack: SagaStack) -> None:
    """A worker with every activity the production worker has (payments,
    disputes, reconciliation), as ``reconciler.worker`` runs it."""
    adapters = build_adapters(stack.settings, stack.session)
    disputes = DisputeActivities(DisputeDeps(stack.engine, adapters))
    recon = recon_activities(stack.settings, stack.engine, adapters, stack.client)
    stack.new_worker = lambda: build_worker(  # type: ignore[method-assign]
        stack.client,
        stack.settings.task_queue,
        stack.activities,
        dispute_activities=disputes,
        recon_activities=recon,
    )
    # Dispute and discrepancy workflow ids carry database ids, and every
    # scenario's database starts its sequences afresh on one Temporal server.
    async with stack.engine.begin() as conn:
        for sequence in ("disputes_id_seq", "discrepancies_id_seq"):
            await conn.execute(
                text(f"SELECT setval('{sequence}', :n)"), {"n": secrets.randbelow(10**12) + 1}
            )
    await stack.start_worker()


async def _record_one(
    sc: Scenario,
    work_dir: Path,
    pg: PostgresInfo,
    template: str,
    temporal_address: str,
    tag: str | None,
) -> Path:
    db_name = f"replay_{sc.name.replace('.', '_')}_{secrets.token_hex(3)}"
    with psycopg.connect(pg.libpq_url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}" TEMPLATE "{template}"')
    scenario_dir = work_dir / db_name
    scenario_dir.mkdir()
    engine = create_async_engine(pg.url(db_name), pool_size=5, max_overflow=5)
    try:
        async with saga_stack(
            scenario_dir,
            engine,
            pg.url(db_name),
            temporal_address,
            f"replay-{uuid.uuid4().hex[:12]}",
            start_worker=False,
            **sc.overrides,
        ) as stack:
            await _start_full_worker(stack)
            handle = await sc.run(stack)
            await asyncio.wait_for(handle.result(), WORKFLOW_CLOSE_SECONDS_MAX)
            history = await handle.fetch_history()
    finally:
        await engine.dispose()
    seen = markers(history)
    missing = {m: n for m, n in sc.expect.items() if seen[m] < n}
    if missing:
        raise AssertionError(
            f"{sc.name}: history lacks {missing} (has {dict(seen)}); not written, run it again"
        )
    path = HISTORIES_DIR / (f"{sc.name}@{tag}.json" if tag else f"{sc.name}.json")
    path.write_text(history.to_json() + "\n")
    return path


async def record(names: list[str], work_dir: Path, tag: str | None = None) -> list[Path]:
    from ledger.migrations import upgrade_to_head

    pg_server = EmbeddedPostgres(
        work_dir / "pgdata", work_dir / "postgres.log", database="postgres", durable=False
    )
    temporal = TemporalDevServer(None, work_dir / "temporal.log")
    pg = pg_server.start()
    try:
        address = temporal.start().address
        try:
            template = "replay_template"
            with psycopg.connect(pg.libpq_url("postgres"), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{template}"')
            upgrade_to_head(pg.url(template))
            HISTORIES_DIR.mkdir(exist_ok=True)
            written = []
            for name in names:
                path = await _record_one(SCENARIOS[name], work_dir, pg, template, address, tag)
                print(f"recorded {name} -> {path.relative_to(Path.cwd())}")
                written.append(path)
            return written
        finally:
            temporal.stop()
    finally:
        pg_server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", help="names to record (default: all)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--tag",
        help="write <name>@<tag>.json, keeping the histories of earlier code (e.g. the "
        "version before a workflow.patched change) next to the new ones",
    )
    args = parser.parse_args(argv)
    if args.list:
        for name in SCENARIOS:
            print(name)
        return 0
    unknown = sorted(set(args.scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenarios {unknown}; known: {sorted(SCENARIOS)}")
    with tempfile.TemporaryDirectory(prefix="replay-record-") as tmp:
        asyncio.run(record(args.scenarios or list(SCENARIOS), Path(tmp), args.tag))
    return 0


if __name__ == "__main__":
    sys.exit(main())
