"""How the rest of the service starts reconciliations: on request (API, CLI),
from an uploaded statement file, and on Temporal Schedules per bank."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    WorkflowExecutionStatus,
)
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from bank_adapters.statements import StatementLimits, parse_statement
from bank_adapters.types import StatementFormat
from domain.business_time import VIETNAM_TZ_NAME
from ledger.core.errors import ValidationError
from ledger.reconciliation import runs as recon
from ledger.reconciliation.claims import audit_upload
from workflows.payment.client import SagaConfig
from workflows.reconciliation import types as rt
from workflows.reconciliation.workflow import (
    WORKFLOW_ID_PREFIX,
    ReconciliationWorkflow,
    upload_workflow_id_for,
    workflow_id_for,
)
from workflows.schedules import upsert_schedule

log = structlog.get_logger(__name__)

START_ATTEMPTS: Final = 25
START_RETRY_SECONDS: Final = 0.2
_HH_MM_RE: Final = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")


class WorkflowServiceUnavailableError(Exception):
    """The reconciliation is recorded but its workflow could not be started."""


async def _workflow_running(client: Client, workflow_id: str) -> bool:
    try:
        description = await client.get_workflow_handle(workflow_id).describe()
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return description.status == WorkflowExecutionStatus.RUNNING


async def _start(
    client: Client, engine: AsyncEngine, config: SagaConfig, run: recon.Run, workflow_id: str
) -> None:
    for _ in range(START_ATTEMPTS):
        try:
            await _start_once(client, config, run, workflow_id)
            return
        except WorkflowAlreadyStartedError:
            # The previous reconciliation of this statement has stored its
            # result and is closing its workflow: give it a moment.
            await asyncio.sleep(START_RETRY_SECONDS)
        except (RPCError, OSError) as err:
            await _give_up(engine, run, f"the workflow service is unavailable: {err}")
            raise WorkflowServiceUnavailableError(str(err)) from err
    reason = "another reconciliation of this statement is still finishing; try again"
    await _give_up(engine, run, reason)
    raise WorkflowServiceUnavailableError(reason)


async def _give_up(engine: AsyncEngine, run: recon.Run, reason: str) -> None:
    async with engine.begin() as conn:
        await recon.fail_run(conn, run.id, reason, datetime.now(UTC))


async def _start_once(client: Client, config: SagaConfig, run: recon.Run, workflow_id: str) -> None:
    await client.start_workflow(
        ReconciliationWorkflow.run,
        rt.ReconciliationInput(
            bank=run.bank,
            statement_date=run.statement_date.isoformat(),
            reconciliation_id=run.id,
            trigger=run.trigger,
        ),
        id=workflow_id,
        task_queue=config.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
    )


async def start_reconciliation(
    client: Client,
    engine: AsyncEngine,
    config: SagaConfig,
    bank: str,
    statement_date: date,
    *,
    trigger: str,
    requested_by: str,
    now: datetime,
) -> tuple[recon.Run, bool]:
    """Reconcile ``bank``'s statement of ``statement_date`` (fetched from the
    bank), or join the reconciliation of it already running. Returns the run
    and whether this call started it."""
    workflow_id = workflow_id_for(bank, statement_date)
    for _ in range(2):
        async with engine.begin() as conn:
            run, created = await recon.create_run(
                conn,
                bank=bank,
                statement_date=statement_date,
                source="fetch",
                trigger=trigger,
                requested_by=requested_by,
                now=now,
                workflow_id=workflow_id,
            )
        if created:
            await _start(client, engine, config, run, workflow_id)
            return run, True
        if await _workflow_running(client, workflow_id):
            return run, False
        # Its row says running but its workflow is gone: close it, start anew.
        async with engine.begin() as conn:
            await recon.fail_run(conn, run.id, "its workflow is no longer running", now)
    raise WorkflowServiceUnavailableError(f"could not start {workflow_id}")


@dataclass(frozen=True)
class UploadOutcome:
    run: recon.Run
    statement_import: recon.StatementImport
    lines: int
    # The same file for the same bank and date was imported before: loading
    # it again adds nothing (the run still reports on the date).
    already_imported: bool


async def import_statement(
    client: Client,
    engine: AsyncEngine,
    config: SagaConfig,
    *,
    bank: str,
    statement_date: date,
    fmt: StatementFormat,
    data: bytes,
    trigger: str,
    requested_by: str,
    limits: StatementLimits,
    now: datetime,
) -> UploadOutcome:
    """Reconcile an uploaded statement file: a claim, whose lines that would
    move money wait for the bank's word (``ledger.reconciliation.claims``).
    The file is parsed first: a bad one raises ``StatementParseError``
    (naming the line or element) and nothing is stored. The upload is in the
    audit log with ``requested_by`` (the uploader) and the file's SHA-256."""
    if len(data) > limits.bytes_max:
        raise ValidationError("file", f"is larger than {limits.bytes_max} bytes")
    parsed = await asyncio.to_thread(parse_statement, data, fmt, limits=limits)
    digest = hashlib.sha256(data).hexdigest()
    async with engine.begin() as conn:
        statement_import, new = await recon.register_import(
            conn,
            bank=bank,
            statement_date=statement_date,
            source="upload",
            fmt=fmt.value,
            content_sha256=digest,
            lines=len(parsed.lines),
            now=now,
            data=data,
            uploaded_by=requested_by,
        )
        run, _ = await recon.create_run(
            conn,
            bank=bank,
            statement_date=statement_date,
            source="upload",
            trigger=trigger,
            requested_by=requested_by,
            now=now,
            import_id=statement_import.id,
        )
        workflow_id = upload_workflow_id_for(run.id)
        await recon.set_workflow(conn, run.id, workflow_id)
        run = replace(run, workflow_id=workflow_id)
        await audit_upload(
            conn, statement_import, run, requested_by, already_imported=not new, now=now
        )
    await _start(client, engine, config, run, workflow_id)
    return UploadOutcome(
        run=run,
        statement_import=statement_import,
        lines=len(parsed.lines),
        already_imported=not new,
    )


