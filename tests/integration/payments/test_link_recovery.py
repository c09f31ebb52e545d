"""The link-recovery event over real components: payments left verifying by
a bank outage are settled and receipted in bulk by LinkRecoveryWorkflow,
then their own workflows are woken and finish. The payment workflows here
poll only every minute, so anything that resolves within a test's timeouts
was resolved by the recovery (and its wake-up), not by their own polling."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from ledger import payments as pay
from reconciler.cli.main import main
from reconciler.worker import recovery_worker, run_workers
from tests.support import db
from tests.support.stack import SagaStack, eventually
from workflows.common import recovery_queue
from workflows.payment.link_recovery import workflow_id_for as recovery_workflow_id
from workflows.payment.recovery_activities import CAUSE
from workflows.payment.workflow import workflow_id_for

BANK = "hnbank"  # VietQR: no webhooks, only a status check resolves a payment
PAYMENTS = 3


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    return {
        "verify_poll_interval_seconds_initial": 60.0,
        "verify_poll_interval_seconds_max": 120.0,
    }


async def _left_verifying(stack: SagaStack, count: int) -> list[tuple[str, str]]:
    """``count`` payments the bank booked but whose answers were garbled:
    (decision number, payment id), each verifying."""
    await stack.admins[BANK].add_fault("malformed")
    made: list[tuple[str, str]] = []
    for _ in range(count):
        number = await stack.new_fine()
        status, body = await stack.pay(number, BANK)
        assert status == 202, body
        made.append((number, body["payment_id"]))
    for _, payment_id in made:
        await stack.wait_payment(payment_id, {"verifying"})
    return made


async def _recover(stack: SagaStack) -> dict[str, object]:
    status, body = await stack.call("POST", f"/api/v1/banks/{BANK}/link-recovered")
    assert status == 200, body
    assert body["status"] == "completed", body
    assert body["recovery_workflow_id"] == recovery_workflow_id(BANK), body
    return dict(body)


async def _workflows_closed(stack: SagaStack, numbers: list[str]) -> None:
    for number in numbers:
        async with stack.engine.connect() as conn:
            key = (
                await conn.execute(
                    text("SELECT decision_key FROM fines WHERE decision_number = :n"),
                    {"n": number},
                )
            ).scalar_one()
        handle = stack.client.get_workflow_handle(workflow_id_for(key))
        result = await asyncio.wait_for(handle.result(), 30)
        assert result["status"] == "succeeded", result


def _spy_batches(stack: SagaStack, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of each batch the recovery books (the real step runs)."""
    sizes: list[int] = []
    real = stack.activities.settle_many

    async def spy(confirmed: list[pay.Confirmed], cause: str) -> pay.BatchSettlement:
        sizes.append(len(confirmed))
        return await real(confirmed, cause)

    monkeypatch.setattr(stack.activities, "settle_many", spy)
    return sizes


