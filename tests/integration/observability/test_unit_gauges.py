"""The per-unit gauges from a real ledger: payments of the last hour by
outcome, receipts, in doubt, open disputes, by unit code; a label set that
is gone (nothing in doubt any more) stops being exported. Two workers on one
ledger: one query a minute between them, one exporter, and the other takes
over when the leader goes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Gauge
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ledger.receipts.signing import ReceiptSigner
from reconciler.unit_gauges import UnitGauges
from tests.support.receipts import add_fine, add_payment, issue, paid_fine
from tests.support.stack import eventually

UNIT_A = "DCSGTS1CAQHK"  # the code of tests.support.receipts.UNIT
UNIT_B = "Phòng CSGT Hà Nội"
# The sessions holding an advisory lock in this test's database.
LEADERS = (
    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND database = "
    "(SELECT oid FROM pg_database WHERE datname = current_database())"
)
GAUGES = {
    "payments": ("unit_payments_last_hour", ["unit", "outcome"]),
    "receipts": ("unit_receipts_issued", ["unit"]),
    "in_doubt": ("unit_payments_in_doubt", ["unit"]),
    "disputes": ("unit_disputes_open", ["unit"]),
}


def _value(metric: str, registry: CollectorRegistry = REGISTRY, **labels: str) -> float | None:
    return registry.get_sample_value(metric, labels)


async def test_unit_gauges_follow_the_ledger(engine: AsyncEngine) -> None:
    gauges = UnitGauges()
    try:
        await _follow_the_ledger(engine, gauges)
    finally:
        await gauges.close()


async def _follow_the_ledger(engine: AsyncEngine, gauges: UnitGauges) -> None:
    for _ in range(2):
        await issue(engine, await paid_fine(engine), ReceiptSigner.generate())
    async with engine.begin() as conn:
        fine_id, _ = await add_fine(conn, unit=UNIT_B)
        doubtful = await add_payment(conn, fine_id, status="verifying", settles=False)
    assert await gauges.refresh(engine)
    assert _value("unit_payments_last_hour", unit=UNIT_A, outcome="succeeded") == 2
    assert _value("unit_receipts_issued", unit=UNIT_A) == 2
    assert _value("unit_payments_in_doubt", unit="PCSGTHN") == 1
    assert _value("unit_payments_in_doubt", unit=UNIT_A) is None

    async with engine.begin() as conn:
        await conn.execute(
            text("UPDATE payments SET status = 'declined' WHERE id = :id"), {"id": doubtful}
        )
    assert await gauges.refresh(engine)
    assert _value("unit_payments_in_doubt", unit="PCSGTHN") is None
    assert _value("unit_payments_last_hour", unit="PCSGTHN", outcome="declined") == 1


class _Worker:
    """What one worker process has: its own engine (pool), its own metrics
    registry, and a count of the per-unit queries its engine ran."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.registry = CollectorRegistry()
        self.gauges = UnitGauges(
            {
                kind: Gauge(name, name, labels, registry=self.registry)
                for kind, (name, labels) in GAUGES.items()
            }
        )
        self.queries = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: Any) -> None:
        statement = args[2]
        self.queries += "FROM receipt_series" in statement

    async def tick(self) -> bool:
        return await self.gauges.refresh(self.engine)

    def receipts(self) -> float | None:
        return _value("unit_receipts_issued", self.registry, unit=UNIT_A)

    def exported(self) -> list[str]:
        return [s.name for m in self.registry.collect() for s in m.samples]


@asynccontextmanager
async def _workers(db_url: str, count: int) -> AsyncIterator[list[_Worker]]:
    async with AsyncExitStack() as stack:
        workers = []
        for _ in range(count):
            engine = create_async_engine(db_url, pool_size=2, max_overflow=0)
            stack.push_async_callback(engine.dispose)
            worker = _Worker(engine)
            stack.push_async_callback(worker.gauges.close)
            workers.append(worker)
        yield workers


async def test_two_workers_run_one_query_a_minute_and_one_exports(
    engine: AsyncEngine, owner_engine: AsyncEngine, db_url: str
) -> None:
    await issue(engine, await paid_fine(engine), ReceiptSigner.generate())
    async with _workers(db_url, 2) as (first, second):
        # Three minutes, each worker ticking once a minute in either order.
        for order in ((first, second), (second, first), (first, second)):
            assert {w: await w.tick() for w in order} == {first: True, second: False}
        assert (first.queries, second.queries) == (3, 0)
        assert first.receipts() == 1
        assert second.exported() == []  # nothing, not a stale copy

        async def no_leader() -> bool:
            async with owner_engine.connect() as conn:
                return not (await conn.execute(text(LEADERS))).all()

        # The leader stops: the other leads from its next tick (once the
        # server has ended the closed session, which it does on its own time).
        await first.gauges.close()
        await eventually(no_leader, 10, "the closed session to let go of its lock")
        assert [await second.tick(), await first.tick()] == [True, False]
        assert (first.queries, second.queries) == (3, 1)
        assert second.receipts() == 1
        assert first.exported() == []

        # The database ends the leader's session: its next tick fails and
        # drops its values; the next try, by either, leads again.
        async with owner_engine.begin() as conn:
            ended = await conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM ({LEADERS}) l"))
            assert ended.scalars().all() == [True]
        with pytest.raises(OperationalError):
            await second.tick()
        assert second.exported() == []
        await eventually(no_leader, 10, "the ended session to let go of its lock")
        assert [await first.tick(), await second.tick()] == [True, False]
        assert first.receipts() == 1
