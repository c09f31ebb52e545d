"""A second booking the bank notifies while the payment is finishing is booked
and refunded by the same run, not dropped (invariant 1 of docs/invariants.md).

The webhook path signals the payment's workflow while the payment is still
live in the ledger; the signal can land after the workflow took its first
bank update, while it settles and issues the receipt (one step,
``payment.settle_with_receipt``) or asks for the next payment. These tests put
the signal exactly there, with stand-in activities on the real Temporal dev
server and the production workflow classes."""

from __future__ import annotations

import uuid
from collections import defaultdict

import pytest
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from domain.outcomes import SettleOutcome
from reconciler.devstack.temporal import TemporalInfo
from reconciler.worker import WORKFLOWS, sandbox_runner
from workflows.common import bank_queue
from workflows.payment import types as wt
from workflows.payment.workflow import FinePaymentWorkflow, workflow_id_for

FIRST_REF = "FT0001"
SECOND_REF = "FT0002"
BANK = "sgbank"


class StandIns:
    """Ledger and bank steps that record what they were asked, and send the
    bank's second booking as a signal from inside ``signal_during``."""

    def __init__(self, client: Client, workflow_id: str, signal_during: str) -> None:
        self.client = client
        self.workflow_id = workflow_id
        self.signal_during = signal_during
        self.calls: defaultdict[str, list[object]] = defaultdict(list)
        self.payment_id = str(uuid.uuid4())

    async def _maybe_signal(self, name: str) -> None:
        if name == self.signal_during and len(self.calls[name]) == 1:
            await self.client.get_workflow_handle(self.workflow_id).signal(
                FinePaymentWorkflow.bank_update,
                wt.BankUpdate(self.payment_id, wt.OutcomeKind.SUCCEEDED, SECOND_REF),
            )

    def bank_calls(self) -> list[object]:
        """What runs on the bank's own task queue."""

        @activity.defn(name="payment.send_debit")
        async def send_debit(inp: wt.SendDebitInput) -> wt.BankOutcome:
            self.calls["send_debit"].append(inp)
            return wt.BankOutcome(wt.OutcomeKind.SUCCEEDED, bank_ref=FIRST_REF)

        return [send_debit]

    def all(self) -> list[object]:
        @activity.defn(name="payment.route")
        async def route(inp: wt.PaymentRef) -> wt.PaymentRoute:
            return wt.PaymentRoute(BANK)

        @activity.defn(name="payment.settle_with_receipt")
        async def settle_with_receipt(inp: wt.SettleInput) -> wt.SettledWithReceipt:
            self.calls["settle_with_receipt"].append(inp)
            await self._maybe_signal("settle_with_receipt")
            if inp.payment_id == self.payment_id:
                return wt.SettledWithReceipt(SettleOutcome.SETTLED, "S-2026", 1)
            return wt.SettledWithReceipt(SettleOutcome.DUPLICATE)

        @activity.defn(name="payment.next_live_payment")
        async def next_live_payment(inp: wt.PaymentRef) -> wt.NextPayment:
            self.calls["next_live_payment"].append(inp)
            await self._maybe_signal("next_live_payment")
            return wt.NextPayment(None)

        @activity.defn(name="payment.record_double_debit")
        async def record_double_debit(inp: wt.DoubleDebitInput) -> wt.PaymentRef:
            self.calls["record_double_debit"].append(inp)
            return wt.PaymentRef(f"dup-{inp.bank_ref}")

        @activity.defn(name="payment.refund")
        async def refund(inp: wt.PaymentRef) -> wt.RefundResult:
            self.calls["refund"].append(inp)
            return wt.RefundResult(True, wt.BankOutcome(wt.OutcomeKind.SUCCEEDED, bank_ref="RF1"))

        return [
            route,
            settle_with_receipt,
            next_live_payment,
            record_double_debit,
            refund,
        ]


@pytest.mark.parametrize("signal_during", ["settle_with_receipt", "next_live_payment"])
async def test_second_booking_signalled_while_finishing_is_refunded(
    temporal_server: TemporalInfo, task_queue: str, signal_during: str
) -> None:
    client = await Client.connect(temporal_server.address)
    decision_key = f"late-double-{uuid.uuid4().hex[:10]}"
    workflow_id = workflow_id_for(decision_key)
    stand_ins = StandIns(client, workflow_id, signal_during)
    async with (
        Worker(
            client,
            task_queue=task_queue,
            workflows=WORKFLOWS,
            activities=stand_ins.all(),
            workflow_runner=sandbox_runner(),
        ),
        Worker(client, task_queue=bank_queue(task_queue, BANK), activities=stand_ins.bank_calls()),
    ):
        result = await client.execute_workflow(
            FinePaymentWorkflow.run,
            wt.FinePaymentInput(decision_key=decision_key, payment_id=stand_ins.payment_id),
            id=workflow_id,
            task_queue=task_queue,
        )
    assert result.status == "succeeded"
    assert result.receipt_number == 1
    assert [c.bank_ref for c in stand_ins.calls["record_double_debit"]] == [SECOND_REF]  # type: ignore[attr-defined]
    assert stand_ins.calls["refund"] == [wt.PaymentRef(f"dup-{SECOND_REF}")]
    # The payment is settled and receipted once; the duplicate is booked once.
    assert [c.payment_id for c in stand_ins.calls["settle_with_receipt"]] == [  # type: ignore[attr-defined]
        stand_ins.payment_id,
        f"dup-{SECOND_REF}",
    ]
