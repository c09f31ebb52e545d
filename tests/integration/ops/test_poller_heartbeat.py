"""The worker's poller heartbeat, from what the real Temporal server saw: a
worker polling its task queue sets it; once its pollers stop, it stops
moving (what WorkerPollersStuck watches), though the loop that reads it runs
on."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import REGISTRY

from reconciler.ops_gauges import refresh_backlog
from tests.support.stack import StackWith, eventually


def _heartbeat(task_queue: str) -> float | None:
    return REGISTRY.get_sample_value(
        "worker_poll_heartbeat_timestamp_seconds", {"task_queue": task_queue}
    )


async def test_the_heartbeat_follows_the_workers_pollers(stack_with: StackWith) -> None:
    started = time.time()
    async with stack_with(start_worker=False) as stack:
        queue = stack.settings.task_queue
        await refresh_backlog(stack.client, queue)
        assert _heartbeat(queue) is None, "no poller yet: no series"

        await stack.start_worker()

        async def polled() -> bool:
            await refresh_backlog(stack.client, queue)
            seen = _heartbeat(queue)
            return seen is not None and seen >= int(started)

        await eventually(polled, 30, "Temporal to see the worker's pollers")
        await stack.stop_worker()
        await refresh_backlog(stack.client, queue)
        stopped_at = _heartbeat(queue)
        await asyncio.sleep(1.0)  # server time passes with no worker polling
        await refresh_backlog(stack.client, queue)
        assert _heartbeat(queue) == stopped_at, "no poller: the heartbeat does not move"
