"""Property: for any ledger and any statement (lines for booked payments, our
keys and references echoed back, decision numbers typed and mangled the ways
banks mangle them, duplicates, wrong amounts, noise, refunds, fees), every
line ends in exactly one class, the totals reconcile, the books balance,
money nobody booked is in suspense, and a second run changes nothing; both
with one connection and with the plain booked lines written by a helper
connection (the path of a big statement).

Each example gets its own database (cloned from the migrated template)."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bank_adapters.text import bank_transfer_content
from bank_adapters.types import Direction, StatementLine
from ledger import payments as pay
from ledger.core.postings import balances, bank_clearing_account, posting_sums
from ledger.fines import Fine
from ledger.reconciliation import load as recon
from ledger.reconciliation.matching import LINE_CLASSES
from ledger.reconciliation.tuning import LINES_PER_STATEMENT_MAX, LoadTuning
from reconciler.devstack.postgres import PostgresInfo
from tests.conftest import _create_db_from_template, _drop_db
from tests.support.ledger import make_fine
from tests.support.recon import (
    BANK,
    NOW,
    line,
    new_payment,
    post_suspense,
    qr_content,
    reconcile,
    run_and_import,
    snapshot,
)

STATES = ("none", "initiated", "verifying", "declined", "succeeded", "refunded_duplicate")
LINE_KINDS = ("booked", "booked_twice", "end_to_end", "qr", "decision", "noise", "fee", "refund")


@contextlib.asynccontextmanager
async def fresh_engine(pg_server: PostgresInfo, template: str) -> AsyncIterator[AsyncEngine]:
    name = await asyncio.to_thread(_create_db_from_template, pg_server, template)
    engine = create_async_engine(pg_server.url(name), pool_size=2, max_overflow=2)
    try:
        yield engine
    finally:
        await engine.dispose()
        await asyncio.to_thread(_drop_db, pg_server, name)


@dataclass
class World:
    fines: list[Fine]
    payments: dict[int, list[pay.Payment]]  # fine id → its payments
    paid_before: set[int]  # fines with a settling payment before the statement


async def build_ledger(engine: AsyncEngine, states: list[str], amounts: list[int]) -> World:
    fines: list[Fine] = []
    payments: dict[int, list[pay.Payment]] = {}
    for i, (state, amount) in enumerate(zip(states, amounts, strict=True)):
        fine = await make_fine(engine, f"{7000 + i}/QĐ-XPHC", amount)
        fines.append(fine)
        payments[fine.id] = []
        if state == "none":
            continue
        if state == "refunded_duplicate":
            payments[fine.id].append(await new_payment(engine, fine, "succeeded"))
            async with engine.begin() as conn:
                dup, _ = await pay.record_external_debit(
                    conn, fine, BANK, f"DUP{i}", amount, "123", NOW, "test"
                )
                await pay.settle_payment(conn, dup.id, f"DUP{i}", NOW, "test")
                await pay.mark_refunded(conn, dup.id, f"RF{i}", NOW)
                payments[fine.id].append(await pay.get_payment(conn, dup.id))
            continue
        payments[fine.id].append(await new_payment(engine, fine, state))
    paid = {f.id for f in fines if any(p.settles_fine for p in payments[f.id])}
    return World(fines, payments, paid)


def mangle(number: str, how: int, cut: int) -> str:
    """The decision number as a citizen types it and a bank keeps it."""
    typed = [number, number.replace("/", " "), number.replace("Đ", "D"), number.lower()][how % 4]
    content = bank_transfer_content(f"Nop phat {typed} Nguyen Van A", 60)
    return content[: max(len("Nop phat ") + 7, len(content) - cut)]


def build_lines(world: World, picks: list[tuple[str, int, int, int]]) -> list[StatementLine]:
    lines: list[StatementLine] = []
    for n, (kind, target, wrong, salt) in enumerate(picks):
        fine = world.fines[target % len(world.fines)]
        amount = fine.amount_vnd + (1_000 if wrong == 1 else 0)
        booked_at = NOW - timedelta(minutes=60 - n)
        ref = f"S{n:04d}"
        settled = [p for p in world.payments[fine.id] if p.status in ("succeeded", "refunded")]
        anyone = world.payments[fine.id]
        if kind in ("booked", "booked_twice") and settled:
            payment = settled[0]
            lines.append(line(amount, "x", ref=payment.bank_ref, booked_at=booked_at))
            if kind == "booked_twice":
                e2e = payment.debit_key
                lines.append(line(amount, "", ref=ref, end_to_end_ref=e2e, booked_at=booked_at))
        elif kind == "end_to_end" and anyone:
            e2e = anyone[0].debit_key
            lines.append(line(amount, "", ref=ref, end_to_end_ref=e2e, booked_at=booked_at))
        elif kind == "qr" and anyone:
            lines.append(line(amount, qr_content(anyone[0]), ref=ref, booked_at=booked_at))
        elif kind == "refund":
            refunded = [p for p in anyone if p.status == "refunded"]
            if refunded:
                lines.append(
                    line(
                        refunded[0].amount_vnd,
                        "HOAN TIEN",
                        ref=f"RF{world.fines.index(fine)}",
                        direction=Direction.DEBIT,
                    )
                )
        elif kind == "fee":
            lines.append(line(1_000 + salt, "PHI", ref=ref, direction=Direction.DEBIT))
        elif kind == "noise":
            words = random.Random(salt).choices(["CHUYEN", "TIEN", "ABC", "QD", "XPHC"], k=3)
            lines.append(line(5_000 + salt, " ".join(words), ref=ref, booked_at=booked_at))
        else:  # decision, or a kind with nothing to point at
            content = mangle(fine.decision_number, salt, salt % 9)
            lines.append(line(amount, content, ref=ref, booked_at=booked_at))
    unique: dict[str, StatementLine] = {}
    for item in lines:
        unique.setdefault(item.bank_ref, item)
    return list(unique.values())


def _signed(item: StatementLine) -> int:
    return item.amount_vnd if item.direction is Direction.CREDIT else -item.amount_vnd


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    ledger=st.lists(
        st.tuples(st.sampled_from(STATES), st.integers(1, 20).map(lambda n: n * 50_000)),
        min_size=1,
        max_size=8,
    ),
    picks=st.lists(
        st.tuples(
            st.sampled_from(LINE_KINDS),
            st.integers(0, 50),
            st.integers(0, 3),
            st.integers(0, 10_000),
        ),
        min_size=0,
        max_size=20,
    ),
    parallel=st.booleans(),
)
async def test_every_line_is_classified_once_totals_reconcile_and_a_rerun_is_a_no_op(
    pg_server: PostgresInfo,
    pg_template: str,
    ledger: list[tuple[str, int]],
    picks: list[tuple[str, int, int, int]],
    parallel: bool,
) -> None:
    threshold = 1 if parallel else LINES_PER_STATEMENT_MAX + 1
    async with fresh_engine(pg_server, pg_template) as engine:
        world = await build_ledger(engine, [s for s, _ in ledger], [a for _, a in ledger])
        lines = build_lines(world, picks)
        await _every_line_once(engine, world, lines, LoadTuning(parallel_lines_min=threshold))


async def _every_line_once(
    engine: AsyncEngine, world: World, lines: list[StatementLine], tuning: LoadTuning
) -> None:
    if tuning.parallel_lines_min == 1:
        # As the activity does (run and import committed before the
        # load), so the helper connection sees the run.
        run, statement_import = await run_and_import(engine, lines)
        async with engine.begin() as conn:
            summary = await recon.load_and_match(
                conn, run, statement_import, lines, NOW, tuning=tuning
            )
        await post_suspense(engine)
    else:
        _run, summary = await reconcile(engine, lines, tuning=tuning)

    # Exactly one class per line, and the totals add up.
    assert summary.new_lines == len(lines)
    assert sum(summary.classes.values()) == len(lines)
    assert set(summary.classes) <= set(LINE_CLASSES)
    assert sum(summary.amounts_vnd.values()) == sum(x.amount_vnd for x in lines)
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM statement_lines"))).all()
        found = (await conn.execute(text("SELECT * FROM discrepancies"))).all()
        held = await balances(conn, ["suspense", bank_clearing_account(BANK)])
        assert await balances(conn) == await posting_sums(conn)
    assert Counter(r.bank_ref for r in rows) == Counter(x.bank_ref for x in lines)
    by_class = Counter(r._mapping["class"] for r in rows)
    assert dict(by_class) == summary.classes

    # Everything neither matched nor healed is a discrepancy, once.
    line_discrepancies = Counter(d.statement_line_id for d in found if d.statement_line_id)
    for row in rows:
        wanted = 0 if row._mapping["class"] in ("matched", "healed") else 1
        assert line_discrepancies[row.id] == wanted, row

    # Money nobody booked is in suspense, and only that money.
    sent = {x.bank_ref: _signed(x) for x in lines}
    suspense = sum(sent[r.bank_ref] for r in rows if r.in_suspense)
    assert held.get("suspense", 0) == -suspense
    assert all(not (r.in_suspense and r.action) for r in rows)

    # A fine is healed at most once, and never when it was already paid.
    healed = Counter(r.fine_id for r in rows if r._mapping["class"] == "healed")
    assert all(n == 1 for n in healed.values())
    assert not set(healed) & world.paid_before

    # Lines of payments booked with their bank reference, for the same
    # amount, are matched when the payment settles its fine.
    settling = {p.bank_ref: p for ps in world.payments.values() for p in ps if p.settles_fine}
    for row in rows:
        payment = settling.get(row.bank_ref)
        if payment is not None and payment.amount_vnd == row.amount_vnd:
            assert row._mapping["class"] == "matched", row

    # A second run of the same statement, or of the same lines in another
    # file, writes nothing at all.
    before = await snapshot(engine)
    await reconcile(engine, lines, tuning=tuning)
    await reconcile(engine, list(reversed(lines)), sha="e" * 64, tuning=tuning)
    assert await snapshot(engine) == before
