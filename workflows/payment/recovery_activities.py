"""The bulk step of ``LinkRecoveryWorkflow``: settle what the bank confirms.

One activity, idempotent as a whole: every step it takes per payment is a
step of the payment saga (``PaymentActivities``: the status check, then the
booking with its receipt in one transaction), each idempotent by payment,
so a retried or concurrent run (or a payment workflow that wakes on its own
timer meanwhile) books and receipts nothing twice. See
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
# Payments booked and receipted per transaction. The commit (a wait for the
# disk) and the round trips of the global locks (accounts, receipt series,
# audit head, held to the commit) are paid once per batch instead of once
# per payment; the bigger the batch, the longer another writer waits for
# those locks (about 2 ms a payment on the reference machine).
SETTLE_BATCH = 50
CAUSE = "bank confirmed the debit when its link came back"
SIGNAL_CONCURRENCY_MAX = 64


def settle_batches(
    confirmed: Sequence[tuple[pay.InDoubt, str]], size: int = SETTLE_BATCH
) -> list[list[tuple[UUID, str]]]:
    """The confirmed debits (payment, bank ref) in batches of at most
    ``size``, each of ONE receipt series (issuing unit): after its first
    audit append a batch then takes no new series lock, so it cannot
    deadlock with a single settlement holding another series (the lock
    order of ``ledger.core.audit``). Deterministic: by unit, then as given."""
    if size < 1:
        raise ValueError(f"batch size must be at least 1, not {size}")
    by_unit: dict[str, list[tuple[UUID, str]]] = {}
    for payment, bank_ref in confirmed:
        by_unit.setdefault(payment.issuing_unit, []).append((payment.payment_id, bank_ref))
    return [
        items[i : i + size]
        for _, items in sorted(by_unit.items())
        for i in range(0, len(items), size)
    ]


class LinkRecoveryActivities:
    def __init__(
        self,
        payments: PaymentActivities,
        engine: AsyncEngine,
        client: Client,
        *,
        batch_size: int = SETTLE_BATCH,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1, not {batch_size}")
        self._payments = payments
        self._reads = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._client = client
        self._batch_size = batch_size

    @activity.defn(name="recovery.recover_bank")
    async def recover_bank(self, inp: BankRef) -> RecoveryReport:
        """One pass: the bank's status of every payment in doubt, the
        confirmed debits booked and receipted in batches, then every payment
        workflow woken. The seconds of each step go to the log line."""
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
        confirmed: list[tuple[pay.InDoubt, str]] = []
        for p in in_doubt:
            answer = answers[p.payment_id]
            if answer is None:
                outcomes["failed"] += 1
            elif answer.kind == OutcomeKind.SUCCEEDED and answer.bank_ref is not None:
                confirmed.append((p, answer.bank_ref))
            else:
                outcomes[answer.kind] += 1
        for batch in settle_batches(confirmed, self._batch_size):
            outcomes.update(await self._settle(batch))
            activity.heartbeat(dict(outcomes))
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

    async def _settle(self, batch: list[tuple[UUID, str]]) -> Counter[str]:
        """One batch in one transaction; if it fails (a deadlock another
        writer lost to us, a database hiccup), each of its payments alone."""
        outcomes: Counter[str] = Counter()
        try:
            done = await self._payments.settle_many(batch, CAUSE)
        except Exception as err:
            log.warning(
                "bank.link_recovery.batch_failed",
                payments=len(batch),
                error=f"{type(err).__name__}: {err}",
            )
            for payment_id, bank_ref in batch:
                outcomes[await self._settle_one(payment_id, bank_ref)] += 1
            return outcomes
        for payment_id, _ in batch:
            settled = done.get(payment_id)
            # Not settled here: another path holds or decided it; its
            # workflow, woken below, finds out.
            outcomes["skipped" if settled is None else _kind(settled.outcome)] += 1
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
