"""FinePaymentWorkflow: one fine, one live payment, exactly one receipt.

Deterministic code only: all I/O is in ``workflows.payment.activities``. The workflow
id is ``fine-payment/<normalised decision number>``; a payment requested while
a run is busy with an earlier payment of the same fine is queued by signal and
taken up (continue-as-new) when that run is done.

A payment whose outcome is unknown is never declined: it is verified until the
bank answers (webhook signal, status polling with durable backoff, or an
immediate re-check when the prober signals that the bank's link is back).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.outcomes import SettleOutcome
    from workflows.common import BANK_CALL, LEDGER_STEP, bank_queue, local, remote
    from workflows.payment import types as wt
    from workflows.payment.activities import PaymentActivities as Steps
    from workflows.payment.types import OutcomeKind as Kind

TASK_QUEUE_DEFAULT = "fine-payments"
WORKFLOW_ID_PREFIX = "fine-payment/"
MAX_QUEUED_UPDATES = 50

# Every ledger step runs as a local activity (``workflows.common.local``: in the
# worker, inside the workflow task, with the same timeouts and retry policy)
# instead of a round trip through the Temporal server each: on the 2-core
# reference machine a remote activity costs the server and SDK more CPU than
# our step itself (see docs/benchmarks.md). Every step is idempotent (bank
# calls by our key, ledger steps by payment), so the re-run a crashed worker
# causes is harmless, as for a retried activity; retries whose backoff
# passes the threshold wait on a durable timer.
#
# Remote still (``workflows.common.remote``): refunds (rare, retried for
# days, worth seeing as activities) and the step that closes every run
# (``next_live_payment``). A run that completes in a workflow task which ran
# local activities is refused by the server when a signal (a bank webhook,
# typically) came in meanwhile, and every local step of that task then runs
# again; closing with a remote activity means a signal never makes the
# debit, settlement or receipt run twice.
#
# The bank calls (send, status check, confirming a signalled outcome) are
# remote, on the payment's bank's own task queue (``bank_queue``): each bank
# has its own bounded activity slots in the worker, so a bank whose calls
# hang cannot take the slots the other banks' payments need, as it did when
# they ran locally in the one pool of every bank (tests/integration/payments/
# test_bank_isolation.py). The bank is the ledger's (``payment.route``, one
# local read per run), recorded in the history, so replays route alike.
#
# A confirmed debit is booked and receipted in one step and one transaction
# (``payment.settle_with_receipt``): no settled payment ever waits for its
# receipt, and the receipt's notice is queued in the same transaction.


def workflow_id_for(decision_key: str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{decision_key}"


@workflow.defn(name="FinePayment")
class FinePaymentWorkflow:
    def __init__(self) -> None:
        self._updates: list[wt.BankUpdate] = []
        # Successes with another bank ref than the one we settle with: the
        # bank debited twice. Each is booked and refunded.
        self._strays: list[wt.BankUpdate] = []
        # The bank ref this run settled with, once it has.
        self._settled_ref: str | None = None
        self._queued: list[str] = []
        self._wake = False
        self._link_back = False
        self._state = "starting"
        self._payment_id = ""
        # The task queue of this run's payment's bank calls (set in ``run``).
        self._bank_queue = ""

    @workflow.signal(name="bank_update")
    def bank_update(self, update: wt.BankUpdate) -> None:
        if len(self._updates) < MAX_QUEUED_UPDATES:
            self._updates.append(update)

    @workflow.signal(name="link_recovered")
    def link_recovered(self) -> None:
        self._wake = True
        self._link_back = True

    @workflow.signal(name="recheck")
    def recheck(self, request: wt.PaymentRef) -> None:
        """An operator's "re-check now": wake the verifying loop of this
        payment for one status check at once. Moves nothing by itself; any
        other state (sending, finishing) or payment ignores it."""
        if request.payment_id == self._payment_id and self._state == "verifying":
            self._wake = True

    @workflow.signal(name="payment_requested")
    def payment_requested(self, request: wt.PaymentRef) -> None:
        if request.payment_id not in self._queued and len(self._queued) < MAX_QUEUED_UPDATES:
            self._queued.append(request.payment_id)

    @workflow.query(name="state")
    def state(self) -> str:
        return f"{self._payment_id}:{self._state}"

    @workflow.run
    async def run(self, inp: wt.FinePaymentInput) -> wt.FinePaymentResult:
        self._payment_id = inp.payment_id
        policy = inp.policy
        route = await local(Steps.route, wt.PaymentRef(inp.payment_id), LEDGER_STEP)
        self._bank_queue = bank_queue(workflow.info().task_queue, route.bank)
        if inp.verifying_since is not None:
            outcome = await self._verify(inp, datetime.fromisoformat(inp.verifying_since))
        else:
            outcome = await self._first_send(inp.payment_id, policy)
            if outcome.kind in (Kind.PENDING, Kind.OUTCOME_UNKNOWN):
                outcome = await self._verify(inp, workflow.now())
        result = await self._finish(inp.payment_id, outcome)
        await self._continue_with_queued(inp, result.payment_id)
        await self._book_late_double_debits()
        return result

    # -- sending -------------------------------------------------------------
    async def _send(self, payment_id: str, *, resend: bool, verifying: bool) -> wt.BankOutcome:
        return await remote(
            Steps.send_debit,
            wt.SendDebitInput(payment_id, resend=resend, verifying=verifying),
            BANK_CALL,
            task_queue=self._bank_queue,
        )

    async def _first_send(self, payment_id: str, policy: wt.VerifyPolicy) -> wt.BankOutcome:
        """Send the debit; while the link is provably down, resend with the
        same key for a bounded window, then decline (nothing was debited)."""
        self._state = "sending"
        started = workflow.now()
        outcome = await self._send(payment_id, resend=False, verifying=False)
        while outcome.kind == Kind.LINK_DOWN:
            waited = (workflow.now() - started).total_seconds()
            if waited >= policy.link_down_window_seconds:
                reason = "bank unavailable, nothing debited"
                await local(Steps.decline, wt.DeclineInput(payment_id, reason), LEDGER_STEP)
                return wt.BankOutcome(Kind.DECLINED, reason=reason)
            self._state = "waiting for the bank link"
            await self._sleep_or_wake(payment_id, policy.link_down_retry_seconds)
            update = self._take_update(payment_id)
            if update is not None:
                outcome = await self._confirmed(payment_id, update)
                if outcome.kind in (Kind.SUCCEEDED, Kind.DECLINED, Kind.ALREADY_FINAL):
                    return outcome
            outcome = await self._send(payment_id, resend=True, verifying=False)
        return outcome

    # -- verifying -----------------------------------------------------------
    async def _verify(self, inp: wt.FinePaymentInput, since: datetime) -> wt.BankOutcome:
        """Resolve an unknown outcome. Never gives up."""
        policy = inp.policy
        payment_id = inp.payment_id
        self._state = "verifying"
        interval = policy.poll_interval_seconds_initial
        alert_raised = inp.in_doubt_alert_raised
        for _ in range(policy.polls_before_continue_as_new):
            woken = await self._sleep_or_wake(payment_id, interval)
            update = self._take_update(payment_id)
            if update is not None:
                # Instead of this round's status check: the same step when
                # the ledger has no word of the bank's for the update.
                outcome = await self._confirmed(payment_id, update)
            else:
                after_recovery, self._link_back = self._link_back, False
                outcome = await remote(
                    Steps.check_status,
                    wt.StatusCheckInput(payment_id, after_link_recovery=after_recovery),
                    BANK_CALL,
                    task_queue=self._bank_queue,
                )
            if outcome.kind == Kind.NOT_FOUND:
                # The bank never got it: resend with the same key (it dedups).
                outcome = await self._send(payment_id, resend=True, verifying=True)
            if outcome.kind in (Kind.SUCCEEDED, Kind.DECLINED, Kind.ALREADY_FINAL):
                return outcome
            age = (workflow.now() - since).total_seconds()
            if not alert_raised and age >= policy.in_doubt_alert_seconds:
                await local(
                    Steps.raise_in_doubt_alert,
                    wt.InDoubtAlertInput(payment_id, int(age)),
                    LEDGER_STEP,
                )
                alert_raised = True
            interval = (
                policy.poll_interval_seconds_initial
                if woken
                else min(interval * 2, policy.poll_interval_seconds_max)
            )
        return workflow.continue_as_new(
            wt.FinePaymentInput(
                decision_key=inp.decision_key,
                payment_id=payment_id,
                policy=policy,
                verifying_since=since.isoformat(),
                in_doubt_alert_raised=alert_raised,
            )
        )

    async def _sleep_or_wake(self, payment_id: str, seconds: float) -> bool:
        """Durable wait; True when woken early by a link-recovery signal or a
        bank update for this payment."""
        self._wake = False
        try:
            await workflow.wait_condition(
                lambda: self._wake or any(u.payment_id == payment_id for u in self._updates),
                timeout=timedelta(seconds=seconds),
            )
        except TimeoutError:
            return False
        return True

    async def _confirmed(self, payment_id: str, update: wt.BankOutcome) -> wt.BankOutcome:
        """A signalled success or decline, as the bank has it: settled on
        only when the ledger holds the verified webhook it came from (or a
        statement line of the bank's), else the bank is asked. A signal is
        anyone's who can reach Temporal; this keeps it a wake-up call."""
        signalled = wt.SignalledOutcome(payment_id, update.kind, update.bank_ref, update.reason)
        return await remote(Steps.confirm_update, signalled, BANK_CALL, task_queue=self._bank_queue)

    def _take_update(self, payment_id: str) -> wt.BankOutcome | None:
        """The most decisive queued webhook update for this payment; other
        successes (another bank ref) are kept as possible double debits."""
        mine = [u for u in self._updates if u.payment_id == payment_id]
        self._updates = [u for u in self._updates if u.payment_id != payment_id]
        chosen: wt.BankUpdate | None = None
        for kind in (Kind.SUCCEEDED, Kind.DECLINED):
            chosen = next((u for u in mine if u.kind == kind), None)
            if chosen is not None:
                break
        self._strays.extend(
            u for u in mine if u is not chosen and u.kind == Kind.SUCCEEDED and u.bank_ref
        )
        if chosen is None:
            return None
        return wt.BankOutcome(chosen.kind, bank_ref=chosen.bank_ref, reason=chosen.reason)

    async def _book_double_debits(self, payment_id: str, settled_ref: str) -> None:
        """The bank reported more than one debit for this payment: every one
        but the settled one is recorded and refunded (idempotent by bank ref,
        so the webhook path doing the same at the same time is harmless).
        Every queued success counts (not only the strays of an earlier
        choice), and a booking notified while we book another is booked too:
        the check that finds none runs in the task that moves on."""
        booked = {settled_ref}
        while True:
            mine = [u for u in self._updates if u.payment_id == payment_id]
            self._updates = [u for u in self._updates if u.payment_id != payment_id]
            self._strays.extend(u for u in mine if u.kind == Kind.SUCCEEDED and u.bank_ref)
            refs = sorted({u.bank_ref for u in self._strays if u.bank_ref} - booked)
            self._strays.clear()
            if not refs:
                return
            for ref in refs:
                booked.add(ref)
                duplicate = await local(
                    Steps.record_double_debit, wt.DoubleDebitInput(payment_id, ref), LEDGER_STEP
                )
                if not duplicate.payment_id:
                    continue  # only signalled: no word of the bank's for it
                await settle_and_receipt(
                    duplicate.payment_id, ref, f"bank debited payment {payment_id} twice"
                )

    async def _book_late_double_debits(self) -> None:
        """A second booking the bank notified while we finished (the webhook
        path signals while the payment is still live in the ledger)."""
        if self._settled_ref is not None:
            await self._book_double_debits(self._payment_id, self._settled_ref)

    # -- finishing -----------------------------------------------------------
    async def _finish(self, payment_id: str, outcome: wt.BankOutcome) -> wt.FinePaymentResult:
        if outcome.kind == Kind.ALREADY_FINAL:
            self._state = outcome.payment_status
            if outcome.bank_ref is not None:
                # Booked by another path (the link recovery, a webhook) while
                # this run waited on the bank: any other booking the bank
                # notified to this run is still ours to book and refund.
                self._settled_ref = outcome.bank_ref
                await self._book_double_debits(payment_id, outcome.bank_ref)
            return await local(Steps.result, wt.PaymentRef(payment_id), LEDGER_STEP)
        if outcome.kind == Kind.DECLINED:
            await local(
                Steps.decline,
                wt.DeclineInput(
                    payment_id, outcome.reason or "declined by the bank", outcome.party or "bank"
                ),
                LEDGER_STEP,
            )
            self._state = "declined"
            return wt.FinePaymentResult(payment_id, "declined")
        assert outcome.kind == Kind.SUCCEEDED, outcome
        assert outcome.bank_ref, "a succeeded debit always has the bank's reference"
        result = await settle_and_receipt(payment_id, outcome.bank_ref, "bank confirmed the debit")
        self._settled_ref = outcome.bank_ref
        await self._book_double_debits(payment_id, outcome.bank_ref)
        return result

    async def _continue_with_queued(self, inp: wt.FinePaymentInput, done_id: str) -> None:
        """Take up a payment of this fine requested while we were busy. The
        ledger says which one is waiting; the signal only makes sure we ask
        again when one arrives while we are finishing."""
        while True:
            self._queued = [p for p in self._queued if p != done_id]
            nxt = await remote(Steps.next_live_payment, wt.PaymentRef(done_id), LEDGER_STEP)
            if nxt.payment_id is not None:
                await self._book_late_double_debits()
                workflow.continue_as_new(
                    wt.FinePaymentInput(
                        decision_key=inp.decision_key,
                        payment_id=nxt.payment_id,
                        policy=inp.policy,
                    )
                )
            if not self._queued:
                return
            self._queued.clear()


async def settle_and_receipt(payment_id: str, bank_ref: str, cause: str) -> wt.FinePaymentResult:
    """Book the debit; the payment that pays the fine gets the receipt (same
    step), a duplicate is refunded (shared with ExternalDebitWorkflow)."""
    settle = wt.SettleInput(payment_id, bank_ref, cause)
    settled = await local(Steps.settle_with_receipt, settle, LEDGER_STEP)
    if settled.outcome == SettleOutcome.SETTLED:
        assert settled.receipt_series is not None, settled
        assert settled.receipt_number is not None, settled
        return wt.FinePaymentResult(
            payment_id,
            "succeeded",
            receipt_series=settled.receipt_series,
            receipt_number=settled.receipt_number,
        )
    if settled.outcome == SettleOutcome.REFUNDED:
        return wt.FinePaymentResult(payment_id, "refunded", refunded=True)
    refund = await remote(Steps.refund, wt.PaymentRef(payment_id), LEDGER_STEP)
    status = "refunded" if refund.done else "succeeded"
    return wt.FinePaymentResult(payment_id, status, refunded=refund.done)
