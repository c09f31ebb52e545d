"""The bulk step of ``LinkRecoveryWorkflow``: settle what the bank confirms.

One activity, idempotent as a whole: the status checks are the saga's
(``PaymentActivities.check_statuses``), and the confirmed debits are booked
with their receipts in batches (``PaymentActivities.settle_many``), each
batch one transaction writing what the saga's own booking step writes for
each of its payments, idempotent by payment like it. A retried or
concurrent run (or a payment workflow that wakes on its own timer
meanwhile) books and receipts nothing twice. See
``workflows.payment.link_recovery`` for why it exists.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Sequence
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from domain.outcomes import SettleOutcome
from ledger import payments as pay
from workflows.payment import types as wt
from workflows.payment.activities import PaymentActivities
from workflows.payment.types import BankRef, OutcomeKind, RecoveryReport
from workflows.payment.workflow import FinePaymentWorkflow, workflow_id_for

log = structlog.get_logger(__name__)

# Payments settled in one pass at most; any beyond are still woken and
# resolve themselves (a national-scale outage is paged, not one batch).
RECOVERY_PAYMENTS_MAX = 10_000
# Status checks in flight at once: the VietQR adapter answers all those in
# flight from one pass over the account history, so the more join a pass
# the fewer passes; a REST bank sees at most this many requests queued on
# the worker's HTTP connection pool.
STATUS_CONCURRENCY = 256
# Confirmed debits booked per transaction (``pay.settle_many_with_receipts``):
# one payment at a time queued each on the global locks (the balance shards,
# the unit's receipt series, the audit head) through its own commit, about
# 4 ms each on the 2-core reference machine; a batch takes them once. A
# batch holds them until it commits, so the payment workflows' own
# settlements wait for at most one batch.
RECOVERY_BATCH = 200
# Batches in flight: while one waits on the database, the next is prepared
# (its receipts signed, its rows built) in the worker.
RECOVERY_BATCHES_IN_FLIGHT = 2
# A batch that failed as a whole (a lock timeout, a database hiccup) is
# booked again one payment at a time, this many at once, so that one bad
# payment cannot hold back the others' receipts.
RECOVERY_CONCURRENCY = 8
CAUSE = "bank confirmed the debit when its link came back"
SIGNAL_CONCURRENCY_MAX = 64


class LinkRecoveryActivities:
    def __init__(
        self,
        payments: PaymentActivities,
        engine: AsyncEngine,
        client: Client,
        *,
        concurrency: int = RECOVERY_CONCURRENCY,
        batch: int = RECOVERY_BATCH,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        if not 1 <= batch <= pay.SETTLE_MANY_MAX:
            raise ValueError(f"batch must be 1..{pay.SETTLE_MANY_MAX}, not {batch}")
        self._payments = payments
        self._reads = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._client = client
        self._concurrency = concurrency
        self._batch = batch

    @activity.defn(name="recovery.recover_bank")
    async def recover_bank(self, inp: BankRef) -> RecoveryReport:
        """One pass: the bank's status of every payment in doubt (one burst),
        the confirmed debits booked and receipted (in batches, oldest
        first), then every payment workflow woken. The seconds of
        each step go to the log line."""
        seconds: dict[str, float] = {}
        began = time.perf_counter()
        async with self._reads.connect() as conn:
            in_doubt = await pay.payments_in_doubt(conn, inp.bank, limit=RECOVERY_PAYMENTS_MAX)
        seconds["list"] = time.perf_counter() - began
        answers = await self._payments.check_statuses(
            inp.bank, [p.payment_id for p in in_doubt], concurrency=STATUS_CONCURRENCY
        )
        seconds["status"] = time.perf_counter() - began - sum(seconds.values())
        activity.heartbeat({"checked": len(answers)})
        outcomes: Counter[str] = Counter()
        confirmed: list[pay.Confirmed] = []
        for p in in_doubt:
            answer = answers[p.payment_id]
            if answer is None:
                outcomes["failed"] += 1
            elif answer.kind == OutcomeKind.SUCCEEDED and answer.bank_ref is not None:
                confirmed.append(pay.Confirmed(p.payment_id, answer.bank_ref))
            else:
                outcomes[answer.kind] += 1
        batches = [
            confirmed[start : start + self._batch]
            for start in range(0, len(confirmed), self._batch)
        ]
        in_flight = asyncio.Semaphore(RECOVERY_BATCHES_IN_FLIGHT)

        async def settle(batch: list[pay.Confirmed]) -> None:
            async with in_flight:
                outcomes.update(await self._settle_batch(batch))
                activity.heartbeat(dict(outcomes))

        await asyncio.gather(*(settle(batch) for batch in batches))
        seconds["settle"] = time.perf_counter() - began - sum(seconds.values())
        # Every workflow of the bank's payments in doubt at the start: the
        # settled ones find their payment final and finish, the others
        # re-check at once (and resend, decline or keep verifying).
        woken = await signal_link_recovered(
            self._client,
            sorted({p.decision_key for p in in_doubt}),
            on_progress=_heartbeat,
        )
        seconds["wake"] = time.perf_counter() - began - sum(seconds.values())
        report = _report(inp.bank, len(in_doubt), outcomes, woken)
        log.info(
            "bank.link_recovery.pass",
            **vars(report),
            outcomes=dict(outcomes),
            seconds={step: round(s, 3) for step, s in seconds.items()},
        )
        return report

    async def _settle_batch(self, batch: list[pay.Confirmed]) -> Counter[str]:
        """One batch in one transaction: what became of its payments. A
        batch that fails as a whole is booked one payment at a time."""
        outcomes: Counter[str] = Counter()
        try:
            done = await self._payments.settle_many(batch, CAUSE)
        except Exception as err:
            log.warning(
                "bank.link_recovery.batch_failed",
                payments=len(batch),
                error=f"{type(err).__name__}: {err}",
            )
            limit = asyncio.Semaphore(self._concurrency)

            async def one(item: pay.Confirmed) -> str:
                async with limit:
                    return await self._settle_one(item.payment_id, item.bank_ref)

            outcomes.update(await asyncio.gather(*(one(item) for item in batch)))
            return outcomes
        outcomes.update(_kind(s.outcome) for s in done.settled.values())
        # Nothing booked (an unknown payment, one the bank's word cannot
        # move): its workflow, woken after the batch, decides.
        outcomes["failed"] += len(done.refused)
        return outcomes

    async def _settle_one(self, payment_id: UUID, bank_ref: str) -> str:
        """One payment alone, the saga's own step: what became of it."""
        try:
            settled = await self._payments.settle_with_receipt(
                wt.SettleInput(str(payment_id), bank_ref, CAUSE)
            )
        except Exception as err:
            # One payment's failure (its row locked past the timeout, a
            # database hiccup) must not hold back the others' receipts; its
            # workflow, woken after the batch, retries it under its own
            # retry policy.
            log.warning(
                "bank.link_recovery.payment_failed",
                payment_id=str(payment_id),
                error=f"{type(err).__name__}: {err}",
            )
            return "failed"
        return _kind(settled.outcome)

    def all(self) -> list[Callable[..., object]]:
        return [self.recover_bank]


