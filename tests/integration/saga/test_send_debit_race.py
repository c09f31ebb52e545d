"""A payment booked while our debit call hangs (the bank's webhook, or the
link recovery, settled it first) is final when the call's answer finally
comes back unknown: the debit step reports it final instead of moving it
back to verifying. That move was refused, failed the step without retry and
with it the payment's workflow, which then dropped a second booking the bank
notified (found by the saga state machine test)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from ledger import payments as pay
from tests.support.ledger import make_fine
from tests.support.recon import PAYER
from tests.support.stack import SagaStack, eventually
from workflows import types as wt


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
    assert (outcome.kind, outcome.payment_status) == (wt.ALREADY_FINAL, "succeeded")
    async with stack.engine.connect() as conn:
        view = await pay.payment_view(conn, payment.id)
    history = view.history
    assert view.payment.status == "succeeded"
    assert "verifying" not in [e.to_status for e in history]
    assert any("bank answered outcome_unknown" in e.cause for e in history)
