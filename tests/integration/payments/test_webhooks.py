"""Bank callbacks: duplicate debits notified by the bank, forged, replayed,
stale and late webhooks. Nothing but a verified callback changes anything."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import ApplicationError, FailureError

from bank_adapters.webhooks import sign_webhook
from ledger.core.postings import balances, posting_sums
from tests.support import db
from tests.support.stack import PAYER, SagaStack, StackWith, eventually
from workflows.payment.external_debit import workflow_id_for as external_workflow_id

# A saga step that cannot succeed stops at its first attempt; one retried
# instead (backoff from 0.5 s) is still running after this long.
STOP_SECONDS_MAX = 15.0


async def _snapshot(stack: SagaStack) -> tuple[int, int, int, int]:
    return (
        await db.value(stack.engine, "SELECT count(*) FROM payments"),
        await db.value(stack.engine, "SELECT count(*) FROM payment_events"),
        await db.value(stack.engine, "SELECT count(*) FROM journal_entries"),
        await db.value(stack.engine, "SELECT count(*) FROM receipts"),
    )


def _event(key: str, bank_ref: str, amount: int, status: str = "succeeded") -> bytes:
    return json.dumps(
        {
            "event_id": f"evt_{bank_ref}",
            "type": "debit.updated",
            "idempotency_key": key,
            "bank_ref": bank_ref,
            "status": status,
            "reason_code": None,
            "reason": None,
            "amount": amount,
            "currency": "VND",
            "occurred_at": "2026-11-23T03:00:00+00:00",
        }
    ).encode()


async def _post(stack: SagaStack, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with stack.session.post(
        f"{stack.api_url}/webhooks/sgbank",
        data=body,
        headers={**headers, "Content-Type": "application/json"},
    ) as resp:
        return resp.status, await resp.json(content_type=None)


def _secret(stack: SagaStack) -> bytes:
    return stack.settings.banks["sgbank"].webhook_secret.encode()


def _signed(stack: SagaStack, body: bytes) -> dict[str, str]:
    return sign_webhook(
        _secret(stack), body, timestamp=int(time.time()), nonce=secrets.token_hex(8)
    )


def _debit_key(payment_id: str) -> str:
    return f"fp-{payment_id.replace('-', '')}"


def _application_error(failure: FailureError) -> ApplicationError:
    """The step's error in a workflow failure (a remote step's comes wrapped
    in an ``ActivityError``, a local step's as it is)."""
    cause = failure.cause
    while cause is not None and not isinstance(cause, ApplicationError):
        cause = cause.cause if isinstance(cause, FailureError) else None
    assert isinstance(cause, ApplicationError), failure
    return cause


def _steps_stopped(activity: str, error: str) -> float:
    """``workflow_steps_stopped_total`` as this process (the worker) counts it."""
    value = REGISTRY.get_sample_value(
        "workflow_steps_stopped_total", {"activity": activity, "error": error}
    )
    return value or 0.0


@pytest.fixture
async def full_stack(stack_with: StackWith) -> AsyncIterator[SagaStack]:
    """A stack whose worker also reconciles (as the production worker does)."""
    async with stack_with(full_worker=True) as s:
        yield s


async def test_duplicate_debit_by_the_bank_gives_one_receipt_and_one_refund(
    stack: SagaStack,
) -> None:
    bank = "sgbank"
    dn = await stack.new_fine()
    await stack.admins[bank].add_fault("duplicate_debit", seconds=30)
    _, started = await stack.pay(dn, bank)
    await stack.wait_payment(started["payment_id"], {"succeeded"})

    # The bank books the refund before it answers, and the ledger books it after
    # the answer: wait for the ledger, which comes last.
    async def refunded() -> dict[str, Any] | None:
        fine = await stack.fine(dn)
        return fine if any(p["status"] == "refunded" for p in fine["payments"]) else None

    fine = await eventually(refunded, 30, "the duplicate to be refunded")
    assert fine["status"] == "paid"
    statuses = sorted(p["status"] for p in fine["payments"])
    assert statuses == ["refunded", "succeeded"]
    debits = await stack.bank_movements(bank, "debit")
    refunds = await stack.bank_movements(bank, "refund")
    assert len(debits) == 2, debits
    assert len(refunds) == 1
    assert refunds[0]["amount_vnd"] == debits[0]["amount_vnd"]

    async def booked() -> bool:
        async with stack.engine.connect() as conn:
            got = await balances(conn, ["refunds-payable"])
        return got == {"refunds-payable": 0}

    await eventually(booked, 10, "the refund to be booked")
    assert await db.value(stack.engine, "SELECT count(*) FROM receipts") == 1
    async with stack.engine.connect() as conn:
        assert await balances(conn) == await posting_sums(conn)


