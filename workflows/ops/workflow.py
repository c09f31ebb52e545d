"""The ops workflows, each started by a Temporal Schedule
(``workflows.ops.schedules``); deterministic, all I/O in
``workflows.ops.activities``.

``OpsHeartbeat`` runs one ``ops.heartbeat`` on each task queue the worker
polls: the worker's own and each bank's. A queue whose worker's pollers are
wedged never runs its heartbeat, so its ``worker_poll_heartbeat_timestamp_
seconds`` goes stale and WorkerPollersStuck fires, although the worker's
process answers scrapes and its loops run on. One queue's silence does not
hold up the others' heartbeats: each is awaited on its own.

``IntegrityChecks`` runs ``receipts verify`` and ``audit verify`` once, each
an activity that exports its result.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from workflows.common import StepPolicy, backoff, remote
    from workflows.ops import types as ot
    from workflows.ops.activities import HeartbeatActivities, IntegrityActivities

# A heartbeat not taken within this is a silent queue for this round; the
# next round (the schedule's interval, 30 s by default) asks again. One
# attempt: a retry would only blur when the pollers last worked.
HEARTBEAT = StepPolicy(
    start_to_close=timedelta(seconds=10),
    schedule_to_close=timedelta(seconds=20),
    retry=RetryPolicy(maximum_attempts=1),
)
# The checks read the whole ledger; a failed attempt (the database away) is
# retried a few times, then the round fails and IntegrityCheckNotRun watches.
CHECK = StepPolicy(
    start_to_close=timedelta(minutes=10),
    schedule_to_close=timedelta(minutes=30),
    retry=backoff(timedelta(seconds=10), timedelta(minutes=2), attempts_max=3),
)
# Bounds what a start with a forged input could make one run do.
HEARTBEAT_QUEUES_MAX = 64


@workflow.defn(name="OpsHeartbeat")
class HeartbeatWorkflow:
    @workflow.run
    async def run(self, inp: ot.HeartbeatInput) -> ot.HeartbeatReport:
        queues = sorted(set(inp.task_queues))[:HEARTBEAT_QUEUES_MAX]
        answered = await asyncio.gather(*(self._beat(queue) for queue in queues))
        report = ot.HeartbeatReport(
            answered=[q for q, ok in zip(queues, answered, strict=True) if ok],
            silent=[q for q, ok in zip(queues, answered, strict=True) if not ok],
        )
        if report.silent:
            workflow.logger.warning("ops.heartbeat_silent queues=%s", report.silent)
        return report

    async def _beat(self, queue: str) -> bool:
        try:
            await remote(HeartbeatActivities.heartbeat, ot.Tick(), HEARTBEAT, task_queue=queue)
        except ActivityError:
            return False
        return True


@workflow.defn(name="IntegrityChecks")
class IntegrityChecksWorkflow:
    @workflow.run
    async def run(self) -> ot.IntegrityReport:
        receipts = await remote(IntegrityActivities.verify_receipts, ot.Tick(), CHECK)
        audit = await remote(IntegrityActivities.verify_audit, ot.Tick(), CHECK)
        return ot.IntegrityReport([receipts, audit])
