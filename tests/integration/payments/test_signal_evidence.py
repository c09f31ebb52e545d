"""A success reaching a payment by signal is settled only on the bank's word
(issue 15): the ledger holds the verified webhook it came from, or the bank
confirms it when asked.

* Someone who can reach Temporal signals "succeeded" straight into a
  payment's workflow (no webhook): the bank is asked, says otherwise, and
  nothing is settled.
* A verified webhook reporting success for another amount than the
  payment's: recorded, a discrepancy for finance, the payment stays
  verifying and is settled only when the bank confirms it.
* A signed webhook that could not be delivered (Temporal unreachable: 503)
  has not used up its nonce: the bank's retry of the same delivery goes
  through.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bank_adapters.webhooks import sign_webhook
from domain.outcomes import SettleOutcome
from ledger import payments as pay
from ledger.fines import get_fine
from reconciler.api.app import create_app
from reconciler.api.temporal_link import TemporalLink
from reconciler.devstack.ports import free_port
from tests.support import db
from tests.support.stack import PAYER, SagaStack, eventually
from workflows.payment import types as wt
from workflows.payment.workflow import FinePaymentWorkflow, workflow_id_for

BANK = "sgbank"
UNVERIFIED = "no verified bank event"


async def _verifying_payment(stack: SagaStack, *, debited: bool) -> dict[str, Any]:
    """A payment in doubt: the bank answers 500 to everything (having made
    the debit or not), and holds its own webhooks back."""
    await stack.admins[BANK].add_fault("http_500", after_debit=debited)
    await stack.admins[BANK].add_fault("late_webhook", delay_seconds=600)
    number = await stack.new_fine(640_000)
    status, started = await stack.pay(number, BANK)
    assert status == 202, started
    return await stack.wait_payment(started["payment_id"], {"verifying"})


async def _debit_key(stack: SagaStack, payment_id: str) -> str:
    key: str = await db.value(
        stack.engine, "SELECT debit_key FROM payments WHERE id = :id", id=uuid.UUID(payment_id)
    )
    return key


def _webhook(key: str, bank_ref: str, amount_vnd: int) -> bytes:
    return json.dumps(
        {
            "event_id": f"evt_{secrets.token_hex(6)}",
            "type": "debit.updated",
            "idempotency_key": key,
            "bank_ref": bank_ref,
            "status": "ACSC",  # the REST bank's "settled"
            "reason_code": None,
            "reason": None,
            "amount": amount_vnd,
            "currency": "VND",
            "occurred_at": "2026-11-23T03:00:00+00:00",
        }
    ).encode()


def _signed(stack: SagaStack, body: bytes) -> dict[str, str]:
    secret = stack.settings.banks[BANK].webhook_secret.encode()
    headers = sign_webhook(secret, body, timestamp=int(time.time()), nonce=secrets.token_hex(12))
    return {**headers, "Content-Type": "application/json"}


async def _post(stack: SagaStack, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with stack.session.post(
        f"{stack.api_url}/webhooks/{BANK}", data=body, headers=headers
    ) as resp:
        return resp.status, await resp.json(content_type=None)


async def _settled_or_doubted(stack: SagaStack, payment_id: str) -> dict[str, Any]:
    """The payment once the workflow has dealt with the signalled success:
    settled on it, or noted that the bank did not confirm it."""

    async def dealt() -> dict[str, Any] | None:
        payment = await stack.payment(payment_id)
        causes = [event["cause"] for event in payment["history"]]
        if payment["status"] == "succeeded" or any(UNVERIFIED in c for c in causes):
            return payment
        return None

    found: dict[str, Any] = await eventually(dealt, 30, "the signalled success to be dealt with")
    return found


async def test_a_success_signalled_straight_into_temporal_settles_nothing(
    stack: SagaStack,
) -> None:
    payment = await _verifying_payment(stack, debited=False)
    # The bank will decline the debit when it is sent again.
    await stack.admins[BANK].set_account(PAYER, 0)
    handle = stack.client.get_workflow_handle(await _workflow_id(stack, payment["payment_id"]))
    forged = wt.BankUpdate(payment["payment_id"], wt.OutcomeKind.SUCCEEDED, "FT-FORGED-0001")
    await handle.signal(FinePaymentWorkflow.bank_update, forged)

    dealt = await _settled_or_doubted(stack, payment["payment_id"])
    assert dealt["status"] == "verifying", dealt
    assert dealt["receipt"] is None
    # The bank, reachable again, says the debit never happened; sent again, declined.
    await stack.admins[BANK].clear_faults()
    final = await stack.wait_payment(payment["payment_id"], {"declined", "succeeded"})
    assert (final["status"], final["receipt"]) == ("declined", None), final
    assert await db.value(stack.engine, "SELECT count(*) FROM receipts") == 0
    assert await db.value(stack.engine, "SELECT count(*) FROM journal_entries") == 0
    succeeded = [m for m in await stack.bank_movements(BANK) if m["status"] == "succeeded"]
    assert succeeded == []


async def _workflow_id(stack: SagaStack, payment_id: str) -> str:
    key: str = await db.value(
        stack.engine,
        "SELECT f.decision_key FROM payments p JOIN fines f ON f.id = p.fine_id WHERE p.id = :id",
        id=uuid.UUID(payment_id),
    )
    return workflow_id_for(key)


async def test_a_webhook_with_another_amount_does_not_settle(stack: SagaStack) -> None:
    payment = await _verifying_payment(stack, debited=True)
    [debit] = await stack.bank_movements(BANK, "debit")
    key = await _debit_key(stack, payment["payment_id"])
    body = _webhook(key, debit["bank_ref"], payment["amount_vnd"] + 1_000_000)
    status, answer = await _post(stack, body, _signed(stack, body))
    assert status == 200, answer

    dealt = await _settled_or_doubted(stack, payment["payment_id"])
    assert dealt["status"] == "verifying", dealt
    events = await db.rows(stack.engine, "SELECT bank_ref, amount_vnd, outcome FROM bank_events")
    assert [tuple(e) for e in events] == [
        (debit["bank_ref"], payment["amount_vnd"] + 1_000_000, "succeeded")
    ]
    status, page = await stack.call(
        "GET", "/api/v1/discrepancies", params={"kind": "amount_mismatch", "status": "open"}
    )
    assert status == 200, page
    [found] = page["items"]
    assert (found["payment_id"], found["amount_vnd"]) == (
        payment["payment_id"],
        payment["amount_vnd"],
    )
    assert found["detail"]["webhook_amount_vnd"] == payment["amount_vnd"] + 1_000_000
    # The bank, asked once it answers again, confirms the debit it made:
    # settled with the bank's reference, for the payment's amount.
    await stack.admins[BANK].clear_faults()
    final = await stack.wait_payment(payment["payment_id"], {"succeeded"})
    assert (final["bank_ref"], final["amount_vnd"]) == (debit["bank_ref"], debit["amount_vnd"])


@pytest.fixture
async def api_without_temporal(stack: SagaStack) -> AsyncIterator[TestClient[Any, Any]]:
    """The same API and database, with the workflow service unreachable."""
    unreachable = TemporalLink(f"127.0.0.1:{free_port()}", "default", connect_timeout_seconds=1)
    app = create_app(stack.settings, engine=stack.engine, temporal=unreachable)
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_a_webhook_that_could_not_be_delivered_keeps_its_nonce(
    stack: SagaStack, api_without_temporal: TestClient[Any, Any]
) -> None:
    payment = await _verifying_payment(stack, debited=True)
    [debit] = await stack.bank_movements(BANK, "debit")
    key = await _debit_key(stack, payment["payment_id"])
    body = _webhook(key, debit["bank_ref"], payment["amount_vnd"])
    headers = _signed(stack, body)
    refused = await api_without_temporal.post(f"/webhooks/{BANK}", data=body, headers=headers)
    assert refused.status == 503, await refused.text()
    # The bank sends the same delivery again: it is taken, not a replay.
    status, answer = await _post(stack, body, headers)
    assert (status, answer) == (200, {"status": "delivered"}), answer
    final = await stack.wait_payment(payment["payment_id"], {"succeeded"})
    assert final["bank_ref"] == debit["bank_ref"]
    # Taken once: the same delivery a third time is a replay.
    status, answer = await _post(stack, body, headers)
    assert (status, answer["error"]["code"]) == (401, "webhook_replayed_nonce")


async def test_a_duplicate_with_no_known_payer_is_never_sent_to_a_made_up_account(
    stack: SagaStack,
) -> None:
    """A debit booked with the payer unknown (an uploaded line matched by
    approval, a statement line naming no account) that turns out to be a
    second payment of a paid fine: its refund is not sent to the
    placeholder 'unknown' as if it were an account; finance is told."""
    number = await stack.new_fine(640_000)
    _status, started = await stack.pay(number, "hnbank")
    await stack.wait_payment(started["payment_id"], {"succeeded"})
    async with stack.engine.begin() as conn:
        fine = await get_fine(conn, number)
        duplicate, _ = await pay.record_external_debit(
            conn, fine, "hnbank", "PAPER-0002", 640_000, pay.UNKNOWN_PAYER,
            datetime.now(UTC), "matched by hand from an uploaded line",
        )  # fmt: skip
    activities = stack.activities
    settled = await activities.settle_with_receipt(
        wt.SettleInput(str(duplicate.id), "PAPER-0002", "test")
    )
    assert settled.outcome == SettleOutcome.DUPLICATE
    refund = await activities.refund(wt.PaymentRef(str(duplicate.id)))
    assert refund.done is False
    assert await stack.bank_movements("hnbank", "refund") == []
    after = await stack.payment(str(duplicate.id))
    assert after["status"] == "succeeded"
    assert "finance must act" in after["history"][-1]["cause"]
