"""The payment saga end to end over real components: API → Temporal worker →
bank simulator over HTTP → ledger in PostgreSQL → receipt. The simulators'
own records (GET /debits) are the ground truth for every money check."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from ledger.core.postings import balances, posting_sums
from tests.support.stack import BANKS, PAYER, SagaStack, eventually


async def _debits(stack: SagaStack, bank: str) -> list[dict[str, object]]:
    return [
        m
        for m in await stack.bank_movements(bank)
        if m.get("kind") == "debit" and m.get("status") in ("succeeded", "pending")
    ]


async def _pay_under_fault(stack: SagaStack, bank: str, mode: str, **params: object) -> str:
    """A new fine paid at ``bank`` while ``mode`` is on; the payment's id."""
    dn = await stack.new_fine()
    await stack.admins[bank].add_fault(mode, **params)
    _status, started = await stack.pay(dn, bank)
    return str(started["payment_id"])


async def _assert_books_balance(stack: SagaStack) -> None:
    async with stack.engine.connect() as conn:
        cached = await balances(conn)
        assert cached == await posting_sums(conn)
        assert sum(cached.values()) == 0


@pytest.mark.parametrize("bank", list(BANKS))
async def test_happy_path_one_debit_one_receipt(stack: SagaStack, bank: str) -> None:
    dn = await stack.new_fine()
    status, started = await stack.pay(dn, bank, key="k1")
    assert status == 202
    assert started["status"] in ("initiated", "verifying", "succeeded")
    payment = await stack.wait_payment(started["payment_id"], {"succeeded"})
    assert payment["receipt"]["number"] >= 1
    assert next(h["to_status"] for h in payment["history"]) == "initiated"
    assert payment["history"][-1]["to_status"] == "succeeded"
    fine = await stack.fine(dn.lower())
    assert fine["status"] == "paid"
    assert fine["receipt"]["series"] == payment["receipt"]["series"]
    assert len(await _debits(stack, bank)) == 1
    await _assert_books_balance(stack)
    # The same request again is the same payment, not a second debit.
    status, again = await stack.pay(dn, bank, key="k1")
    assert status == 202
    assert again["payment_id"] == started["payment_id"]
    # A new request for a paid fine is refused.
    status, refused = await stack.pay(dn, bank, key="k2")
    assert status == 409
    assert refused["error"]["code"] == "fine_already_paid"
    assert len(await _debits(stack, bank)) == 1


@pytest.mark.parametrize("bank", list(BANKS))
async def test_declined_leaves_the_fine_unpaid_and_a_new_payment_may_start(
    stack: SagaStack, bank: str
) -> None:
    dn = await stack.new_fine(900_000)
    await stack.admins[bank].set_account(PAYER, balance_vnd=1_000)
    status, started = await stack.pay(dn, bank)
    assert status == 202
    payment = await stack.wait_payment(started["payment_id"], {"declined"})
    assert payment["decline_reason"]
    assert payment["receipt"] is None
    assert (await stack.fine(dn))["status"] == "unpaid"
    assert await _debits(stack, bank) == []
    await stack.admins[bank].set_account(PAYER, balance_vnd=10_000_000)
    status, second = await stack.pay(dn, bank)
    assert second["payment_id"] != started["payment_id"]
    await stack.wait_payment(second["payment_id"], {"succeeded"})
    assert len(await _debits(stack, bank)) == 1


@pytest.mark.parametrize("bank", list(BANKS))
@pytest.mark.parametrize("mode", ["timeout_after_debit", "lost_response", "http_500", "malformed"])
async def test_unknown_outcome_is_verified_never_failed(
    stack: SagaStack, bank: str, mode: str
) -> None:
    """The seed story: the bank took the money but its answer was lost. The
    payment goes to 'verifying' (never 'declined') and ends with one receipt
    once the bank confirms (webhook or status check)."""
    dn = await stack.new_fine()
    params: dict[str, object] = {"hang_seconds": 12} if mode == "timeout_after_debit" else {}
    if mode == "http_500":
        params = {"after_debit": True}
    fault = await stack.admins[bank].add_fault(mode, seconds=60, **params)
    _status, started = await stack.pay(dn, bank)

    async def verifying() -> bool:
        payment = await stack.payment(started["payment_id"])
        assert payment["status"] != "declined", payment
        return "verifying" in [h["to_status"] for h in payment["history"]]

    await eventually(verifying, 30, "payment to be verifying")
    await stack.admins[bank].clear_faults()
    payment = await stack.wait_payment(started["payment_id"], {"succeeded"})
    statuses = [h["to_status"] for h in payment["history"]]
    assert "declined" not in statuses
    assert statuses[0] == "initiated"
    assert statuses[-1] == "succeeded"
    assert payment["receipt"] is not None
    assert len(await _debits(stack, bank)) == 1, fault
    await _assert_books_balance(stack)


