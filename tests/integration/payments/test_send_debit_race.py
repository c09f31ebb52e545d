"""A payment booked while our debit call hangs (the bank's webhook, or the
link recovery, settled it first) is final when the call's answer finally
comes back unknown: the debit step reports it final instead of moving it
back to verifying. That move was refused, failed the step without retry and
with it the payment's workflow, which then dropped a second booking the bank
notified (found by the saga state machine test)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text

from ledger import payments as pay
from ledger.core.postings import balances, posting_sums
from tests.support.ledger import make_fine
from tests.support.recon import PAYER
from tests.support.stack import SagaStack, eventually
from workflows.payment import types as wt


async def test_an_unknown_answer_for_a_payment_settled_meanwhile_reports_it_final(
    stack: SagaStack,
) -> None:
    fine = await make_fine(stack.engine, "8500/QĐ-XPHC", 800_000)
    now = datetime.now(UTC)
    async with stack.engine.begin() as conn:
        payment, _ = await pay.create_payment(conn, fine, "sgbank", PAYER, now)
    # Longer than the adapter's 10 s read timeout: the answer is unknown.
    await stack.admins["sgbank"].add_fault("timeout_after_debit", hang_seconds=12.0)
    sending = asyncio.create_task(
        stack.activities.send_debit(
            wt.SendDebitInput(str(payment.id), resend=False, verifying=False)
        )
    )
    # The bank carries the debit out, then hangs: book it meanwhile.
    debits = await eventually(
        lambda: stack.bank_movements("sgbank", "debit"), 10, "the bank's debit"
    )
    async with stack.engine.begin() as conn:
        await pay.settle_payment(conn, payment.id, debits[0]["bank_ref"], now, "webhook (test)")
    assert not sending.done()
    outcome = await sending
    assert (outcome.kind, outcome.payment_status) == (wt.OutcomeKind.ALREADY_FINAL, "succeeded")
    async with stack.engine.connect() as conn:
        view = await pay.payment_view(conn, payment.id)
    history = view.history
    assert view.payment.status == "succeeded"
    assert "verifying" not in [e.to_status for e in history]
    assert any("bank answered outcome_unknown" in e.cause for e in history)


async def test_a_second_booking_notified_while_the_debit_hung_is_refunded(
    stack: SagaStack,
) -> None:
    """The bank books the debit twice and notifies both bookings while our
    call hangs; the link recovery settles the payment with the first. When the
    call's answer comes back unknown, the run finds its payment final and must
    still book and refund the second booking it was told of (it used to drop
    it with the run: money taken, never booked nor refunded)."""
    bank = "sgbank"
    dn = await stack.new_fine()
    await stack.admins[bank].add_fault("duplicate_debit", seconds=30)
    # Longer than the adapter's 10 s read timeout: the answer is unknown.
    await stack.admins[bank].add_fault("timeout_after_debit", hang_seconds=12.0, seconds=30)
    _, started = await stack.pay(dn, bank)

    async def both_notified() -> list[dict[str, Any]] | None:
        debits = await stack.bank_movements(bank, "debit")
        refs = {d["bank_ref"] for d in debits}
        delivered = [
            h
            for h in await stack.admins[bank].webhooks()
            if h["payload"]["bank_ref"] in refs and h["delivered_at"] is not None
        ]
        return debits if len(debits) == 2 and len(delivered) == 2 else None

    debits = await eventually(both_notified, 10, "both bookings notified to the live payment")
    assert (await stack.payment(started["payment_id"]))["status"] == "initiated"
    status, body = await stack.call("POST", f"/api/v1/banks/{bank}/link-recovered")
    assert status in (200, 202), body
    await stack.wait_payment(started["payment_id"], {"succeeded"})
    await stack.admins[bank].clear_faults()

    async def refunded() -> dict[str, Any] | None:
        fine = await stack.fine(dn)
        return fine if any(p["status"] == "refunded" for p in fine["payments"]) else None

    fine = await eventually(refunded, 30, "the second booking to be refunded")
    assert fine["status"] == "paid"
    refunds = await stack.bank_movements(bank, "refund")
    assert [r["amount_vnd"] for r in refunds] == [debits[0]["amount_vnd"]]
    async with stack.engine.connect() as conn:
        booked = (
            await conn.execute(text("SELECT status, bank_ref FROM payments ORDER BY status"))
        ).all()
        assert [b.status for b in booked] == ["refunded", "succeeded"]
        assert {b.bank_ref for b in booked} == {d["bank_ref"] for d in debits}
        receipts = (await conn.execute(text("SELECT count(*) FROM receipts"))).scalar_one()
        assert receipts == 1
        assert await balances(conn) == await posting_sums(conn)
