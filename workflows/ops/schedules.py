"""The ops schedules, one pair per deployment (task queue): the heartbeat of
every polled queue and the integrity checks. Applied idempotently at every
worker start (``reconciler.worker``); ids carry the task queue, so that
deployments (and tests) sharing a Temporal namespace do not share them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import structlog
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)

from workflows.common import bank_queue, recovery_queue
from workflows.ops import types as ot
from workflows.ops.workflow import HeartbeatWorkflow, IntegrityChecksWorkflow
from workflows.schedules import upsert_schedule

log = structlog.get_logger(__name__)

HEARTBEAT_PREFIX = "ops-heartbeat/"
INTEGRITY_PREFIX = "ops-integrity/"
# A heartbeat round that has not finished by then is abandoned (the next
# one asks again); the checks get an hour.
HEARTBEAT_RUN_TIMEOUT = timedelta(minutes=1)
INTEGRITY_RUN_TIMEOUT = timedelta(hours=1)


def schedule_ids(task_queue: str) -> tuple[str, str]:
    return f"{HEARTBEAT_PREFIX}{task_queue}", f"{INTEGRITY_PREFIX}{task_queue}"


def polled_queues(task_queue: str, banks: Sequence[str]) -> list[str]:
    """Every task queue a worker of this deployment polls."""
    return [
        task_queue,
        recovery_queue(task_queue),
        *(bank_queue(task_queue, bank) for bank in sorted(set(banks))),
    ]


def _every(seconds: float) -> ScheduleSpec:
    return ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(seconds=seconds))])


def build_ops_schedules(
    task_queue: str, banks: Sequence[str], heartbeat_seconds: float, integrity_seconds: float
) -> dict[str, Schedule]:
    heartbeat_id, integrity_id = schedule_ids(task_queue)
    # A round missed while one runs, or while Temporal was away, is skipped:
    # only the newest result matters to either.
    skip = SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(minutes=1))
    return {
        heartbeat_id: Schedule(
            action=ScheduleActionStartWorkflow(
                HeartbeatWorkflow.run,
                ot.HeartbeatInput(polled_queues(task_queue, banks)),
                id=heartbeat_id,
                task_queue=task_queue,
                execution_timeout=HEARTBEAT_RUN_TIMEOUT,
            ),
            spec=_every(heartbeat_seconds),
            policy=skip,
        ),
        integrity_id: Schedule(
            action=ScheduleActionStartWorkflow(
                IntegrityChecksWorkflow.run,
                id=integrity_id,
                task_queue=task_queue,
                execution_timeout=INTEGRITY_RUN_TIMEOUT,
            ),
            spec=_every(integrity_seconds),
            policy=skip,
        ),
    }


async def apply_ops_schedules(
    client: Client,
    task_queue: str,
    banks: Sequence[str],
    heartbeat_seconds: float,
    integrity_seconds: float,
) -> list[tuple[str, str]]:
    """Create or update both schedules; (schedule id, what was done). A newly
    created integrity schedule runs the checks at once, as a fresh
    deployment wants to know where it stands."""
    wanted = build_ops_schedules(task_queue, banks, heartbeat_seconds, integrity_seconds)
    _, integrity_id = schedule_ids(task_queue)
    done = [
        (sid, await upsert_schedule(client, sid, s, trigger_immediately=sid == integrity_id))
        for sid, s in wanted.items()
    ]
    log.info("ops.schedules_applied", schedules=done)
    return done
