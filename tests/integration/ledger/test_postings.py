"""The double-entry ledger against the real embedded PostgreSQL."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core.errors import IdempotencyConflictError, UnbalancedEntryError, UnknownAccountError
from ledger.core.postings import (
    EntryRequest,
    Posting,
    balances,
    ensure_account,
    post_entries,
    post_entry,
    posting_sums,
    reverse_entry,
)
from tests.support import db

ACCOUNTS = ("bank:a:clearing", "bank:b:clearing", "fines-revenue", "suspense", "refunds-payable")


async def _setup_accounts(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await ensure_account(conn, "bank:a:clearing", "Bank A clearing", "asset")
        await ensure_account(conn, "bank:b:clearing", "Bank B clearing", "asset")


def _payment_entry(key: str, amount: int) -> EntryRequest:
    return EntryRequest(
        idempotency_key=key,
        kind="fine_payment",
        postings=(Posting("bank:a:clearing", amount), Posting("fines-revenue", -amount)),
    )


async def test_posting_then_replay_returns_the_first_entry(engine: AsyncEngine) -> None:
    await _setup_accounts(engine)
    async with engine.begin() as conn:
        first = await post_entry(conn, _payment_entry("pay-1", 500_000))
    async with engine.begin() as conn:
        again = await post_entry(conn, _payment_entry("pay-1", 500_000))
        assert again.entry_id == first.entry_id
        assert first.created
        assert not again.created
        got = await balances(conn, ["bank:a:clearing", "fines-revenue"])
    assert got == {"bank:a:clearing": 500_000, "fines-revenue": -500_000}


async def test_same_key_other_content_is_refused(engine: AsyncEngine) -> None:
    await _setup_accounts(engine)
    async with engine.begin() as conn:
        await post_entry(conn, _payment_entry("pay-1", 500_000))
    async with engine.begin() as conn:
        with pytest.raises(IdempotencyConflictError, match="pay-1"):
            await post_entry(conn, _payment_entry("pay-1", 600_000))


async def test_unbalanced_entry_is_refused_before_sql(engine: AsyncEngine) -> None:
    await _setup_accounts(engine)
    bad = EntryRequest(
        idempotency_key="bad",
        kind="x",
        postings=(Posting("bank:a:clearing", 100), Posting("fines-revenue", -99)),
    )
    async with engine.begin() as conn:
        with pytest.raises(UnbalancedEntryError, match="sum to 1"):
            await post_entry(conn, bad)
        count = (await conn.execute(text("SELECT count(*) FROM journal_entries"))).scalar_one()
    assert count == 0


async def test_unknown_account_is_refused_and_nothing_is_written(engine: AsyncEngine) -> None:
    entry = EntryRequest(
        idempotency_key="k",
        kind="x",
        postings=(Posting("nope", 100), Posting("fines-revenue", -100)),
    )
    with pytest.raises(UnknownAccountError, match="nope"):
        async with engine.begin() as conn:
            await post_entry(conn, entry)
    async with engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM postings"))).scalar_one()
    assert count == 0


async def test_database_refuses_unbalanced_raw_sql(engine: AsyncEngine) -> None:
    await _setup_accounts(engine)
    with pytest.raises(DBAPIError, match="unbalanced"):
        async with engine.begin() as conn:
            entry_id = (
                await conn.execute(
                    text(
                        "INSERT INTO journal_entries (idempotency_key, kind, content_hash) "
                        "VALUES ('raw', 'x', 'h') RETURNING id"
                    )
                )
            ).scalar_one()
            await conn.execute(
                text(
                    "INSERT INTO postings (entry_id, account_id, amount_vnd) "
                    "SELECT :e, id, 1000 FROM accounts WHERE code = 'bank:a:clearing'"
                ),
                {"e": entry_id},
            )
            await conn.execute(
                text(
                    "INSERT INTO postings (entry_id, account_id, amount_vnd) "
                    "SELECT :e, id, -999 FROM accounts WHERE code = 'fines-revenue'"
                ),
                {"e": entry_id},
            )
    async with engine.connect() as conn:
        got = await balances(conn)
    assert all(v == 0 for v in got.values())


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE postings SET amount_vnd = amount_vnd * 2",
        "DELETE FROM postings",
        "UPDATE journal_entries SET kind = 'other'",
        "DELETE FROM journal_entries",
        "TRUNCATE postings CASCADE",
        "UPDATE account_balance_shards SET balance_vnd = 0",
        "DELETE FROM account_balance_shards",
        "INSERT INTO account_balance_shards SELECT id, 3, 5 FROM accounts LIMIT 1",
    ],
)
async def test_ledger_rows_are_immutable(
    engine: AsyncEngine, owner_engine: AsyncEngine, statement: str
) -> None:
    """The triggers hold even for the owner (the app's role has no such
    privilege at all: tests/integration/ledger/test_app_role.py)."""
    await _setup_accounts(engine)
    async with engine.begin() as conn:
        await post_entry(conn, _payment_entry("pay-1", 700_000))
    with pytest.raises(DBAPIError, match=r"not allowed|only through postings"):
        async with owner_engine.begin() as conn:
            await conn.execute(text(statement))
    async with engine.connect() as conn:
        assert (await balances(conn))["fines-revenue"] == -700_000


async def test_reversal_nets_to_zero_and_happens_once(engine: AsyncEngine) -> None:
    await _setup_accounts(engine)
    async with engine.begin() as conn:
        entry = await post_entry(conn, _payment_entry("pay-1", 250_000))
    async with engine.begin() as conn:
        rev = await reverse_entry(conn, entry.entry_id, "rev-pay-1")
        rev_again = await reverse_entry(conn, entry.entry_id, "rev-pay-1")
        assert rev.entry_id == rev_again.entry_id
        got = await balances(conn, ["bank:a:clearing", "fines-revenue"])
    assert got == {"bank:a:clearing": 0, "fines-revenue": 0}
    with pytest.raises(DBAPIError, match="journal_entries_one_reversal"):
        async with engine.begin() as conn:
            await reverse_entry(conn, entry.entry_id, "another-key")


_amounts = st.integers(min_value=1, max_value=10**12)
_entries = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=15),  # key id: repeats are replays
        st.lists(
            st.tuples(st.sampled_from(ACCOUNTS), _amounts),
            min_size=1,
            max_size=4,
        ),
    ),
    min_size=1,
    max_size=12,
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(entries=_entries)
async def test_balances_always_equal_posting_sums(
    engine: AsyncEngine, entries: list[tuple[int, list[tuple[str, int]]]]
) -> None:
    """Any sequence of entries (with replays and key reuse) keeps every cached
    balance equal to the sum of its postings, and a replay never doubles.

    The database is shared by all examples of this test, so state accumulates:
    that is part of what is checked."""
    await _setup_accounts(engine)
    for key_id, debits in entries:
        # Build a balanced entry: the debit lines are offset on refunds-payable.
        total = sum(a for _, a in debits)
        lines = [Posting(acc, amt) for acc, amt in debits]
        postings = (*lines, Posting("refunds-payable", -total))
        request = EntryRequest(idempotency_key=f"k{key_id}", kind="prop", postings=postings)
        async with engine.connect() as conn:
            before = await balances(conn)
        try:
            async with engine.begin() as conn:
                posted = await post_entry(conn, request)
        except IdempotencyConflictError:
            posted = None
        async with engine.connect() as conn:
            after = await balances(conn)
            assert after == await posting_sums(conn)
        if posted is None or not posted.created:
            assert after == before, "a replay or a refused entry changed balances"
        assert sum(after.values()) == 0


def _duplicate_entry(key: str, amount: int) -> EntryRequest:
    return EntryRequest(
        idempotency_key=key,
        kind="duplicate_payment",
        postings=(Posting("bank:a:clearing", amount), Posting("refunds-payable", -amount)),
    )


async def test_many_entries_post_as_one_by_one_would(engine: AsyncEngine) -> None:
    await _setup_accounts(engine)
    async with engine.begin() as conn:
        before = await post_entry(conn, _payment_entry("pay-0", 100_000))
    requests = [
        _payment_entry("pay-0", 100_000),  # posted before: returned as it was
        *(_payment_entry(f"pay-{i}", 100_000 * i) for i in range(1, 20)),
        *(_duplicate_entry(f"dup-{i}", 7_000 * i) for i in range(1, 20)),
    ]
    async with engine.begin() as conn:
        posted = await post_entries(conn, requests)
    assert posted[0].entry_id == before.entry_id
    assert not posted[0].created
    assert all(p.created for p in posted[1:])
    # Ids follow the order given.
    assert [p.entry_id for p in posted[1:]] == sorted(p.entry_id for p in posted[1:])
    async with engine.connect() as conn:
        got = await balances(conn)
        assert got == await posting_sums(conn)
    # pay-0 once (it was posted before), pay-1..19, dup-1..19.
    assert got["bank:a:clearing"] == 100_000 * (1 + sum(range(20))) + 7_000 * sum(range(20))
    assert got["refunds-payable"] == -7_000 * sum(range(20))
    async with engine.begin() as conn:
        again = await post_entries(conn, requests)
    assert [(p.entry_id, p.created) for p in again] == [(p.entry_id, False) for p in posted]


async def test_many_entries_take_their_balance_shards_in_one_order(engine: AsyncEngine) -> None:
    """Each posting's trigger locks its account's balance shard (entry id
    mod 16) until commit, in the order the postings are inserted. A single
    entry takes its (account, shard) rows in account order; a batch must
    take them in (account, shard) order too, or the two can wait on each
    other in a cycle."""
    await _setup_accounts(engine)
    requests = [
        (_payment_entry if i % 3 else _duplicate_entry)(f"e-{i}", 1_000 + i) for i in range(40)
    ]
    async with engine.begin() as conn:
        await post_entries(conn, requests)
    rows = await db.rows(
        engine,
        "SELECT p.account_id, p.entry_id % 16 AS shard FROM postings p ORDER BY p.id",
    )
    taken = [(row.account_id, row.shard) for row in rows]
    assert taken == sorted(taken)
    assert len(set(taken)) > 16  # several accounts and shards, not a trivial order


async def test_a_bad_entry_in_a_batch_posts_nothing(engine: AsyncEngine) -> None:
    await _setup_accounts(engine)
    unknown = EntryRequest(
        idempotency_key="k-bad",
        kind="x",
        postings=(Posting("nope", 100), Posting("fines-revenue", -100)),
    )
    unbalanced = EntryRequest(
        idempotency_key="k-unbalanced",
        kind="x",
        postings=(Posting("bank:a:clearing", 100), Posting("fines-revenue", -99)),
    )
    for bad, error in ((unknown, UnknownAccountError), (unbalanced, UnbalancedEntryError)):
        with pytest.raises(error):
            async with engine.begin() as conn:
                await post_entries(conn, [_payment_entry("k-1", 500), bad])
    with pytest.raises(ValueError, match="share an idempotency key"):
        async with engine.begin() as conn:
            await post_entries(conn, [_payment_entry("k-1", 500), _payment_entry("k-1", 500)])
    async with engine.begin() as conn:
        await post_entry(conn, _payment_entry("k-1", 500))
    with pytest.raises(IdempotencyConflictError, match="k-1"):
        async with engine.begin() as conn:
            await post_entries(conn, [_payment_entry("k-2", 1), _payment_entry("k-1", 600)])
    assert await db.value(engine, "SELECT count(*) FROM journal_entries") == 1
    assert await db.value(engine, "SELECT count(*) FROM postings") == 2
