"""The ops activities: the heartbeat, which every task queue's worker runs
(``reconciler.worker``), and the two integrity checks (the main queue's)."""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity

from ledger.receipts.signing import ReceiptVerifier
from observability import metrics as m
from workflows.ops import integrity
from workflows.ops.types import CheckResult, Tick


class HeartbeatActivities:
    @activity.defn(name="ops.heartbeat")
    async def heartbeat(self, inp: Tick) -> Tick:
        """This worker took a task of its queue: its pollers work. Labelled
        with the queue the task came from, so only queues a worker polls
        (the configured ones) ever become label values."""
        queue = activity.info().task_queue
        m.worker_poll_heartbeat_timestamp_seconds.labels(queue).set(time.time())
        return inp

    def all(self) -> list[Callable[..., object]]:
        return [self.heartbeat]


class IntegrityActivities:
    def __init__(self, engine: AsyncEngine, verifier: ReceiptVerifier, audit_key: bytes) -> None:
        self._engine = engine
        self._verifier = verifier
        self._key = audit_key

    @activity.defn(name="ops.verify_receipts")
    async def verify_receipts(self, inp: Tick) -> CheckResult:
        problems = await integrity.receipts_problems(self._engine, self._verifier)
        integrity.export("receipts", problems)
        return CheckResult("receipts", problems)

    @activity.defn(name="ops.verify_audit")
    async def verify_audit(self, inp: Tick) -> CheckResult:
        problems = await integrity.audit_problems(self._engine, self._key)
        integrity.export("audit", problems)
        return CheckResult("audit", problems)

    def all(self) -> list[Callable[..., object]]:
        return [self.verify_receipts, self.verify_audit]