async def test_link_down_at_first_send_declines_with_nothing_debited(stack: SagaStack) -> None:
    bank = "sgbank"
    payment_id = await _pay_under_fault(stack, bank, "link_down", seconds=30)
    payment = await stack.wait_payment(payment_id, {"declined"})
    assert payment["decline_reason"] == "bank unavailable, nothing debited"
    assert await _debits(stack, bank) == []


async def test_link_back_within_the_window_pays(stack: SagaStack) -> None:
    bank = "hnbank"
    payment_id = await _pay_under_fault(stack, bank, "link_down", seconds=1.0)
    payment = await stack.wait_payment(payment_id, {"succeeded"})
    assert payment["receipt"] is not None
    assert len(await _debits(stack, bank)) == 1


async def test_link_down_while_verifying_then_recovery_wakes_payment(stack: SagaStack) -> None:
    """Debit made, answer lost, then the link drops: the payment keeps
    verifying; the link-recovery event makes it re-check at once. (The VietQR
    bank sends no webhooks, so only a status check can resolve it.)"""
    bank = "hnbank"
    dn = await stack.new_fine()
    await stack.admins[bank].add_fault("lost_response", seconds=60)
    status, started = await stack.pay(dn, bank)
    await eventually(lambda: _status_is(stack, started["payment_id"], "verifying"), 30, "verifying")
    await stack.admins[bank].clear_faults()
    await stack.admins[bank].add_fault("link_down")
    await asyncio.sleep(2)
    payment = await stack.payment(started["payment_id"])
    assert payment["status"] == "verifying"
    await stack.admins[bank].clear_faults()
    status, woken = await stack.call("POST", f"/api/v1/banks/{bank}/link-recovered")
    assert status == 200
    assert woken["woken"] == 1
    payment = await stack.wait_payment(started["payment_id"], {"succeeded"})
    assert len(await _debits(stack, bank)) == 1


async def _status_is(stack: SagaStack, payment_id: str, status: str) -> bool:
    return (await stack.payment(payment_id))["status"] == status


@pytest.mark.parametrize("bank", list(BANKS))
async def test_concurrent_double_submission_makes_one_debit(stack: SagaStack, bank: str) -> None:
    dn = await stack.new_fine()
    results = await asyncio.gather(*(stack.pay(dn, bank, key=f"click-{i}") for i in range(6)))
    assert {status for status, _ in results} == {202}
    ids = {body["payment_id"] for _, body in results}
    assert len(ids) == 1
    await stack.wait_payment(ids.pop(), {"succeeded"})
    assert len(await _debits(stack, bank)) == 1


async def test_in_doubt_payments_survive_a_worker_restart(stack: SagaStack) -> None:
    bank = "hnbank"
    dn = await stack.new_fine()
    await stack.admins[bank].add_fault("lost_response", seconds=60)
    _status, started = await stack.pay(dn, bank)
    await eventually(lambda: _status_is(stack, started["payment_id"], "verifying"), 30, "verifying")
    await stack.stop_worker()
    await stack.admins[bank].clear_faults()
    await asyncio.sleep(0.5)
    assert (await stack.payment(started["payment_id"]))["status"] == "verifying"
    await stack.start_worker()
    await stack.wait_payment(started["payment_id"], {"succeeded"})
    async with stack.engine.connect() as conn:
        receipts = (await conn.execute(text("SELECT count(*) FROM receipts"))).scalar_one()
    assert receipts == 1
