"""LinkRecoveryWorkflow: a bank's link is back; settle what it confirms, now.

During an outage every payment of the bank that was in flight stays
*verifying*, each in its own ``FinePaymentWorkflow``, backing off towards
the longest poll interval. Waking them one by one when the link comes back
makes each run its own status check, booking and receipt: on the 2-core
reference machine 500 of them took half a minute (docs/benchmarks.md),
while the citizen waits for a receipt. So the recovery is done in bulk,
once, by one activity (``workflows.payment.recovery_activities``): it asks the bank
about every payment in doubt (bounded concurrency; the VietQR adapter
answers a burst from one pass over the account history), books and
receipts every debit the bank confirms with the same idempotent steps the
payment workflows use, and then wakes every payment workflow of the bank.
Those find their payment settled (or re-check the rest themselves) and
finish. Nothing new is decided here: a payment the bank declines, does not
know or cannot answer for is left to its workflow, which owns it.

The workflow id is ``link-recovery/<bank>``. A recovery event while one
runs joins it (signal-with-start) and makes it do one more pass when the
current one ends, so an event is never lost and never runs twice at once.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.common import StepPolicy, backoff, remote
    from workflows.payment.recovery_activities import LinkRecoveryActivities
    from workflows.payment.types import BankRef, RecoveryReport

WORKFLOW_ID_PREFIX = "link-recovery/"
# Passes per run: a pass per recovery event that arrived while one ran,
# bounded (the events of one outage flapping would otherwise chain).
PASSES_MAX = 5
# The activity heartbeats after every payment it settles and while it waits
# for the bank; a worker that died mid-batch is noticed this fast. At most 5
# attempts: the payments left over resolve themselves in their workflows.
RECOVER = StepPolicy(
    start_to_close=timedelta(minutes=10),
    schedule_to_close=None,
    retry=backoff(timedelta(seconds=2), timedelta(seconds=60), attempts_max=5),
    heartbeat=timedelta(seconds=30),
)


def workflow_id_for(bank: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{bank}"


@workflow.defn(name="LinkRecovery")
class LinkRecoveryWorkflow:
    def __init__(self) -> None:
        self._again = False

    @workflow.signal(name="link_recovered")
    def link_recovered(self) -> None:
        self._again = True

    @workflow.run
    async def run(self, inp: BankRef) -> RecoveryReport:
        total = RecoveryReport(inp.bank)
        for _ in range(PASSES_MAX):
            # The start signal (or an event during the last pass) asks for
            # this pass; what arrives during it asks for the next.
            self._again = False
            report = await remote(LinkRecoveryActivities.recover_bank, inp, RECOVER)
            total.add(report)
            if not self._again:
                break
        return total
