"""ExternalDebitWorkflow: a debit the bank made that no live payment of ours
is waiting for — a late webhook, a duplicate debit, or a statement line.

Id ``external-debit/<bank>/<bank_ref>``, so each bank debit is handled once.
It is recorded as a payment; if the fine is unpaid it settles it and gets the
receipt ("debited but the portal said failed", healed), otherwise it is a
duplicate and is refunded.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.common import LEDGER_STEP, local
    from workflows.payment import types as wt
    from workflows.payment.activities import PaymentActivities as Steps
    from workflows.payment.workflow import settle_and_receipt

WORKFLOW_ID_PREFIX = "external-debit/"


def workflow_id_for(bank: str, bank_ref: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{bank}/{bank_ref}"


@workflow.defn(name="ExternalDebit")
class ExternalDebitWorkflow:
    @workflow.run
    async def run(self, inp: wt.ExternalDebitInput) -> wt.FinePaymentResult:
        # A debit the ledger refuses (another amount than the fine's:
        # ``AmountMismatchError``) stops the run here, at the first attempt
        # (``workflows.interceptors``): nothing is booked, the worker logs it
        # at error level, and the day's reconciliation holds the statement
        # line in suspense as an amount_mismatch discrepancy for finance.
        ref = await local(Steps.record_external_debit, inp, LEDGER_STEP)
        return await settle_and_receipt(ref.payment_id, inp.bank_ref, inp.cause)