# --- schedules -------------------------------------------------------------------


@dataclass(frozen=True)
class ScheduleTimes:
    """When each bank is reconciled, in Vietnam time."""

    end_of_day: str = "23:30"  # HH:MM: the day's statement
    end_of_day_offset_days: int = 0  # -1: reconcile yesterday's at that time
    intraday_minutes: int = 15  # today's statement every N minutes; 0: never

    def __post_init__(self) -> None:
        if not _HH_MM_RE.fullmatch(self.end_of_day):
            raise ValueError(f"end_of_day must be HH:MM, got {self.end_of_day!r}")
        if not -7 <= self.end_of_day_offset_days <= 0:
            raise ValueError("end_of_day_offset_days must be in -7..0")
        if not 0 <= self.intraday_minutes <= 24 * 60:
            raise ValueError("intraday_minutes must be in 0..1440")


def schedule_ids(bank: str) -> tuple[str, str]:
    return f"reconciliation-eod/{bank}", f"reconciliation-intraday/{bank}"


def _action(bank: str, kind: str, offset_days: int, task_queue: str) -> ScheduleActionStartWorkflow:
    return ScheduleActionStartWorkflow(
        ReconciliationWorkflow.run,
        rt.ReconciliationInput(bank=bank, day_offset_days=offset_days, trigger="schedule"),
        id=f"{WORKFLOW_ID_PREFIX}{bank}/{kind}",
        task_queue=task_queue,
        execution_timeout=timedelta(hours=6),
    )


def build_schedules(bank: str, task_queue: str, times: ScheduleTimes) -> dict[str, Schedule]:
    """The end-of-day schedule and, if enabled, the intraday one."""
    eod_id, intraday_id = schedule_ids(bank)
    hour, minute = (int(part) for part in times.end_of_day.split(":"))
    schedules = {
        eod_id: Schedule(
            action=_action(bank, "eod", times.end_of_day_offset_days, task_queue),
            spec=ScheduleSpec(
                calendars=[
                    ScheduleCalendarSpec(
                        hour=[ScheduleRange(hour)],
                        minute=[ScheduleRange(minute)],
                        comment=f"end of day {times.end_of_day} Vietnam time",
                    )
                ],
                time_zone_name=VIETNAM_TZ_NAME,
            ),
            # A worker down at 23:30 still reconciles when it is back that night.
            policy=SchedulePolicy(
                overlap=ScheduleOverlapPolicy.BUFFER_ONE, catchup_window=timedelta(hours=6)
            ),
        )
    }
    if times.intraday_minutes > 0:
        schedules[intraday_id] = Schedule(
            action=_action(bank, "intraday", 0, task_queue),
            spec=ScheduleSpec(
                intervals=[ScheduleIntervalSpec(every=timedelta(minutes=times.intraday_minutes))],
                time_zone_name=VIETNAM_TZ_NAME,
            ),
            # A tick missed while one runs (or while down) is just skipped.
            policy=SchedulePolicy(
                overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(minutes=1)
            ),
        )
    return schedules


async def apply_schedules(
    client: Client, task_queue: str, banks: Sequence[str], times: ScheduleTimes
) -> list[tuple[str, str]]:
    """Create or update every bank's schedules (idempotent: run at every
    worker start); an intraday schedule that is switched off is deleted.
    Returns (schedule id, what was done)."""
    done: list[tuple[str, str]] = []
    for bank in banks:
        wanted = build_schedules(bank, task_queue, times)
        for schedule_id, schedule in wanted.items():
            done.append((schedule_id, await upsert_schedule(client, schedule_id, schedule)))
        for schedule_id in set(schedule_ids(bank)) - set(wanted):
            try:
                await client.get_schedule_handle(schedule_id).delete()
                done.append((schedule_id, "deleted"))
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
    log.info("reconciliation.schedules_applied", schedules=done)
    return done


async def describe_schedules(client: Client, banks: Sequence[str]) -> list[dict[str, Any]]:
    """Each bank's schedules as they are on the server (missing ones too)."""
    out: list[dict[str, Any]] = []
    for bank in banks:
        for schedule_id in schedule_ids(bank):
            try:
                description = await client.get_schedule_handle(schedule_id).describe()
            except RPCError as err:
                if err.status != RPCStatusCode.NOT_FOUND:
                    raise
                out.append({"id": schedule_id, "bank": bank, "exists": False})
                continue
            spec = description.schedule.spec
            out.append(
                {
                    "id": schedule_id,
                    "bank": bank,
                    "exists": True,
                    "paused": description.schedule.state.paused,
                    "calendars": [c.comment or str(c) for c in spec.calendars],
                    "every_minutes": [i.every.total_seconds() / 60 for i in spec.intervals],
                    "time_zone": spec.time_zone_name,
                    "next_runs": [t.isoformat() for t in description.info.next_action_times[:3]],
                    "recent_runs": len(description.info.recent_actions),
                }
            )
    return out
