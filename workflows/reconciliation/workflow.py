"""ReconciliationWorkflow: one bank's statement of one business date.

Deterministic code only (the I/O is in ``workflows.reconciliation.activities``):

1. ``recon.begin``: the run row (created here when a schedule started us);
2. ``recon.load``: fetch the statement from the bank (or read the uploaded
   file), COPY it into PostgreSQL and match and classify it set-based, open
   discrepancies: one transaction;
3. ``recon.act``: the saga steps of the lines that pay a fine (signal the
   payment's workflow, or start an external-debit workflow), then those of
   duplicates once their fine is paid (they are refunded, never receipted);
4. ``recon.finish``: close what resolved itself, store the totals.

Ids: ``reconciliation/<bank>/<date>`` (API/CLI), ``reconciliation-upload/<id>``
(uploads), ``reconciliation/<bank>/eod|intraday-<time>`` (schedules).
"""

from __future__ import annotations

from datetime import date, timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.business_time import VIETNAM_UTC_OFFSET
    from workflows.common import LEDGER_STEP, StepPolicy, backoff, local, remote
    from workflows.reconciliation import types as rt
    from workflows.reconciliation.activities import ReconciliationActivities as Steps

WORKFLOW_ID_PREFIX = "reconciliation/"
UPLOAD_WORKFLOW_ID_PREFIX = "reconciliation-upload/"
# Vietnam has kept UTC+7 without daylight saving since 1975; a fixed offset
# keeps the workflow free of time zone files.

# Loading: a bad or missing statement will not get better by retrying now
# (its errors say so themselves: ``workflows.interceptors``); a bank that does
# not answer may, within the half hour. A million-line statement loads in
# seconds; the bound is for a slow bank.
LOAD = StepPolicy(
    timedelta(minutes=15),
    timedelta(minutes=30),
    backoff(timedelta(seconds=5), timedelta(minutes=2)),
)
ACT = StepPolicy(
    timedelta(minutes=5),
    timedelta(minutes=30),
    backoff(timedelta(seconds=1), timedelta(seconds=30)),
)
ACT_BATCH = 200
ACT_BATCHES_MAX = 500  # 100,000 steps per run; the rest waits for the next run
DUPLICATE_WAITS_MAX = 30
DUPLICATE_WAIT = timedelta(seconds=2)


def workflow_id_for(bank: str, statement_date: date | str) -> str:
    return f"{WORKFLOW_ID_PREFIX}{bank}/{statement_date}"


def upload_workflow_id_for(reconciliation_id: int) -> str:
    return f"{UPLOAD_WORKFLOW_ID_PREFIX}{reconciliation_id}"


def _failure_message(err: ActivityError) -> str:
    cause = err.cause
    if isinstance(cause, ApplicationError):
        return f"{cause.type or 'error'}: {cause.message}"
    return str(cause or err)


@workflow.defn(name="Reconciliation")
class ReconciliationWorkflow:
    def __init__(self) -> None:
        self._state = "starting"

    @workflow.query(name="state")
    def state(self) -> str:
        return self._state

    @workflow.run
    async def run(self, inp: rt.ReconciliationInput) -> rt.ReconciliationResult:
        statement_date = (
            inp.statement_date
            or (
                (workflow.now() + VIETNAM_UTC_OFFSET).date() + timedelta(days=inp.day_offset_days)
            ).isoformat()
        )
        # The database steps run locally (one marker each, no round trip);
        # loading and the saga steps remote: long, and worth seeing.
        run = await local(
            Steps.begin,
            rt.BeginInput(inp.bank, str(statement_date), inp.reconciliation_id, inp.trigger),
            LEDGER_STEP,
        )
        self._state = "loading"
        try:
            await remote(Steps.load, run, LOAD)
        except ActivityError as err:
            message = _failure_message(err)
            self._state = "failed"
            await local(Steps.fail, rt.FailInput(run.reconciliation_id, message), LEDGER_STEP)
            return rt.ReconciliationResult(
                run.reconciliation_id,
                "failed",
                bank=run.bank,
                statement_date=run.statement_date,
                error=message,
            )
        self._state = "healing"
        await self._act(run.bank, rt.ActPhase.HEAL)
        self._state = "refunding duplicates"
        await self._act(run.bank, rt.ActPhase.DUPLICATE)
        self._state = "finishing"
        result = await local(Steps.finish, run, LEDGER_STEP)
        self._state = result.status
        return result

    async def _act(self, bank: str, phase: rt.ActPhase) -> None:
        """Run the phase's saga steps in batches. Duplicates wait (durably, a
        bounded time) for the fine they duplicate to be paid; what is left is
        taken up by the next run."""
        waits = 0
        for _ in range(ACT_BATCHES_MAX):
            result = await remote(Steps.act, rt.ActInput(bank, phase, ACT_BATCH), ACT)
            if result.remaining == 0:
                return
            if result.done == 0:
                if phase == rt.ActPhase.HEAL or waits >= DUPLICATE_WAITS_MAX:
                    return  # failing steps: kept for the next run
                waits += 1
                await workflow.sleep(DUPLICATE_WAIT)