async def test_forged_stale_and_replayed_callbacks_are_refused(stack: SagaStack) -> None:
    bank = "sgbank"
    dn = await stack.new_fine()
    await stack.admins[bank].add_fault("lost_response", seconds=60)
    # The bank webhooks also carry the truth; hold them back for this test.
    await stack.admins[bank].add_fault("late_webhook", seconds=60, delay_seconds=600)
    _, started = await stack.pay(dn, bank)

    async def verifying() -> bool:
        return (await stack.payment(started["payment_id"]))["status"] == "verifying"

    await eventually(verifying, 20, "the payment to be verifying")
    # Freeze the saga so that only a webhook could change anything now.
    await stack.stop_worker()
    payment = await stack.payment(started["payment_id"])
    key = f"fp-{started['payment_id'].replace('-', '')}"
    body = _event(key, "FORGED-REF-1", payment["amount_vnd"])
    before = await _snapshot(stack)
    now = int(time.time())

    forged = sign_webhook(b"not-the-secret", body, timestamp=now, nonce=secrets.token_hex(8))
    status, answer = await _post(stack, body, forged)
    assert status == 401
    assert answer["error"]["code"] == "webhook_bad_signature"

    stale = sign_webhook(_secret(stack), body, timestamp=now - 3600, nonce=secrets.token_hex(8))
    status, answer = await _post(stack, body, stale)
    assert status == 401
    assert answer["error"]["code"] == "webhook_stale_timestamp"

    status, answer = await _post(stack, body, {})
    assert status == 401
    assert await _snapshot(stack) == before
    assert (await stack.payment(started["payment_id"]))["status"] != "succeeded"

    # A genuine callback is accepted once; the same delivery replayed is refused.
    await stack.admins[bank].clear_faults()
    genuine = sign_webhook(_secret(stack), body, timestamp=now, nonce=secrets.token_hex(8))
    status, answer = await _post(stack, body, genuine)
    assert status == 200, answer
    status, answer = await _post(stack, body, genuine)
    assert status == 401
    assert answer["error"]["code"] == "webhook_replayed_nonce"


async def test_late_and_duplicate_webhooks_change_nothing_after_the_fact(
    stack: SagaStack,
) -> None:
    bank = "sgbank"
    dn = await stack.new_fine()
    await stack.admins[bank].add_fault("late_webhook", seconds=60, delay_seconds=3)
    _, started = await stack.pay(dn, bank)
    payment = await stack.wait_payment(started["payment_id"], {"succeeded"})

    async def delivered() -> bool:
        hooks = await stack.admins[bank].webhooks()
        return any(h.get("delivered_at") for h in hooks)

    await eventually(delivered, 30, "the late webhook to be delivered")
    after_late = await _snapshot(stack)
    # The bank sends the same news again (new nonce, same content).
    key = f"fp-{started['payment_id'].replace('-', '')}"
    body = _event(key, payment["bank_ref"], payment["amount_vnd"])
    headers = sign_webhook(
        _secret(stack), body, timestamp=int(time.time()), nonce=secrets.token_hex(8)
    )
    status, answer = await _post(stack, body, headers)
    assert status == 200
    assert answer["status"] == "duplicate"
    assert await _snapshot(stack) == after_late
    assert await db.value(stack.engine, "SELECT count(*) FROM receipts") == 1
    assert len(await stack.bank_movements(bank, "debit")) == 1


async def test_callback_for_an_unknown_key_is_ignored(stack: SagaStack) -> None:
    before = await _snapshot(stack)
    body = _event("fp-" + "0" * 32, "REF-X", 1000)
    headers = sign_webhook(
        _secret(stack), body, timestamp=int(time.time()), nonce=secrets.token_hex(8)
    )
    status, answer = await _post(stack, body, headers)
    assert status == 200
    assert answer["status"].startswith("ignored")
    assert await _snapshot(stack) == before


async def test_a_second_debit_at_another_amount_stops_at_once_and_reaches_finance(
    full_stack: SagaStack,
) -> None:
    """The bank reports, under the key of a paid fine's payment, a second
    debit of another amount. The ledger refuses to book it
    (``AmountMismatchError``, an ``InvalidTransitionError``): the
    ExternalDebit saga stops at once instead of retrying for a week, and the
    money the bank took reaches finance through the day's reconciliation, as
    an amount-mismatch discrepancy held in suspense."""
    stack = full_stack
    bank = "sgbank"
    number = await stack.new_fine(800_000)
    _, started = await stack.pay(number, bank)
    paid = await stack.wait_payment(started["payment_id"], {"succeeded"})
    taken = await stack.admins[bank].transfer(PAYER, 500_000, f"NOP PHAT {number}")
    # ACSC: the REST bank's "settled" (``bank_adapters.rest_bank.RestStatus``).
    body = _event(_debit_key(started["payment_id"]), taken["bank_ref"], 500_000, "ACSC")
    status, answer = await _post(stack, body, _signed(stack, body))
    assert (status, answer["status"]) == (200, "external debit"), answer

    handle = stack.client.get_workflow_handle(external_workflow_id(bank, taken["bank_ref"]))
    stopped_before = _steps_stopped("payment.record_external_debit", "AmountMismatchError")

    async def stopped() -> bool:
        return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING

    await eventually(stopped, STOP_SECONDS_MAX, "the ExternalDebit saga to stop retrying")
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    error = _application_error(failed.value)
    assert (error.type, error.non_retryable) == ("AmountMismatchError", True), error
    assert _steps_stopped("payment.record_external_debit", "AmountMismatchError") == (
        stopped_before + 1
    )
    fine = await stack.fine(number)
    assert [p["payment_id"] for p in fine["payments"]] == [paid["payment_id"]], fine
    assert await db.value(stack.engine, "SELECT count(*) FROM receipts") == 1

    run, _ = await stack.reconcile(bank)
    assert (run["status"], run["amount_mismatches"]) == ("completed", 1), run
    status, page = await stack.call(
        "GET", "/api/v1/discrepancies", params={"kind": "amount_mismatch", "status": "open"}
    )
    assert status == 200, page
    [held] = page["items"]
    assert (held["bank_ref"], held["amount_vnd"], held["in_suspense"]) == (
        taken["bank_ref"],
        500_000,
        True,
    ), held
