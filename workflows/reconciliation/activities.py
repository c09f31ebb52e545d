"""Activities of the reconciliation workflow: every piece of I/O, each
idempotent (a retried load loads nothing twice; a retried saga step starts or
signals nothing twice: workflow ids are per bank reference)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import ClassVar, Final

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from bank_adapters.base import BankAdapter
from bank_adapters.statements import DEFAULT_LIMITS, StatementLimits, parse_statement
from bank_adapters.types import (
    Declined,
    LinkDown,
    OutcomeUnknown,
    Pending,
    RefundRequest,
    StatementFormat,
    StatementLine,
    Succeeded,
)
from domain.formats import is_account
from ledger import payments as pay
from ledger.core import approvals as ap
from ledger.reconciliation import discrepancies as disc
from ledger.reconciliation import followup as follow
from ledger.reconciliation import runs as recon
from ledger.reconciliation.lines import lines_sha256
from ledger.reconciliation.load import load_and_match
from ledger.reconciliation.payment_checks import MatchPolicy
from ledger.reconciliation.suspense import post_suspense_batch
from observability.metrics import reconciliation_discrepancies, reconciliation_lines_total
from workflows.payment import types as wt
from workflows.payment.activities import RefundNotConfirmedError, utc_now
from workflows.payment.client import (
    SagaConfig,
    signal_bank_update,
    start_external_debit,
    start_payment,
)
from workflows.reconciliation import types as rt

log = structlog.get_logger(__name__)

ACTIONS_CONCURRENCY_DEFAULT: Final = 16
SUSPENSE_BATCH: Final = 500
# A million unidentified lines at most per load; the rest waits for the next.
SUSPENSE_BATCHES_MAX: Final = 2_000


class UnknownBankError(Exception):
    """The run names a bank this worker has no adapter for."""

    non_retryable: ClassVar[bool] = True


@dataclass(frozen=True)
class ReconDeps:
    engine: AsyncEngine
    adapters: Mapping[str, BankAdapter]
    client: Client
    saga: SagaConfig
    policy: MatchPolicy = field(default_factory=MatchPolicy)
    statement_limits: StatementLimits = DEFAULT_LIMITS
    actions_concurrency: int = ACTIONS_CONCURRENCY_DEFAULT
    clock: Callable[[], datetime] = utc_now


def payer_account(counterparty: str) -> str:
    """The payer as a bank account a refund can go to, or ``unknown``."""
    return counterparty if is_account(counterparty) else pay.UNKNOWN_PAYER


def _result(run: recon.Run) -> rt.ReconciliationResult:
    c = run.counts
    return rt.ReconciliationResult(
        reconciliation_id=run.id,
        status=run.status,
        bank=run.bank,
        statement_date=run.statement_date.isoformat(),
        lines=c["lines"],
        new_lines=c["new_lines"],
        matched=c["matched"],
        healed=c["healed"],
        duplicates=c["duplicates"],
        amount_mismatches=c["amount_mismatches"],
        unknown=c["unknown"],
        missing_at_bank=c["missing_at_bank"],
        in_doubt_too_long=c["in_doubt_too_long"],
        discrepancies=c["discrepancies"],
        discrepancies_open=c["discrepancies_open"],
        actions_pending=c["actions_pending"],
        error=run.error,
        unconfirmed=c["unconfirmed"],
    )


async def refresh_discrepancy_gauges(engine: AsyncEngine, banks: Sequence[str]) -> None:
    """Set ``reconciliation_discrepancies{bank,kind}`` to the open counts
    (zero where there are none, so a resolved kind drops back)."""
    async with engine.connect() as conn:
        counts = await disc.open_counts(conn)
    for bank in sorted(set(banks) | {b for b, _ in counts}):
        for kind in disc.DISCREPANCY_KINDS:
            reconciliation_discrepancies.labels(bank, kind).set(counts.get((bank, kind), 0))


async def post_suspense(engine: AsyncEngine, bank: str) -> int:
    """Book the suspense entries of ``bank``'s lines waiting for theirs, one
    small transaction per batch; returns how many entries were posted."""
    posted = 0
    for _ in range(SUSPENSE_BATCHES_MAX):
        async with engine.begin() as conn:
            batch = await post_suspense_batch(conn, bank, SUSPENSE_BATCH)
        posted += batch.entries
        if batch.lines < SUSPENSE_BATCH:
            break
    return posted


class ReconciliationActivities:
    def __init__(self, deps: ReconDeps) -> None:
        self._deps = deps
        self._engine = deps.engine
        self._now = deps.clock

    def _adapter(self, bank: str) -> BankAdapter:
        adapter = self._deps.adapters.get(bank)
        if adapter is None:
            raise UnknownBankError(f"bank {bank!r} is not configured on this worker")
        return adapter

    @activity.defn(name="recon.begin")
    async def begin(self, inp: rt.BeginInput) -> rt.RunRef:
        info = activity.info()
        assert info.workflow_id is not None, "recon.begin runs in a workflow"
        async with self._engine.begin() as conn:
            if inp.reconciliation_id is not None:
                run = await recon.get_run(conn, inp.reconciliation_id)
                if run.workflow_id is None:
                    await recon.set_workflow(conn, run.id, info.workflow_id, info.workflow_run_id)
            else:
                run, _ = await recon.create_run(
                    conn,
                    bank=inp.bank,
                    statement_date=date.fromisoformat(inp.statement_date),
                    source="fetch",
                    trigger=inp.trigger,
                    requested_by="schedule" if inp.trigger == "schedule" else inp.trigger,
                    now=self._now(),
                    workflow_id=info.workflow_id,
                    workflow_run_id=info.workflow_run_id,
                )
        return rt.RunRef(run.id, run.bank, run.statement_date.isoformat())

    async def _fetch(self, run: recon.Run) -> tuple[recon.StatementImport, Sequence[StatementLine]]:
        statement = await self._adapter(run.bank).fetch_statement(run.statement_date)
        lines = statement.lines
        digest = await asyncio.to_thread(lines_sha256, lines)
        async with self._engine.begin() as conn:
            statement_import, _ = await recon.register_import(
                conn,
                bank=run.bank,
                statement_date=run.statement_date,
                source="fetch",
                fmt=statement.parsed.format.value,
                content_sha256=digest,
                lines=len(lines),
                now=self._now(),
            )
        return statement_import, lines

    async def _uploaded(
        self, run: recon.Run
    ) -> tuple[recon.StatementImport, Sequence[StatementLine] | None]:
        assert run.import_id is not None, "an upload run has its file"
        async with self._engine.connect() as conn:
            statement_import = await recon.get_import(conn, run.import_id)
            if statement_import.loaded_at is not None:
                return statement_import, None
            data = await recon.import_data(conn, run.import_id)
        parsed = await asyncio.to_thread(
            parse_statement,
            data,
            StatementFormat(statement_import.format),
            limits=self._deps.statement_limits,
        )
        return statement_import, parsed.lines

    @activity.defn(name="recon.load")
    async def load(self, inp: rt.RunRef) -> rt.LoadResult:
        async with self._engine.connect() as conn:
            run = await recon.get_run(conn, inp.reconciliation_id)
        if run.status != "running":
            raise ApplicationError(
                f"reconciliation {run.id} is {run.status}", type="RunFinished", non_retryable=True
            )
        if run.source == "upload":
            statement_import, lines = await self._uploaded(run)
        else:
            statement_import, lines = await self._fetch(run)
        async with self._engine.begin() as conn:
            await recon.attach_import(conn, run.id, statement_import.id)
            summary = await load_and_match(
                conn, run, statement_import, lines, self._now(), self._deps.policy
            )
        await post_suspense(self._engine, run.bank)
        for line_class, count in summary.classes.items():
            reconciliation_lines_total.labels(run.bank, line_class).inc(count)
        log.info(
            "reconciliation.loaded",
            reconciliation_id=run.id,
            bank=run.bank,
            statement_date=str(run.statement_date),
            lines=summary.lines_in_file,
            new_lines=summary.new_lines,
            classes=summary.classes,
            already_loaded=summary.already_loaded,
        )
        c = summary.classes
        return rt.LoadResult(
            import_id=statement_import.id,
            lines_in_file=summary.lines_in_file,
            new_lines=summary.new_lines,
            matched=c.get("matched", 0),
            healed=c.get("healed", 0),
            duplicates=c.get("duplicate", 0),
            amount_mismatches=c.get("amount_mismatch", 0),
            unknown=c.get("unknown", 0),
            discrepancies_opened=summary.discrepancies_opened
            + summary.missing_at_bank_opened
            + summary.in_doubt_opened,
            already_loaded=summary.already_loaded,
            unconfirmed=c.get("unconfirmed", 0),
        )

    @activity.defn(name="recon.act")
    async def act(self, inp: rt.ActInput) -> rt.ActResult:
        async with self._engine.connect() as conn:
            batch = await follow.pending_actions(conn, inp.bank, inp.phase, inp.batch)
        limit = asyncio.Semaphore(self._deps.actions_concurrency)

        async def one(step: follow.PendingAction) -> str | None:
            async with limit:
                try:
                    await self._step(step)
                except RPCError as err:
                    return f"workflow service: {err.status.name}: {err.message}"
                return None

        errors = await asyncio.gather(*(one(step) for step in batch))
        done = [step.line_id for step, error in zip(batch, errors, strict=True) if error is None]
        async with self._engine.begin() as conn:
            await follow.mark_actions_done(conn, done, self._now())
            for step, error in zip(batch, errors, strict=True):
                if error is not None:
                    await follow.record_action_failure(conn, step.line_id, error)
            remaining = await follow.count_pending(conn, inp.bank, inp.phase)
        failed = len(batch) - len(done)
        if failed:
            log.warning("reconciliation.actions_failed", bank=inp.bank, failed=failed)
        return rt.ActResult(done=len(done), failed=failed, remaining=remaining)

    async def _step(self, step: follow.PendingAction) -> None:
        """One line's saga step. Re-checks the ledger first: the webhook or the
        payment's own polling may have booked it meanwhile."""
        if step.booked:
            return  # a payment already carries this bank reference
        if step.action == "signal" and step.payment_id is not None:
            async with self._engine.connect() as conn:
                payment = await pay.get_payment(conn, step.payment_id)
            if payment.live:
                await self._signal(payment, step.bank_ref)
                return
        await start_external_debit(
            self._deps.client,
            self._deps.saga,
            wt.ExternalDebitInput(
                bank=step.bank,
                bank_ref=step.bank_ref,
                decision_key=step.decision_key,
                amount_vnd=step.amount_vnd,
                payer_account=payer_account(step.counterparty),
                cause=f"reconciliation: {step.bank} statement line {step.bank_ref} "
                f"({step.line_class})",
            ),
        )

    async def _signal(self, payment: pay.Payment, bank_ref: str) -> None:
        """Tell the payment's workflow the bank has the money. If it has no
        workflow (never started, or lost), start one first: it resends with
        the same key, the bank deduplicates, and the signal settles it."""
        update = wt.BankUpdate(
            str(payment.id), wt.OutcomeKind.SUCCEEDED, bank_ref, "bank statement"
        )
        try:
            await signal_bank_update(self._deps.client, payment.decision_key, update)
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            await start_payment(
                self._deps.client, self._deps.saga, payment.decision_key, payment.id
            )
            await signal_bank_update(self._deps.client, payment.decision_key, update)

    @activity.defn(name="recon.finish")
    async def finish(self, inp: rt.RunRef) -> rt.ReconciliationResult:
        async with self._engine.begin() as conn:
            run = await follow.finish_run(conn, inp.reconciliation_id, self._now())
        await refresh_discrepancy_gauges(self._engine, [run.bank])
        log.info(
            "reconciliation.completed",
            reconciliation_id=run.id,
            bank=run.bank,
            statement_date=str(run.statement_date),
            **run.counts,
        )
        return _result(run)

    @activity.defn(name="recon.fail")
    async def fail(self, inp: rt.FailInput) -> wt.Done:
        async with self._engine.begin() as conn:
            run = await recon.fail_run(conn, inp.reconciliation_id, inp.error, self._now())
        log.warning(
            "reconciliation.failed", reconciliation_id=run.id, bank=run.bank, error=inp.error
        )
        return wt.Done()

    # --- discrepancy actions approved by a second person ---------------------

    @activity.defn(name="discrepancy.approval_status")
    async def approval_status(self, inp: rt.ApprovalRef) -> rt.ApprovalStatus:
        async with self._engine.connect() as conn:
            approval = await ap.get_approval(conn, inp.approval_id)
        return rt.ApprovalStatus(approval.status)

    @activity.defn(name="discrepancy.expire")
    async def expire(self, inp: rt.ApprovalRef) -> rt.ApprovalStatus:
        async with self._engine.begin() as conn:
            approval = await ap.expire(conn, inp.approval_id, self._now())
        return rt.ApprovalStatus(approval.status)

    @activity.defn(name="discrepancy.refund")
    async def refund(self, inp: rt.ApprovalRef) -> rt.DiscrepancyActionResult:
        """Send the held money back through the bank (same key on every
        retry: the bank refunds once), then book it."""
        async with self._engine.connect() as conn:
            approval = await disc.approved_request(conn, inp.approval_id)
        done = rt.DiscrepancyActionResult(
            inp.discrepancy_id, inp.approval_id, rt.ActionOutcome.REFUNDED
        )
        if approval.status == "executed":
            return done
        payload = approval.payload
        request = RefundRequest(
            idempotency_key=f"rd-{approval.id}",
            amount_vnd=int(payload["amount_vnd"]),
            reason=f"Hoan tien giao dich {payload['bank_ref']}",
            original_bank_ref=str(payload["bank_ref"]),
            payee_account=str(payload["payee_account"]),
        )
        result = await self._adapter(str(payload["bank"])).refund(request)
        match result:
            case Succeeded(bank_ref=refund_ref):
                async with self._engine.begin() as conn:
                    await disc.book_refund(conn, approval.id, refund_ref, self._now())
                return done
            case Declined(reason=reason):
                async with self._engine.begin() as conn:
                    await disc.record_failure(
                        conn, approval.id, f"the bank declined the refund: {reason}", self._now()
                    )
                return rt.DiscrepancyActionResult(
                    inp.discrepancy_id, inp.approval_id, rt.ActionOutcome.FAILED, reason
                )
            case Pending() | OutcomeUnknown() | LinkDown():
                raise RefundNotConfirmedError(
                    f"refund {request.idempotency_key}: the bank has not confirmed it yet"
                )

    @activity.defn(name="discrepancy.manual_match")
    async def manual_match(self, inp: rt.ApprovalRef) -> rt.DiscrepancyActionResult:
        """Book the held money as the fine's payment through the external
        debit saga (a receipt, or a refund if the fine is paid meanwhile),
        then take it out of suspense."""
        async with self._engine.connect() as conn:
            approval = await disc.approved_request(conn, inp.approval_id)
            item = await disc.get_discrepancy(conn, inp.discrepancy_id)
        if approval.status == "approved" and not item.open:
            # Closed meanwhile: an uploaded line the bank's own statement has
            # now (its line acts, with the bank's amount), or dismissed.
            reason = f"discrepancy {item.id} was {item.status} meanwhile: {item.resolution}"
            async with self._engine.begin() as conn:
                await disc.record_failure(conn, approval.id, reason, self._now())
            return rt.DiscrepancyActionResult(
                inp.discrepancy_id, inp.approval_id, rt.ActionOutcome.FAILED, reason
            )
        payload = approval.payload
        await start_external_debit(
            self._deps.client,
            self._deps.saga,
            wt.ExternalDebitInput(
                bank=str(payload["bank"]),
                bank_ref=str(payload["bank_ref"]),
                decision_key=str(payload["decision_key"]),
                amount_vnd=int(payload["amount_vnd"]),
                payer_account=payer_account(str(payload["payer_account"])),
                cause=f"matched by hand (discrepancy {inp.discrepancy_id}, approval {approval.id})",
            ),
        )
        async with self._engine.begin() as conn:
            await disc.release_for_match(conn, approval.id, self._now())
        return rt.DiscrepancyActionResult(
            inp.discrepancy_id, inp.approval_id, rt.ActionOutcome.MATCHED
        )

    def all(self) -> list[Callable[..., object]]:
        return [
            self.begin,
            self.load,
            self.act,
            self.finish,
            self.fail,
            self.approval_status,
            self.expire,
            self.refund,
            self.manual_match,
        ]