async def test_recovery_settles_in_bulk_then_wakes_each_workflow(
    stack: SagaStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = await _left_verifying(stack, PAYMENTS)
    await stack.admins[BANK].add_fault("link_down")
    await stack.admins[BANK].clear_faults()
    batches = _spy_batches(stack, monkeypatch)

    report = await _recover(stack)

    # One batch, one transaction, for the three.
    assert batches == [PAYMENTS]

    assert report["in_doubt"] == PAYMENTS, report
    assert report["settled"] == PAYMENTS, report
    assert report["left_to_workflows"] == 0, report
    assert report["woken"] == PAYMENTS, report
    for _, payment_id in made:
        # Receipted by the time the event's answer came back.
        payment = await stack.payment(payment_id)
        assert payment["status"] == "succeeded", payment
        assert payment["receipt"] is not None, payment
        assert any(CAUSE in h["cause"] for h in payment["history"]), payment["history"]
    # Woken, the workflows find their payment settled and finish long before
    # their next poll (a minute away).
    await _workflows_closed(stack, [n for n, _ in made])
    debits = [m for m in await stack.bank_movements(BANK, "debit") if m["status"] == "succeeded"]
    ours = {f"fp-{pid.replace('-', '')}" for _, pid in made}
    assert sorted(m["idempotency_key"] for m in debits if m["idempotency_key"] in ours) == sorted(
        ours
    )
    receipts = await db.value(
        stack.engine,
        "SELECT count(*) FROM receipts WHERE payment_id = ANY(CAST(:ids AS uuid[]))",
        ids=[pid for _, pid in made],
    )
    assert receipts == PAYMENTS
    notices = await db.value(
        stack.engine,
        "SELECT count(*) FROM outbox WHERE dedupe_key = ANY(CAST(:keys AS text[]))",
        keys=[f"receipt-issued:{pid}" for _, pid in made],
    )
    assert notices == PAYMENTS


async def test_a_batch_that_fails_is_booked_one_payment_at_a_time(
    stack: SagaStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's transaction failing as a whole (a lock timeout, a dropped
    connection) must not cost its payments their receipts: each is booked
    alone, with the saga's own step."""
    made = await _left_verifying(stack, PAYMENTS)
    await stack.admins[BANK].add_fault("link_down")
    await stack.admins[BANK].clear_faults()
    failed: list[int] = []

    async def broken(confirmed: list[pay.Confirmed], cause: str) -> pay.BatchSettlement:
        failed.append(len(confirmed))
        raise ConnectionResetError("the database dropped the batch's connection")

    monkeypatch.setattr(stack.activities, "settle_many", broken)

    report = await _recover(stack)

    assert failed == [PAYMENTS]
    assert report["settled"] == PAYMENTS, report
    assert report["left_to_workflows"] == 0, report
    for _, payment_id in made:
        payment = await stack.payment(payment_id)
        assert payment["status"] == "succeeded", payment
        assert payment["receipt"] is not None, payment
    await _workflows_closed(stack, [n for n, _ in made])


async def test_event_while_the_link_is_still_down_declines_nothing(stack: SagaStack) -> None:
    """A premature event (the link flapped back and down): every payment is
    left to its workflow, still verifying; the next event settles them."""
    made = await _left_verifying(stack, 2)
    await stack.admins[BANK].clear_faults()
    await stack.admins[BANK].add_fault("link_down")

    report = await _recover(stack)

    assert (report["settled"], report["left_to_workflows"]) == (0, 2), report
    assert report["woken"] == 2, report
    await asyncio.sleep(1.0)  # the woken workflows re-check (link down) and go on waiting
    for _, payment_id in made:
        assert (await stack.payment(payment_id))["status"] == "verifying"
    await _recheck_while_down(stack, made[0][1])

    await stack.admins[BANK].clear_faults()
    report = await _recover(stack)
    assert report["settled"] == 2, report
    await _workflows_closed(stack, [n for n, _ in made])
    status, refused = await stack.call("POST", f"/api/v1/payments/{made[0][1]}/recheck")
    assert (status, refused["error"]["code"]) == (409, "not_in_doubt")


_STATUS_CHECKS = (
    "SELECT count(*) FROM payment_events WHERE payment_id = :p"
    " AND detail->>'step' = 'status_check' AND detail->>'outcome' = 'link_down'"
)


async def _recheck_while_down(stack: SagaStack, payment_id: str) -> None:
    """An operator's "re-check now" (its next poll is a minute away): the
    workflow asks the bank at once, the answer (link down) is recorded and
    counted in the in-doubt queue, and nothing moves: still verifying."""
    checks = await db.value(stack.engine, _STATUS_CHECKS, p=payment_id)
    status, answer = await stack.call("POST", f"/api/v1/payments/{payment_id}/recheck")
    assert status == 202, answer

    async def asked() -> bool:
        return bool(await db.value(stack.engine, _STATUS_CHECKS, p=payment_id) == checks + 1)

    await eventually(asked, 20, "the re-check's status check")
    assert (await stack.payment(payment_id))["status"] == "verifying"
    status, queue = await stack.call("GET", f"/api/v1/payments/in-doubt?bank={BANK}")
    assert status == 200, queue
    (row,) = [p for p in queue["payments"] if p["payment_id"] == payment_id]
    assert (row["attempts"], row["last_answer"]) == (checks + 1, "link_down")


async def test_the_recovery_does_not_wait_for_the_payment_workflows_queue(
    stack: SagaStack,
) -> None:
    """When a link returns, the payment workflows of the outage all have
    tasks due on the main queue; the recovery has a queue and slots of its
    own. Here nothing polls the main queue at all, and the recovery still
    books and receipts every confirmed debit."""
    made = await _left_verifying(stack, PAYMENTS)
    await stack.admins[BANK].clear_faults()
    await stack.stop_worker()
    alone = recovery_worker(stack.client, stack.settings.task_queue, stack.activities)
    stop = asyncio.Event()
    running = asyncio.create_task(run_workers([alone], stop))
    try:
        report = await _recover(stack)
        handle = stack.client.get_workflow_handle(recovery_workflow_id(BANK))
        described = await handle.describe()
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
        await stack.start_worker()

    assert described.task_queue == recovery_queue(stack.settings.task_queue)
    assert (report["in_doubt"], report["settled"]) == (PAYMENTS, PAYMENTS), report
    for _, payment_id in made:
        payment = await stack.payment(payment_id)
        assert (payment["status"], payment["receipt"] is not None) == ("succeeded", True), payment
    # Back on the main queue, the woken workflows find their payment settled.
    await _workflows_closed(stack, [n for n, _ in made])


async def test_concurrent_events_settle_each_payment_once(stack: SagaStack) -> None:
    """The prober and an operator send the event at the same moment: one
    recovery runs (the second joins it), each payment gets one receipt."""
    made = await _left_verifying(stack, PAYMENTS)
    await stack.admins[BANK].clear_faults()

    first, second = await asyncio.gather(_recover(stack), _recover(stack))

    assert first["recovery_workflow_id"] == second["recovery_workflow_id"]
    for _, payment_id in made:
        await stack.wait_payment(payment_id, {"succeeded"})
    rows = await db.rows(
        stack.engine,
        "SELECT payment_id, count(*) AS n FROM receipts"
        " WHERE payment_id = ANY(CAST(:ids AS uuid[])) GROUP BY payment_id",
        ids=[pid for _, pid in made],
    )
    assert sorted(int(r.n) for r in rows) == [1] * PAYMENTS

    async def closed() -> bool:
        await _workflows_closed(stack, [n for n, _ in made])
        return True

    await eventually(closed, 40, "payment workflows closed")


def _cli_env(stack: SagaStack) -> dict[str, str]:
    return {
        "RECONCILER_DATABASE_URL": stack.settings.database_url,
        "RECONCILER_TEMPORAL_ADDRESS": stack.settings.temporal_address,
        "RECONCILER_TASK_QUEUE": stack.settings.task_queue,
        "RECONCILER_BANKS": json.dumps(
            {b: s.model_dump() for b, s in stack.settings.banks.items()}
        ),
        "RECONCILER_LOG_LEVEL": "warning",
        "RECONCILER_ENV": "dev",
    }


async def test_cli_sends_the_event_and_prints_the_report(stack: SagaStack) -> None:
    made = await _left_verifying(stack, 2)
    await stack.admins[BANK].clear_faults()

    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["banks", "wake", BANK], env=_cli_env(stack)
    )

    assert result.exit_code == 0, result.output
    assert f"link recovery of {BANK}: 2 payment(s) in doubt, 2 settled" in result.output
    for _, payment_id in made:
        assert (await stack.payment(payment_id))["status"] == "succeeded"