def _kind(outcome: SettleOutcome) -> str:
    # Anything but a settlement is a second debit of a paid fine: its
    # refund is a remote, long-retried step of the payment workflow.
    return "settled" if outcome == SettleOutcome.SETTLED else "duplicate"


def _report(bank: str, in_doubt: int, outcomes: Counter[str], woken: int) -> RecoveryReport:
    return RecoveryReport(
        bank,
        in_doubt=in_doubt,
        checked=sum(n for kind, n in outcomes.items() if kind != "failed"),
        settled=outcomes["settled"],
        duplicates=outcomes["duplicate"],
        left_to_workflows=sum(
            n for kind, n in outcomes.items() if kind not in ("settled", "duplicate")
        ),
        woken=woken,
        passes=1,
    )


def _heartbeat(signalled: int) -> None:
    activity.heartbeat({"woken": signalled})


async def signal_link_recovered(
    client: Client,
    decision_keys: Sequence[str],
    *,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Send ``link_recovered`` to the payment workflow of each fine (bounded
    concurrency); returns how many were running to receive it."""
    limit = asyncio.Semaphore(SIGNAL_CONCURRENCY_MAX)
    signalled = 0

    async def one(key: str) -> bool:
        nonlocal signalled
        async with limit:
            try:
                await client.get_workflow_handle(workflow_id_for(key)).signal(
                    FinePaymentWorkflow.link_recovered
                )
            except RPCError as err:
                if err.status == RPCStatusCode.NOT_FOUND:
                    return False  # the sweeper starts it; it checks at once then
                raise
            signalled += 1
            if on_progress is not None:
                on_progress(signalled)
            return True

    return sum(await asyncio.gather(*(one(k) for k in decision_keys)))
