"""Activities of the payment saga: every piece of I/O, each idempotent.

Methods of one class that receives its dependencies; nothing global. Each
activity either talks to a bank (and maps the answer to a ``BankOutcome``) or
does one business step in one database transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from temporalio import activity
from temporalio.exceptions import ApplicationError

from bank_adapters import types as bt
from bank_adapters.base import BankAdapter
from ledger import payments as pay
from ledger.core import outbox
from ledger.core.errors import InvalidTransitionError
from ledger.fines import get_fine
from ledger.in_doubt import STATUS_CHECK_STEP
from ledger.receipts.issue import Receipt, verify_url
from ledger.receipts.signing import ReceiptSigner
from ledger.reconciliation.raised import open_in_doubt_discrepancy
from observability.metrics import (
    PAYMENT_REASONS,
    payments_total,
    receipt_lag_seconds,
    receipts_issued_total,
)
from workflows.keepalive import keeps_alive
from workflows.payment import types as wt
from workflows.payment.types import OutcomeKind as Kind

log = structlog.get_logger(__name__)
# For the rare lines tests read: bound from the configuration in force at
# each call, never cached on first use (a cached logger keeps the processors
# of its first use and escapes ``structlog.testing.capture_logs``).
_rare_log: Any = structlog.wrap_logger(
    None, cache_logger_on_first_use=False, logger_factory_args=(__name__,)
)

# At most one link-confirming health probe per bank per this many seconds.
LINK_PROBE_SECONDS_MIN = 1.0


def utc_now() -> datetime:
    return datetime.now(UTC)


def to_outcome(result: bt.BankResult | bt.StatusResult) -> wt.BankOutcome:
    """Every bank answer to exactly one outcome (exhaustive)."""
    match result:
        case bt.Succeeded(bank_ref=ref):
            return wt.BankOutcome(Kind.SUCCEEDED, bank_ref=ref)
        case bt.Declined(reason=reason, party=party):
            return wt.BankOutcome(Kind.DECLINED, reason=reason, party=party)
        case bt.Pending(bank_ref=ref):
            return wt.BankOutcome(Kind.PENDING, bank_ref=ref)
        case bt.OutcomeUnknown(detail=detail):
            return wt.BankOutcome(Kind.OUTCOME_UNKNOWN, reason=detail)
        case bt.LinkDown(detail=detail):
            return wt.BankOutcome(Kind.LINK_DOWN, reason=detail)
        case bt.NotFound(detail=detail):
            return wt.BankOutcome(Kind.NOT_FOUND, reason=detail)


def _already_final(payment: pay.Payment) -> wt.BankOutcome:
    """The payment is final in the ledger (a replayed step, or another path
    booked it meanwhile): its status, and the bank ref it was booked with, so
    that the workflow can tell any other booking the bank notified from it."""
    return wt.BankOutcome(
        Kind.ALREADY_FINAL, bank_ref=payment.bank_ref, payment_status=payment.status
    )


class RefundNotConfirmedError(Exception):
    """The bank has not confirmed a refund yet; the activity is retried (with
    the same key: the bank refunds once). Also the discrepancy refund's."""


@dataclass(frozen=True)
class PaymentDeps:
    engine: AsyncEngine
    adapters: Mapping[str, BankAdapter]
    signer: ReceiptSigner
    public_base_url: str
    clock: Callable[[], datetime] = utc_now