async def test_cli_refuses_an_unknown_bank_and_starts_nothing(stack: SagaStack) -> None:
    result = await asyncio.to_thread(
        CliRunner().invoke, main, ["banks", "wake", "nobank"], env=_cli_env(stack)
    )

    assert result.exit_code == 2, result.output
    assert "no bank 'nobank' is configured" in result.output
    async for execution in stack.client.list_workflows(
        f"WorkflowId = '{recovery_workflow_id('nobank')}'"
    ):
        raise AssertionError(f"a recovery was started: {execution.id}")


async def test_the_status_step_asks_the_bank_about_all_at_once_and_changes_nothing(
    stack: SagaStack,
) -> None:
    """``check_statuses``, the recovery's first step, with the real VietQR
    simulator: one answer per payment, the bank's (a payment it has no
    transfer for is not found; no ledger read decides it), and no payment
    moves: booking is the next step's."""
    made = await _left_verifying(stack, 2)
    await stack.admins[BANK].clear_faults()
    ids = [uuid.UUID(pid) for _, pid in made]
    stranger = uuid.uuid4()  # no payment of ours, no transfer at the bank

    answers = await stack.activities.check_statuses(BANK, [*ids, stranger], concurrency=256)

    assert [answers[i].kind if answers[i] else None for i in ids] == ["succeeded"] * 2
    assert all(answers[i] and answers[i].bank_ref for i in ids), answers
    stranger_answer = answers[stranger]
    assert stranger_answer is not None
    assert stranger_answer.kind == "not_found", stranger_answer
    for _, payment_id in made:
        assert (await stack.payment(payment_id))["status"] == "verifying"
