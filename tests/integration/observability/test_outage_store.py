"""PostgresOutageStore on the real embedded PostgreSQL: the shared store
contract, the schema's guarantees, and the prober writing through it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core.errors import ValidationError
from ledger.outages import PostgresOutageStore, bank_outages
from observability.outages import OutageStore
from observability.prober import LinkProber, ProberConfig
from tests.unit.observability.outage_store_contract import CONTRACT, T0


@pytest.fixture
def store(engine: AsyncEngine) -> PostgresOutageStore:
    return PostgresOutageStore(engine)


@pytest.mark.parametrize("case", CONTRACT, ids=lambda case: case.__name__)
async def test_postgres_store(
    store: PostgresOutageStore, case: Callable[[OutageStore], Awaitable[None]]
) -> None:
    await case(store)


async def test_schema_allows_one_open_outage_per_bank(
    store: PostgresOutageStore, engine: AsyncEngine
) -> None:
    await store.open_outage("sgbank", T0, "x")
    with pytest.raises(IntegrityError, match="bank_outages_one_open_per_bank"):
        async with engine.begin() as conn:
            await conn.execute(insert(bank_outages).values(bank="sgbank", started_at=T0, cause=""))
    await store.close_outage("sgbank", T0 + timedelta(seconds=1))
    async with engine.begin() as conn:
        await conn.execute(insert(bank_outages).values(bank="sgbank", started_at=T0, cause=""))


async def test_schema_refuses_an_end_before_the_start(engine: AsyncEngine) -> None:
    with pytest.raises(IntegrityError, match="bank_outages_ends_after_start"):
        async with engine.begin() as conn:
            await conn.execute(
                insert(bank_outages).values(
                    bank="sgbank", started_at=T0, ended_at=T0 - timedelta(seconds=1), cause=""
                )
            )


async def test_duration_is_computed_by_the_database(
    store: PostgresOutageStore, engine: AsyncEngine
) -> None:
    opened = await store.open_outage("hnbank", T0, "x")
    async with engine.connect() as conn:
        column = bank_outages.c.duration_seconds
        query = select(column).where(bank_outages.c.id == opened.id)
        assert (await conn.execute(query)).scalar_one() is None
        await conn.rollback()
    await store.close_outage("hnbank", T0 + timedelta(minutes=61, seconds=30))
    async with engine.connect() as conn:
        assert (await conn.execute(query)).scalar_one() == 3690.0


async def test_concurrent_opens_make_one_outage(store: PostgresOutageStore) -> None:
    opened = await asyncio.gather(
        *(store.open_outage("sgbank", T0 + timedelta(seconds=i), f"try {i}") for i in range(8))
    )
    assert len({o.id for o in opened}) == 1
    assert len(await store.recent()) == 1


async def test_overlapping_and_get(store: PostgresOutageStore) -> None:
    await store.open_outage("sgbank", T0, "early")
    await store.close_outage("sgbank", T0 + timedelta(minutes=10))
    late = await store.open_outage("sgbank", T0 + timedelta(hours=2), "late, still open")
    await store.open_outage("hnbank", T0 + timedelta(minutes=5), "other bank")

    window = await store.overlapping(T0 + timedelta(minutes=9), T0 + timedelta(minutes=11))
    assert [o.cause for o in window] == ["early", "other bank"]
    later = await store.overlapping(T0 + timedelta(hours=3), T0 + timedelta(hours=4), bank="sgbank")
    assert later == [late]
    assert await store.get(late.id) == late
    assert await store.get(10**9) is None
    with pytest.raises(ValidationError, match="until"):
        await store.overlapping(T0, T0)


async def test_validation_errors_name_the_field(store: PostgresOutageStore) -> None:
    with pytest.raises(ValidationError) as err:
        await store.recent(0)
    assert err.value.field == "limit"
    with pytest.raises(ValidationError) as err:
        await store.open_outage("sgbank", T0, "x" * 1001)
    assert err.value.field == "cause"


async def test_times_are_stored_as_utc_instants(
    store: PostgresOutageStore, engine: AsyncEngine
) -> None:
    opened = await store.open_outage("sgbank", T0, "x")
    async with engine.connect() as conn:
        await conn.execute(text("SET TIME ZONE 'Asia/Ho_Chi_Minh'"))
        query = text("SELECT started_at AT TIME ZONE 'UTC' FROM bank_outages WHERE id = :id")
        stored = (await conn.execute(query, {"id": opened.id})).scalar_one()
    assert stored == T0.replace(tzinfo=None)


async def test_prober_records_outages_and_a_restart_resumes_them(
    store: PostgresOutageStore,
) -> None:
    now = [T0]
    link_ok = [False]

    async def health() -> bool:
        return link_ok[0]

    def clock() -> datetime:
        return now[0]

    config = ProberConfig(failures_to_down=2, successes_to_up=2)

    async def run_rounds(prober: LinkProber, n: int) -> None:
        for _ in range(n):
            await prober.probe_once()
            now[0] += timedelta(seconds=5)

    recovered: list[str] = []

    async def on_recovery(bank: str) -> None:
        recovered.append(bank)

    first = LinkProber(
        {"sgbank": health}, store, config=config, clock=clock, heartbeat_component=None
    )
    await run_rounds(first, 3)
    [opened] = await store.open_outages()
    assert opened.started_at == T0

    # The prober restarts while the bank is still down.
    second = LinkProber(
        {"sgbank": health},
        store,
        on_recovery=on_recovery,
        config=config,
        clock=clock,
        heartbeat_component=None,
    )
    await run_rounds(second, 3)
    link_ok[0] = True
    back_at = now[0]
    await run_rounds(second, 2)

    [closed] = await store.recent()
    assert closed.id == opened.id
    assert (closed.started_at, closed.ended_at) == (T0, back_at)
    assert recovered == ["sgbank"]