class PaymentActivities:
    def __init__(self, deps: PaymentDeps) -> None:
        self._engine = deps.engine
        # One-statement reads need no transaction: autocommit saves the
        # BEGIN and ROLLBACK round trips (same pool).
        self._reads = deps.engine.execution_options(isolation_level="AUTOCOMMIT")
        self._adapters = deps.adapters
        self._signer = deps.signer
        self._base_url = deps.public_base_url
        self._now = deps.clock
        self._link_probes: dict[str, tuple[float, asyncio.Future[bt.HealthStatus]]] = {}

    @property
    def engine(self) -> AsyncEngine:
        """The ledger's engine (bulk steps built on these activities share it)."""
        return self._engine

    def _adapter(self, bank: str) -> BankAdapter:
        try:
            return self._adapters[bank]
        except KeyError:
            raise ApplicationError(
                f"bank {bank!r} is not configured on this worker", non_retryable=False
            ) from None

    async def _payment(self, payment_id: str) -> pay.Payment:
        async with self._reads.connect() as conn:
            return await pay.get_payment(conn, UUID(payment_id))

    @activity.defn(name="payment.route")
    async def route(self, inp: wt.PaymentRef) -> wt.PaymentRoute:
        """The payment's bank, which the workflow routes its bank calls by."""
        return wt.PaymentRoute((await self._payment(inp.payment_id)).bank)

    @activity.defn(name="payment.send_debit")
    @keeps_alive
    async def send_debit(self, inp: wt.SendDebitInput) -> wt.BankOutcome:
        payment = await self._payment(inp.payment_id)
        if not payment.live:
            return _already_final(payment)
        request = bt.DebitRequest(
            idempotency_key=payment.debit_key,
            decision_number=payment.decision_number,
            amount_vnd=payment.amount_vnd,
            payer_account=payment.payer_account,
            description=f"Nop phat {payment.decision_number}",
        )
        outcome = to_outcome(await self._adapter(payment.bank).initiate_debit(request))
        log.info(
            "payment.debit_sent",
            payment_id=inp.payment_id,
            bank=payment.bank,
            resend=inp.resend,
            outcome=outcome.kind,
        )
        cause = f"debit {'resent' if inp.resend else 'sent'}: bank answered {outcome.kind}"
        now = self._now()
        detail = {"outcome": outcome.kind, "detail": outcome.reason[:300]}
        if outcome.kind in (Kind.PENDING, Kind.OUTCOME_UNKNOWN) and payment.status == "initiated":
            async with self._engine.begin() as conn:
                # The bank may have settled it while the call hung (webhook,
                # link recovery): then there is nothing left to verify.
                current = await pay.get_payment(conn, payment.id, for_update=True)
                if not current.live:
                    await pay.note_event(conn, payment.id, cause, now, detail)
                    return _already_final(current)
                await pay.transition(conn, payment.id, "verifying", cause, now, detail=detail)
        else:
            # One statement: autocommit spares the BEGIN and COMMIT round trips.
            async with self._reads.connect() as conn:
                await pay.note_event(conn, payment.id, cause, now, detail)
        return outcome

    @activity.defn(name="payment.check_status")
    @keeps_alive
    async def check_status(self, inp: wt.StatusCheckInput) -> wt.BankOutcome:
        payment = await self._payment(inp.payment_id)
        if not payment.live:
            return _already_final(payment)
        adapter = self._adapter(payment.bank)
        if inp.after_link_recovery:
            await self._confirm_link(payment.bank, adapter)
        outcome = to_outcome(await adapter.get_status(payment.debit_key))
        log.info(
            "payment.status_checked",
            payment_id=inp.payment_id,
            bank=payment.bank,
            outcome=outcome.kind,
        )
        # The operators' in-doubt queue counts these and shows the last
        # answer (``ledger.in_doubt``). One autocommit statement.
        detail = {
            "step": STATUS_CHECK_STEP,
            "outcome": outcome.kind,
            "detail": outcome.reason[:300],
        }
        async with self._reads.connect() as conn:
            await pay.note_event(
                conn,
                payment.id,
                f"status checked: bank answered {outcome.kind}",
                self._now(),
                detail,
            )
        return outcome

    @activity.defn(name="payment.confirm_update")
    @keeps_alive
    async def confirm_update(self, inp: wt.SignalledOutcome) -> wt.BankOutcome:
        """The bank's word on a success or decline that came by signal: the
        ledger's (a verified webhook, a fetched statement line), or, with
        none there, the bank's answer now. Anyone who can reach Temporal can
        send the signal; only the bank can make it count."""
        payment = await self._payment(inp.payment_id)
        if not payment.live:
            return _already_final(payment)
        async with self._reads.connect() as conn:
            if await pay.bank_said(conn, payment, inp.kind, inp.bank_ref):
                return wt.BankOutcome(inp.kind, bank_ref=inp.bank_ref, reason=inp.reason)
        outcome = to_outcome(await self._adapter(payment.bank).get_status(payment.debit_key))
        log.warning(
            "payment.signal_unconfirmed",
            payment_id=inp.payment_id,
            signalled=inp.kind,
            bank_ref=inp.bank_ref,
            bank_answered=outcome.kind,
        )
        detail = {
            "signalled": inp.kind,
            "signalled_bank_ref": inp.bank_ref,
            "bank_answered": outcome.kind,
            "bank_ref": outcome.bank_ref,
        }
        cause = (
            f"{inp.kind} came by signal with no verified bank event behind it: "
            f"asked the bank, it answered {outcome.kind}"
        )
        async with self._reads.connect() as conn:
            await pay.note_event(conn, payment.id, cause, self._now(), detail)
        return outcome

    async def check_statuses(
        self, bank: str, payment_ids: Sequence[UUID], *, concurrency: int
    ) -> dict[UUID, wt.BankOutcome | None]:
        """``check_status`` after a link recovery for many payments of one bank,
        ``concurrency`` at a time (the VietQR adapter answers the checks in
        flight from one pass over the history): the bank's answer for each,
        or None when the check failed for the bank's or the link's sake
        (``bt.BANK_CALL_ERRORS``, logged). Any other error is a bug: it
        fails the pass (the checks still running are cancelled), Temporal
        retries it, and the payments stay with their own workflows. The
        ledger is not read per payment: the booking step locks each and
        finds one no longer in doubt final."""
        adapter = self._adapter(bank)
        await self._confirm_link(bank, adapter)
        limit = asyncio.Semaphore(concurrency)

        async def one(payment_id: UUID) -> wt.BankOutcome | None:
            async with limit:
                try:
                    return to_outcome(await adapter.get_status(pay.debit_key_for(payment_id)))
                except bt.BANK_CALL_ERRORS as err:
                    _rare_log.warning(
                        "payment.status_check_failed",
                        payment_id=str(payment_id),
                        bank=bank,
                        error=f"{type(err).__name__}: {err}",
                    )
                    return None

        checks = [asyncio.ensure_future(one(p)) for p in payment_ids]
        try:
            answers = await asyncio.gather(*checks)
        except BaseException:
            for check in checks:
                check.cancel()
            raise
        return dict(zip(payment_ids, answers, strict=True))

    async def _confirm_link(self, bank: str, adapter: BankAdapter) -> None:
        """The prober saw the bank's link come back and woke every payment in
        doubt. Our breaker for that bank is likely still open from the
        outage and would refuse the checks until its timer ran out; one
        health probe from here (shared by the checks of the same second)
        half-opens it, and the burst then queues behind a single trial call
        instead of being refused."""
        now = time.monotonic()
        started, probe = self._link_probes.get(bank, (0.0, None))
        if probe is None or (probe.done() and now - started >= LINK_PROBE_SECONDS_MIN):
            probe = asyncio.ensure_future(adapter.health())
            self._link_probes[bank] = (now, probe)
        await asyncio.shield(probe)

    @activity.defn(name="payment.decline")
    async def decline(self, inp: wt.DeclineInput) -> wt.Done:
        async with self._engine.begin() as conn:
            payment = await pay.get_payment(conn, UUID(inp.payment_id))
            changed = await pay.transition(
                conn,
                payment.id,
                "declined",
                f"declined: {inp.reason}",
                self._now(),
                decline_reason=inp.reason[:500],
            )
        if changed:
            party = inp.party if inp.party in PAYMENT_REASONS else "bank"
            payments_total.labels(payment.bank, "declined", party).inc()
        return wt.Done(changed)

    @activity.defn(name="payment.settle_with_receipt")
    async def settle_with_receipt(self, inp: wt.SettleInput) -> wt.SettledWithReceipt:
        """Book the debit and, when it pays the fine, issue the receipt and
        queue its notice, in one transaction: all of them, or none."""
        payment_id = UUID(inp.payment_id)
        now = self._now()
        async with self._engine.begin() as conn:
            done = await pay.settle_with_receipt(
                conn, payment_id, inp.bank_ref, now, inp.cause, self._signer
            )
            if done.receipt is not None:
                # After the audit append, which ``ledger.core.audit`` wants last:
                # this inserts a new row only (its dedupe key is this
                # payment's, whose row we hold), so it waits for no lock.
                await self._queue_notice(conn, done.payment, done.receipt)
        self._count_settled(done, now, self._now())
        if done.receipt is None:
            return wt.SettledWithReceipt(done.outcome)
        return wt.SettledWithReceipt(done.outcome, done.receipt.series, done.receipt.number)

    async def _queue_notice(
        self, conn: AsyncConnection, payment: pay.Payment, receipt: Receipt
    ) -> bool:
        """The 'receipt issued' notice, once per payment (dedupe key)."""
        notice = self._notice(payment, receipt)
        return await outbox.enqueue(conn, notice.dedupe_key, notice.kind, notice.payload)

    def _notice(self, payment: pay.Payment, receipt: Receipt) -> outbox.Draft:
        return outbox.Draft(
            dedupe_key=f"receipt-issued:{payment.id}",
            kind="receipt_issued",
            payload={
                "payment_id": str(payment.id),
                "decision_number": payment.decision_number,
                "amount_vnd": payment.amount_vnd,
                "series": receipt.series,
                "number": receipt.number,
                "verify_url": verify_url(
                    self._base_url, receipt.series, receipt.number, receipt.signature
                ),
            },
        )

    async def settle_many(
        self, confirmed: Sequence[pay.Confirmed], cause: str
    ) -> pay.BatchSettlement:
        """``settle_with_receipt`` for a batch of payments in one transaction
        (``pay.settle_many_with_receipts``), with the receipts' notices: the
        link recovery's bulk step. Not an activity of its own: the recovery
        activity calls it, batch after batch. Metrics and log lines as the
        activity's, per payment."""
        now = self._now()
        async with self._engine.begin() as conn:
            done = await pay.settle_many_with_receipts(conn, confirmed, now, cause, self._signer)
            notices = [
                self._notice(s.payment, s.receipt)
                for s in done.settled.values()
                if s.receipt is not None
            ]
            # After the audit append (insert-only rows, keyed by payments
            # whose rows we hold): they wait for no lock.
            await outbox.enqueue_many(conn, notices)
        after = self._now()
        for settled in done.settled.values():
            self._count_settled(settled, now, after, batch=len(confirmed))
        for payment_id, why in done.refused.items():
            log.warning("payment.settle_refused", payment_id=str(payment_id), reason=why)
        return done

    def _count_settled(
        self, done: pay.Settlement, now: datetime, after: datetime, **log_fields: object
    ) -> None:
        """The metrics and log lines of a settlement booked at ``now`` and
        committed at ``after``."""
        if done.payment.status in pay.LIVE_STATUSES:
            payments_total.labels(done.payment.bank, "succeeded", "ok").inc()
        log.info(
            "payment.settled",
            payment_id=str(done.payment.id),
            bank=done.payment.bank,
            outcome=done.outcome.value,
            **log_fields,
        )
        if done.receipt is not None and done.receipt_issued_now:
            receipts_issued_total.inc()
            # Debit known: when it was booked (now, unless booked before).
            debited_at = done.payment.debited_at or now
            receipt_lag_seconds.observe(max((after - debited_at).total_seconds(), 0.0))
            log.info(
                "receipt.issued",
                payment_id=str(done.payment.id),
                series=done.receipt.series,
                number=done.receipt.number,
            )

    @activity.defn(name="payment.refund")
    async def refund(self, inp: wt.PaymentRef) -> wt.RefundResult:
        payment = await self._payment(inp.payment_id)
        if payment.status == "refunded":
            return wt.RefundResult(
                True, wt.BankOutcome(Kind.ALREADY_FINAL, payment_status="refunded")
            )
        if payment.status != "succeeded" or payment.settles_fine or payment.bank_ref is None:
            raise InvalidTransitionError(f"payment {payment.id} is not a refundable duplicate")
        unknown_payer = payment.payer_account == pay.UNKNOWN_PAYER
        request = bt.RefundRequest(
            idempotency_key=f"rf-{payment.id.hex}",
            amount_vnd=payment.amount_vnd,
            reason=f"Hoan tien nop trung {payment.decision_number}",
            original_idempotency_key=(
                payment.debit_key if payment.channel in pay.DRIVEN_CHANNELS else None
            ),
            original_bank_ref=payment.bank_ref,
            # No account is made up: the bank refunds its own debit, or the
            # refund waits for finance (below).
            payee_account=None if unknown_payer else payment.payer_account,
        )
        try:
            outcome = to_outcome(await self._adapter(payment.bank).refund(request))
        except bt.InvalidRequestError as err:
            if not unknown_payer:
                raise
            async with self._engine.begin() as conn:
                await pay.note_event(
                    conn,
                    payment.id,
                    f"refund not sent: no record of the bank's names the payer ({err}); "
                    "finance must act",
                    self._now(),
                )
            return wt.RefundResult(False, wt.BankOutcome(Kind.DECLINED, reason=str(err)))
        if outcome.kind == Kind.SUCCEEDED:
            async with self._engine.begin() as conn:
                changed = await pay.mark_refunded(
                    conn, payment.id, outcome.bank_ref or request.idempotency_key, self._now()
                )
            if changed:
                # A second debit of a paid fine: the ledger cannot tell a bank's
                # double booking from a citizen paying twice, so the bank's.
                payments_total.labels(payment.bank, "refunded", "bank").inc()
            return wt.RefundResult(True, outcome)
        if outcome.kind == Kind.DECLINED:
            async with self._engine.begin() as conn:
                await pay.note_event(
                    conn,
                    payment.id,
                    f"refund declined by the bank: {outcome.reason}; finance must act",
                    self._now(),
                )
            return wt.RefundResult(False, outcome)
        # Pending / unknown / link down: try again later with the same key.
        raise RefundNotConfirmedError(f"refund of {payment.id}: bank answered {outcome.kind}")

    @activity.defn(name="payment.raise_in_doubt_alert")
    async def raise_in_doubt_alert(self, inp: wt.InDoubtAlertInput) -> wt.Done:
        payment_id = UUID(inp.payment_id)
        minutes = inp.verifying_for_seconds // 60
        async with self._engine.begin() as conn:
            payment = await pay.get_payment(conn, payment_id)
            await pay.note_event(
                conn,
                payment_id,
                f"still being verified with the bank after {minutes} min: flagged to finance",
                self._now(),
            )
            # Finance's queue (the same kind a reconciliation run opens; one
            # per payment); the payment keeps being verified.
            discrepancy_id = await open_in_doubt_discrepancy(
                conn, payment_id, inp.verifying_for_seconds, self._now()
            )
            await outbox.enqueue(
                conn,
                dedupe_key=f"payment-in-doubt:{payment_id}",
                kind="payment_in_doubt",
                payload={
                    "payment_id": str(payment_id),
                    "bank": payment.bank,
                    "decision_number": payment.decision_number,
                    "verifying_for_seconds": inp.verifying_for_seconds,
                    "discrepancy_id": discrepancy_id,
                },
            )
        return wt.Done()

    @activity.defn(name="payment.result")
    async def result(self, inp: wt.PaymentRef) -> wt.FinePaymentResult:
        async with self._engine.connect() as conn:
            view = await pay.payment_view(conn, UUID(inp.payment_id))
        return wt.FinePaymentResult(
            payment_id=inp.payment_id,
            status=view.payment.status,
            receipt_series=view.receipt.series if view.receipt else None,
            receipt_number=view.receipt.number if view.receipt else None,
            refunded=view.payment.status == "refunded",
        )

    @activity.defn(name="payment.next_live_payment")
    async def next_live_payment(self, inp: wt.PaymentRef) -> wt.NextPayment:
        async with self._reads.connect() as conn:
            nxt = await pay.next_live_payment(conn, UUID(inp.payment_id))
        return wt.NextPayment(str(nxt) if nxt else None)

    @activity.defn(name="payment.record_external_debit")
    async def record_external_debit(self, inp: wt.ExternalDebitInput) -> wt.PaymentRef:
        async with self._engine.begin() as conn:
            fine = await get_fine(conn, inp.decision_key)
            payment, _ = await pay.record_external_debit(
                conn,
                fine,
                inp.bank,
                inp.bank_ref,
                inp.amount_vnd,
                inp.payer_account,
                self._now(),
                inp.cause,
            )
        return wt.PaymentRef(str(payment.id))

    @activity.defn(name="payment.record_double_debit")
    async def record_double_debit(self, inp: wt.DoubleDebitInput) -> wt.PaymentRef:
        """Record the second booking as a payment to refund, if the ledger
        holds the bank's word for it (a verified webhook under our key with
        that reference); else nothing (empty id): a booking only signalled
        is never refunded."""
        async with self._engine.begin() as conn:
            original = await pay.get_payment(conn, UUID(inp.payment_id))
            if not await pay.bank_said(conn, original, Kind.SUCCEEDED, inp.bank_ref):
                log.warning(
                    "payment.double_debit_unconfirmed",
                    payment_id=inp.payment_id,
                    bank_ref=inp.bank_ref,
                )
                return wt.PaymentRef("")
            fine = await get_fine(conn, original.decision_key)
            payment, _ = await pay.record_external_debit(
                conn,
                fine,
                original.bank,
                inp.bank_ref,
                original.amount_vnd,
                original.payer_account,
                self._now(),
                f"bank booked payment {original.id} twice (ref {inp.bank_ref})",
            )
        return wt.PaymentRef(str(payment.id))

    def bank_calls(self) -> list[Callable[..., object]]:
        """The steps that call the payment's bank: they run on that bank's
        task queue (``workflows.common.bank_queue``), in its own slots."""
        return [self.send_debit, self.check_status, self.confirm_update]

    def all(self) -> list[Callable[..., object]]:
        """Every step but the bank calls (``bank_calls``): the ones the
        workflow's own task queue runs."""
        return [
            self.route,
            self.decline,
            self.settle_with_receipt,
            self.refund,
            self.raise_in_doubt_alert,
            self.result,
            self.next_live_payment,
            self.record_external_debit,
            self.record_double_debit,
        ]
