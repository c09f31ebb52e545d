"""Temporal Schedules, created or updated idempotently (every worker start
applies them): shared by reconciliation's and the ops schedules."""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleAlreadyRunningError,
    ScheduleUpdate,
    ScheduleUpdateInput,
)


async def upsert_schedule(
    client: Client, schedule_id: str, schedule: Schedule, *, trigger_immediately: bool = False
) -> str:
    """Create ``schedule_id`` (run it once now if ``trigger_immediately``),
    or replace the existing one's definition; "created" or "updated"."""
    try:
        await client.create_schedule(schedule_id, schedule, trigger_immediately=trigger_immediately)
        return "created"
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(replace)
        return "updated"
