"""The heartbeat that proves the pollers work: the ``OpsHeartbeat`` workflow,
started by its Temporal Schedule, runs one activity on each task queue the
worker polls (its own and each bank's), and that activity sets the queue's
``worker_poll_heartbeat_timestamp_seconds``. A queue whose pollers do not
work (here: a bank's queue no worker polls) never runs it, so its gauge
stays unset or stale, what WorkerPollersStuck watches, although the worker
process runs on. The schedules are applied idempotently."""

from __future__ import annotations

import time
from datetime import timedelta

from prometheus_client import REGISTRY
from temporalio.client import ScheduleOverlapPolicy

from tests.support.stack import SagaStack, eventually
from workflows.common import bank_queue
from workflows.ops import types as ot
from workflows.ops.schedules import apply_ops_schedules, polled_queues, schedule_ids
from workflows.ops.workflow import HEARTBEAT_QUEUES_MAX, HeartbeatWorkflow

GHOST_BANK = "nopollerbank"


def _heartbeat(task_queue: str) -> float | None:
    return REGISTRY.get_sample_value(
        "worker_poll_heartbeat_timestamp_seconds", {"task_queue": task_queue}
    )


async def test_the_heartbeat_runs_on_every_polled_queue_only(stack: SagaStack) -> None:
    queue = stack.settings.task_queue
    banks = list(stack.settings.banks)
    polled = polled_queues(queue, banks)
    ghost = bank_queue(queue, GHOST_BANK)
    started = time.time()
    ids = schedule_ids(queue)
    applied = await apply_ops_schedules(stack.client, queue, [*banks, GHOST_BANK], 30, 3600)
    try:
        assert applied == [(ids[0], "created"), (ids[1], "created")]
        # Every worker start applies them again: the same two, updated.
        again = await apply_ops_schedules(stack.client, queue, [*banks, GHOST_BANK], 30, 3600)
        assert again == [(ids[0], "updated"), (ids[1], "updated")]
        heartbeat = stack.client.get_schedule_handle(ids[0])
        await heartbeat.trigger()

        def beaten() -> bool:
            return all((_heartbeat(q) or 0.0) >= started for q in polled)

        await eventually(beaten, 30, f"a heartbeat on each of {polled}")
        assert _heartbeat(ghost) is None, "no worker polls it: no heartbeat"

        schedule = (await heartbeat.describe()).schedule
        assert [i.every for i in schedule.spec.intervals] == [timedelta(seconds=30)]
        assert schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
    finally:
        for schedule_id in ids:
            await stack.client.get_schedule_handle(schedule_id).delete()


async def test_a_forged_heartbeat_run_is_bounded_and_labels_nothing(stack: SagaStack) -> None:
    """Anyone who can reach Temporal can start the workflow with any input:
    a run asks at most HEARTBEAT_QUEUES_MAX queues, and a queue no worker
    polls never becomes a label value (the gauge is labelled by where the
    activity really ran)."""
    queue = stack.settings.task_queue
    forged = [f"{queue}.forged.{i}" for i in range(HEARTBEAT_QUEUES_MAX + 10)]
    handle = await stack.client.start_workflow(
        HeartbeatWorkflow.run,
        ot.HeartbeatInput(forged),
        id=f"ops-heartbeat-forged/{queue}",
        task_queue=queue,
    )
    try:

        async def scheduled() -> int:
            return len((await handle.describe()).raw_description.pending_activities)

        await eventually(scheduled, 30, "the run to schedule its heartbeats")
        assert await scheduled() == HEARTBEAT_QUEUES_MAX
        assert all(_heartbeat(q) is None for q in forged)
    finally:
        await handle.terminate("test done")
