"""Reconciliation end to end over real components: bank simulators over HTTP,
the statement fetched through the adapter, the Reconciliation workflow on a
real Temporal server, the payment sagas it drives, the ledger in PostgreSQL,
all through the API."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from ledger.core.postings import balances, posting_sums
from tests.integration.reconciliation.conftest import ReconStack
from tests.support.stack import PAYER, eventually


async def _fine_payments(stack: ReconStack, number: str) -> list[Any]:
    async with stack.saga.engine.connect() as conn:
        return list(
            (
                await conn.execute(
                    text(
                        "SELECT p.id, p.status, p.settles_fine, p.bank_ref, p.channel,"
                        " r.number AS receipt_number"
                        " FROM payments p JOIN fines f ON f.id = p.fine_id"
                        " LEFT JOIN receipts r ON r.payment_id = p.id"
                        " WHERE f.decision_number = :n ORDER BY p.created_at"
                    ),
                    {"n": number},
                )
            ).all()
        )


async def test_a_citizen_transfer_we_never_heard_of_pays_the_fine_once_and_a_second_is_refunded(
    recon_stack: ReconStack,
) -> None:
    stack = recon_stack
    number = await stack.saga.new_fine(650_000)
    bank = stack.saga.admins["hnbank"]
    # The citizen pays from their own banking app, typing the number by hand.
    first = await bank.transfer(PAYER, 650_000, f"Nộp phạt {number} Nguyễn Văn A")
    run = await stack.reconcile("hnbank")
    assert run["status"] == "completed", run
    assert (run["healed"], run["matched"], run["discrepancies_open"]) == (1, 0, 0)
    fine = await eventually(lambda: stack.receipted(number), 60, "the fine to be receipted")
    [paid] = await _fine_payments(stack, number)
    assert (paid.channel, paid.bank_ref, paid.settles_fine) == (
        "reconciliation",
        first["bank_ref"],
        True,
    )

    # A second transfer for the same fine: never a second receipt.
    second = await bank.transfer(PAYER, 650_000, f"nop phat {number}")
    run = await stack.reconcile("hnbank")
    assert (run["lines"], run["new_lines"], run["duplicates"]) == (2, 1, 1), run

    async def refunded() -> list[Any] | None:
        rows = await _fine_payments(stack, number)
        return rows if any(r.status == "refunded" for r in rows) else None

    payments = await eventually(refunded, 60, "the duplicate to be refunded")
    assert [(p.bank_ref, p.status, p.receipt_number is not None) for p in payments] == [
        (first["bank_ref"], "succeeded", True),
        (second["bank_ref"], "refunded", False),
    ]
    assert (await stack.saga.fine(number))["receipt"] == fine["receipt"]
    refunds = await stack.saga.bank_movements("hnbank", "refund")
    assert [(r["amount_vnd"], r["counterparty"]) for r in refunds] == [(650_000, PAYER)]

    # The next run sees our refund leave the account and closes the duplicate.
    run = await stack.reconcile("hnbank")
    assert (run["lines"], run["matched"], run["discrepancies_open"]) == (3, 1, 0), run
    status, found = await stack.saga.call(
        "GET", "/api/v1/discrepancies", params={"bank": "hnbank", "kind": "duplicate"}
    )
    assert status == 200
    assert [(d["bank_ref"], d["status"]) for d in found["items"]] == [
        (second["bank_ref"], "resolved")
    ]
    async with stack.saga.engine.connect() as conn:
        assert await balances(conn) == await posting_sums(conn)


@pytest.mark.parametrize(
    "recon_stack",
    # Polling would find the debit in a minute; the statement must be faster.
    [{"verify_poll_interval_seconds_initial": 120.0, "verify_poll_interval_seconds_max": 120.0}],
    indirect=True,
)
async def test_a_debit_whose_answer_was_lost_is_healed_by_the_statement(
    recon_stack: ReconStack,
) -> None:
    stack = recon_stack
    number = await stack.saga.new_fine(420_000)
    bank = stack.saga.admins["sgbank"]
    # The bank takes the money, the answer is lost and the webhook is late:
    # the portal would have said "failed".
    await bank.add_fault("late_webhook", delay_seconds=600)
    await bank.add_fault("lost_response", seconds=60)
    status, started = await stack.saga.pay(number, "sgbank")
    assert status == 202

    async def verifying() -> bool:
        payment = await stack.saga.payment(started["payment_id"])
        assert payment["status"] != "declined"
        return payment["status"] == "verifying"

    await eventually(verifying, 30, "the payment to be verifying")
    await bank.clear_faults()  # the webhook already queued stays 10 minutes late
    run = await stack.reconcile("sgbank")
    assert (run["healed"], run["lines"]) == (1, 1), run
    payment = await stack.saga.wait_payment(started["payment_id"], {"succeeded"})
    assert payment["receipt"] is not None
    [line] = (
        await stack.saga.call("GET", f"/api/v1/reconciliations/{run['reconciliation_id']}/lines")
    )[1]["items"]
    assert (line["class"], line["rule"], line["action"]) == ("healed", "end_to_end", "signal")
    assert line["bank_ref"] == payment["bank_ref"]
