"""The silent-failure gauges of docs/operations.md, refreshed by the worker
(and the database gauges by the API on each scrape): outbox, reconciliation,
approvals and disputes from the ledger; PostgreSQL reachability and the
process's pool; the task queues' backlog from Temporal (the worker's own and
each bank's)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Final

import structlog
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from temporalio.api.enums.v1 import DescribeTaskQueueMode
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import (
    DescribeTaskQueueRequest,
)
from temporalio.client import Client

from ledger.ops_health import ops_snapshot
from observability import metrics as m
from workflows.ops.schedules import polled_queues

log = structlog.get_logger(__name__)

# A check of PostgreSQL that takes longer than this counts as down.
POSTGRES_CHECK_SECONDS: Final = 3.0


def _age(since: datetime | None, now: datetime) -> float:
    return max((now - since).total_seconds(), 0.0) if since else 0.0


async def check_postgres(engine: AsyncEngine, process: str) -> bool:
    """``postgres_up`` and the pool gauges of ``process``; True if it answered."""
    pool = engine.pool
    if isinstance(pool, QueuePool):
        m.db_pool_size.labels(process).set(pool.size())
        m.db_pool_connections.labels(process, "in_use").set(pool.checkedout())
        m.db_pool_connections.labels(process, "idle").set(pool.checkedin())
        m.db_pool_connections.labels(process, "overflow").set(max(pool.overflow(), 0))
    try:
        async with asyncio.timeout(POSTGRES_CHECK_SECONDS):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
    except (SQLAlchemyError, OSError, TimeoutError) as err:
        log.warning("postgres.check_failed", process=process, error=str(err)[:200])
        m.postgres_up.labels(process).set(0)
        return False
    m.postgres_up.labels(process).set(1)
    return True


async def refresh_ledger_gauges(engine: AsyncEngine, banks: list[str]) -> None:
    if not await check_postgres(engine, "worker"):
        return
    async with engine.connect() as conn:
        snap = await ops_snapshot(conn)
    now = datetime.now(UTC)
    m.outbox_pending.set(snap.outbox_pending)
    m.outbox_oldest_pending_seconds.set(_age(snap.outbox_oldest_pending, now))
    m.outbox_dead_letters.set(snap.outbox_dead_letters)
    m.approvals_pending_oldest_seconds.set(_age(snap.approvals_oldest_pending, now))
    m.disputes_open_oldest_seconds.set(_age(snap.disputes_oldest_open, now))
    for bank, finished in snap.recon_last_success.items():
        m.reconciliation_last_success_timestamp_seconds.labels(bank).set(finished.timestamp())
    for bank in sorted(set(banks) | set(snap.recon_failed_24h)):
        m.reconciliation_runs_failed.labels(bank).set(snap.recon_failed_24h.get(bank, 0))


async def refresh_backlogs(client: Client, task_queue: str, banks: list[str]) -> None:
    """``refresh_backlog`` of every queue the worker polls: its own, the
    link recovery's and each bank's."""
    for queue in polled_queues(task_queue, banks):
        await refresh_backlog(client, queue)


async def refresh_backlog(client: Client, task_queue: str) -> None:
    """Temporal's approximate backlog of ``task_queue`` (workflow and activity
    tasks together), through the enhanced DescribeTaskQueue. (Whether the
    queue's pollers work is the heartbeat workflow's: workflows/ops/.)"""
    response = await client.workflow_service.describe_task_queue(
        DescribeTaskQueueRequest(
            namespace=client.namespace,
            task_queue=TaskQueue(name=task_queue),
            api_mode=DescribeTaskQueueMode.DESCRIBE_TASK_QUEUE_MODE_ENHANCED,
            report_stats=True,
        )
    )
    backlog = 0
    for version in response.versions_info.values():
        for info in version.types_info.values():
            backlog += info.stats.approximate_backlog_count
    m.temporal_task_queue_backlog.labels(task_queue).set(backlog)
