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
from collections import Counter
from collections.abc import Callable, Sequence

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
# Payments being checked and booked at once: the bank sees a bounded burst
# and the worker's connection pool (``db_pool_size``) is not exhausted.
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
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self._payments = payments
        self._reads = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._client = client
        self._concurrency = concurrency

    @activity.defn(name="recovery.recover_bank")
    async def recover_bank(self, inp: BankRef) -> RecoveryReport:
        async with self._reads.connect() as conn:
            in_doubt = await pay.payments_in_doubt(conn, inp.bank, limit=RECOVERY_PAYMENTS_MAX)
        outcomes: Counter[str] = Counter()
        limit = asyncio.Semaphore(self._concurrency)

        async def one(payment: pay.InDoubt) -> None:
            async with limit:
                outcomes[await self._resolve(payment)] += 1
                activity.heartbeat(dict(outcomes))

        await asyncio.gather(*(one(p) for p in in_doubt))
        # Every workflow of the bank's payments in doubt at the start: the
        # settled ones find their payment final and finish, the others
        # re-check at once (and resend, decline or keep verifying).
        woken = await signal_link_recovered(
            self._client,
            sorted({p.decision_key for p in in_doubt}),
            on_progress=_heartbeat,
        )
        report = RecoveryReport(
            inp.bank,
            in_doubt=len(in_doubt),
            checked=sum(n for kind, n in outcomes.items() if kind != "failed"),
            settled=outcomes["settled"],
            duplicates=outcomes["duplicate"],
            left_to_workflows=sum(
                n for kind, n in outcomes.items() if kind not in ("settled", "duplicate")
            ),
            woken=woken,
            passes=1,
        )
        log.info("bank.link_recovery.pass", **vars(report), outcomes=dict(outcomes))
        return report

    async def _resolve(self, payment: pay.InDoubt) -> str:
        """One payment: what became of it ("settled", "duplicate", or the
        bank's answer that leaves it to its workflow)."""
        payment_id = str(payment.payment_id)
        try:
            outcome = await self._payments.check_status(
                wt.StatusCheckInput(payment_id, after_link_recovery=True)
            )
            if outcome.kind != OutcomeKind.SUCCEEDED or outcome.bank_ref is None:
                return outcome.kind
            settled = await self._payments.settle_with_receipt(
                wt.SettleInput(payment_id, outcome.bank_ref, CAUSE)
            )
            if settled.outcome != SettleOutcome.SETTLED:
                # A second debit of a paid fine: its refund is a remote,
                # long-retried step of the payment workflow, woken below.
                return "duplicate"
        except Exception as err:
            # One payment's failure (its row locked past the timeout, a
            # database hiccup) must not hold back the others' receipts; its
            # workflow, woken after the batch, retries it under its own
            # retry policy.
            log.warning(
                "bank.link_recovery.payment_failed",
                payment_id=payment_id,
                bank=payment.bank,
                error=f"{type(err).__name__}: {err}",
            )
            return "failed"
        return "settled"

    def all(self) -> list[Callable[..., object]]:
        return [self.recover_bank]


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
