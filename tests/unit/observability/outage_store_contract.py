"""Behaviour every ``OutageStore`` shares, run against the in-memory store
(unit) and the PostgreSQL store (integration)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ledger.core.errors import ValidationError
from observability.outages import OutageStore

T0 = datetime(2025, 3, 3, 1, 30, tzinfo=UTC)
ICT = timezone(timedelta(hours=7))
# Bad input, as each store says it: the in-memory one a ValueError, the
# PostgreSQL one the ledger's ValidationError naming the field. Not any
# Exception: a TypeError or a database error mentioning "limit" is a bug.
BAD_INPUT = (ValueError, ValidationError)


async def opening_then_closing_records_start_end_and_cause(store: OutageStore) -> None:
    opened = await store.open_outage("sgbank", T0, "connection refused")
    assert opened.is_open
    assert (opened.bank, opened.started_at, opened.cause) == ("sgbank", T0, "connection refused")
    assert await store.open_outages() == [opened]

    closed = await store.close_outage("sgbank", T0 + timedelta(seconds=95))
    assert closed is not None
    assert closed.id == opened.id
    assert closed.ended_at == T0 + timedelta(seconds=95)
    assert closed.duration_seconds == 95
    assert await store.open_outages() == []
    assert await store.recent() == [closed]


async def opening_twice_returns_the_open_outage(store: OutageStore) -> None:
    first = await store.open_outage("sgbank", T0, "first")
    again = await store.open_outage("sgbank", T0 + timedelta(minutes=1), "second")
    assert again == first
    assert len(await store.recent()) == 1


async def closing_without_an_open_outage_returns_none(store: OutageStore) -> None:
    assert await store.close_outage("sgbank", T0) is None
    await store.open_outage("sgbank", T0, "x")
    assert await store.close_outage("sgbank", T0 + timedelta(seconds=1)) is not None
    assert await store.close_outage("sgbank", T0 + timedelta(seconds=2)) is None


async def an_outage_never_ends_before_it_starts(store: OutageStore) -> None:
    await store.open_outage("sgbank", T0, "x")
    closed = await store.close_outage("sgbank", T0 - timedelta(seconds=30))
    assert closed is not None
    assert closed.ended_at == T0
    assert closed.duration_seconds == 0


async def banks_have_their_own_outages(store: OutageStore) -> None:
    sg = await store.open_outage("sgbank", T0, "a")
    hn = await store.open_outage("hnbank", T0 + timedelta(seconds=1), "b")
    assert sg.id != hn.id
    assert {o.bank for o in await store.open_outages()} == {"sgbank", "hnbank"}
    await store.close_outage("sgbank", T0 + timedelta(seconds=5))
    assert await store.open_outages() == [hn]


async def a_new_outage_after_a_closed_one_is_a_new_record(store: OutageStore) -> None:
    first = await store.open_outage("sgbank", T0, "a")
    await store.close_outage("sgbank", T0 + timedelta(seconds=10))
    second = await store.open_outage("sgbank", T0 + timedelta(seconds=20), "b")
    assert second.id != first.id
    assert [o.id for o in await store.recent()] == [second.id, first.id]


async def recent_is_newest_first_limited_and_filtered(store: OutageStore) -> None:
    for i in range(5):
        bank = "sgbank" if i % 2 == 0 else "hnbank"
        start = T0 + timedelta(minutes=i)
        await store.open_outage(bank, start, f"outage {i}")
        await store.close_outage(bank, start + timedelta(seconds=30))
    assert [o.cause for o in await store.recent(3)] == ["outage 4", "outage 3", "outage 2"]
    assert [o.cause for o in await store.recent(bank="hnbank")] == ["outage 3", "outage 1"]
    with pytest.raises(BAD_INPUT, match="limit"):
        await store.recent(0)
    with pytest.raises(BAD_INPUT, match="limit"):
        await store.recent(100_000)


async def times_come_back_in_utc(store: OutageStore) -> None:
    local = datetime(2025, 3, 3, 8, 30, tzinfo=ICT)  # 01:30 UTC, Vietnam time
    opened = await store.open_outage("sgbank", local, "x")
    assert opened.started_at == T0
    assert opened.started_at.utcoffset() == timedelta(0)


async def naive_times_are_refused(store: OutageStore) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.open_outage("sgbank", datetime(2025, 3, 3, 1, 30), "x")


async def bad_bank_ids_are_refused(store: OutageStore) -> None:
    with pytest.raises(BAD_INPUT, match="bank"):
        await store.open_outage("SG Bank; drop", T0, "x")


CONTRACT: tuple[Callable[[OutageStore], Awaitable[None]], ...] = (
    opening_then_closing_records_start_end_and_cause,
    opening_twice_returns_the_open_outage,
    closing_without_an_open_outage_returns_none,
    an_outage_never_ends_before_it_starts,
    banks_have_their_own_outages,
    a_new_outage_after_a_closed_one_is_a_new_record,
    recent_is_newest_first_limited_and_filtered,
    times_come_back_in_utc,
    naive_times_are_refused,
    bad_bank_ids_are_refused,
)
