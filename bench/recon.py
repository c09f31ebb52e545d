"""Statement reconciliation benchmark (performance target: 1,000,000 lines, load +
match, ≤ 10 s).

For each size N (default 10k, 100k, 1M), in a fresh database on a durable
embedded PostgreSQL: N fines and N payments of one bank (90 % succeeded with
their bank reference, 5 % verifying, 5 % declined), then a statement of N
lines in the mix a VietQR/REST bank gives: 89 % booked payments (bank
reference and our end-to-end key), 1 % a second booking of a paid fine, 5 %
our VietQR reference for a payment still verifying, 2 % citizens typing the
decision number (with diacritics, slash and dash), 1 % the wrong amount,
2 % noise.

Timed, "load + match": ``ledger.reconciliation.load.load_and_match`` (one
transaction, and for a big statement a helper connection's transaction for
the lines that are not plain booked payments), commit included: building the
binary COPY rows (content keys, references), COPY into staging, matching and
classifying set-based, writing every line, discrepancies, payment checks. Timed separately: the suspense
entries for the unidentified money (ledger postings, booked after the load in
small transactions). Not timed: parsing a file (measured once, below) and the
saga steps of healed lines (workflows).

Baseline in the same run, "store only": the same binary COPY rows (same
Python builder) into a durable table keyed by bank reference: what storing
the lines costs without matching them. A log-log plot of seconds against lines goes to
docs/recon_scaling.png.

Each size's load is timed --repeats times (default 3) on the same ledger,
undone in between (its lines and discrepancies truncated, fines and
payments vacuumed); the median is reported, with every run.
--history-days D first stores D earlier daily statements of the same size
(matched lines of the same bank), as a ledger in service holds: a load must
not cost more as they pile up (print only).

Run:  .venv/bin/python bench/recon.py [--sizes 10000,100000,1000000] [--no-write]
      [--repeats 3] [--one-connection] [--history-days 0] [--set name=value ...]
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bank_adapters.simulators.render import SimLine, render_csv
from bank_adapters.statements import StatementLimits, parse_csv_statement
from bank_adapters.text import payment_reference
from bank_adapters.types import Direction, StatementLine
from bench.common import parser, print_json, write_section
from bench.recon_report import markdown, plot
from ledger.core.postings import ensure_bank_accounts
from ledger.migrations import upgrade_to_head
from ledger.reconciliation import lines as recon_lines
from ledger.reconciliation import load as recon
from ledger.reconciliation import runs
from ledger.reconciliation.tuning import DEFAULT_TUNING, LINES_PER_STATEMENT_MAX, LoadTuning
from reconciler.devstack.postgres import EmbeddedPostgres, PostgresInfo
from tests.support.recon import open_run
from workflows.reconciliation.activities import post_suspense

BANK = "bench"
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)

SETUP_SQL = (
    """
    INSERT INTO fines (decision_number, decision_key, amount_vnd, violator_name, plate,
                       issuing_unit, violation)
    SELECT i || '/QĐ-XPHC', i || '/qd-xphc', 100000 + (i % 50) * 10000,
           'Nguyễn Văn A', '29A-123.45', 'Phòng CSGT Hà Nội', 'Vượt đèn đỏ'
      FROM generate_series(1, :n) AS i
    """,
    """
    INSERT INTO payments (id, fine_id, bank, payer_account, amount_vnd, status, debit_key,
                          settles_fine, channel, bank_ref, debited_at, created_at, updated_at)
    SELECT u, f.id, :bank, '123456789', f.amount_vnd,
           CASE WHEN f.id % 100 < 90 THEN 'succeeded'
                WHEN f.id % 100 < 95 THEN 'verifying' ELSE 'declined' END,
           'fp-' || replace(u::text, '-', ''), f.id % 100 < 90, 'portal',
           CASE WHEN f.id % 100 < 90 THEN 'FT' || lpad(f.id::text, 12, '0') END,
           CASE WHEN f.id % 100 < 90 THEN :debited END, :debited, :debited
      FROM (SELECT id, amount_vnd, gen_random_uuid() AS u FROM fines) AS f
    """,
)


async def setup_ledger(engine: AsyncEngine, n: int) -> dict[int, tuple[str, int]]:
    """N fines and payments; returns fine id → (debit key, amount)."""
    async with engine.begin() as conn:
        await ensure_bank_accounts(conn, [BANK])
        for sql in SETUP_SQL:
            await conn.execute(
                text(sql), {"n": n, "bank": BANK, "debited": NOW - timedelta(hours=1)}
            )
        rows = (
            await conn.execute(text("SELECT fine_id, debit_key, amount_vnd FROM payments"))
        ).all()
    # A ledger in service has been vacuumed (hint bits set, visibility map
    # built): the load must not pay for the setup's fresh rows.
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM (ANALYZE) fines, payments"))
    return {int(r.fine_id): (r.debit_key, int(r.amount_vnd)) for r in rows}


def statement_lines(n: int, payments: dict[int, tuple[str, int]]) -> list[StatementLine]:
    lines = []
    booked = NOW - timedelta(minutes=30)
    for i in range(1, n + 1):
        debit_key, amount = payments[i]
        kind = i % 100
        ref = f"FT{i:012d}"
        content, e2e = f"NOP PHAT {i} QD XPHC", None
        if kind < 89:
            e2e = debit_key
        elif kind < 90:
            ref, content = f"DU{i:012d}", f"{i} QD XPHC lan 2"
        elif kind < 95:
            content = f"{payment_reference(debit_key)} {i}QDXPHC"
        elif kind < 97:
            content = f"nộp phạt {i}/QĐ-XPHC Nguyễn Văn A"
        elif kind < 98:
            amount += 1_000
            content = f"{i}/QĐ-XPHC"
        else:
            amount, content = 12_345, "CHUYEN TIEN"
        lines.append(
            StatementLine(
                bank_ref=ref,
                booked_at=booked,
                amount_vnd=amount,
                direction=Direction.CREDIT,
                counterparty="123456789",
                content=content,
                raw=f":61:{booked:%y%m%d}C{amount},NTRFNONREF//{ref}",
                end_to_end_ref=e2e,
                source_line=i,
            )
        )
    return lines


async def store_only_seconds(engine: AsyncEngine, lines: list[StatementLine]) -> float:
    """Baseline: storing the same lines without matching them: the same
    binary COPY rows (same Python row builder, content keys included) into a
    durable table keyed by bank reference, committed."""
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "CREATE TABLE bench_store (pos integer, bank_ref text PRIMARY KEY,"
                " booked_at timestamptz, amount_vnd bigint, credit boolean, counterparty text,"
                " content text, content_key text, content_ref text, end_to_end_ref text,"
                " raw text, source_line integer)"
            )
        )
    started = time.perf_counter()
    async with engine.begin() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        copy_sql = f"COPY bench_store ({recon_lines.STAGING_COLUMNS}) FROM STDIN (FORMAT binary)"
        async with driver.cursor() as cursor, cursor.copy(copy_sql) as copy:
            copy.set_types(recon_lines.STAGING_TYPES)
            for pos, line in enumerate(lines):
                await copy.write_row(recon_lines.staging_row(pos, line))
    seconds = time.perf_counter() - started
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE bench_store"))
    return seconds


HISTORY_IMPORT_ID = 0  # earlier statements' lines (no import row: nothing reads it)


async def load_history(engine: AsyncEngine, n: int, days: int) -> None:
    """``days`` earlier daily statements of ``n`` matched lines each, as a
    ledger in service has: the load must not cost more as they pile up."""
    async with engine.begin() as conn:
        for day in range(1, days + 1):
            await conn.execute(
                text(
                    "INSERT INTO statement_lines (import_id, reconciliation_id, bank, bank_ref,"
                    " statement_date, booked_at, amount_vnd, direction, counterparty, content,"
                    " content_key, raw, class, rule, decided_at)"
                    " SELECT :history, :history, :bank, 'H' || :day || '-' || i, :date,"
                    "        :booked, 100000, 'credit', '123456789', 'NOP PHAT ' || i,"
                    "        'NOPPHAT' || i, 'history', 'matched', 'bank_ref', :booked"
                    "   FROM generate_series(1, :n) AS i"
                ),
                {
                    "history": HISTORY_IMPORT_ID,
                    "bank": BANK,
                    "day": day,
                    "date": NOW.date() - timedelta(days=day),
                    "booked": NOW - timedelta(days=day),
                    "n": n,
                },
            )
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM (ANALYZE) statement_lines"))


async def one_size(
    pg: PostgresInfo,
    n: int,
    repeats: int,
    history_days: int = 0,
    tuning: LoadTuning = DEFAULT_TUNING,
) -> dict[str, Any]:
    name = f"recon_bench_{n}"
    with psycopg.connect(pg.libpq_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    upgrade_to_head(pg.url(name))
    engine = create_async_engine(pg.url(name), pool_size=2)
    try:
        started = time.perf_counter()
        payments = await setup_ledger(engine, n)
        lines = statement_lines(n, payments)
        await load_history(engine, n, history_days)
        setup_seconds = time.perf_counter() - started
        loads: list[Load] = []
        for attempt in range(repeats):
            if attempt:
                await undo_load(engine, keep_history=history_days > 0)
            loads.append(await timed_load(engine, lines, attempt, tuning))
            print(f"  {n:,} lines, load {attempt + 1} of {repeats}: {loads[-1].seconds:.2f} s")
        # The last load stays: the suspense entries and the re-run follow it.
        last = loads[-1]
        median = sorted(loads, key=lambda load: load.seconds)[len(loads) // 2]
        suspense_started = time.perf_counter()
        posted = await post_suspense(engine, BANK)
        suspense_seconds = time.perf_counter() - suspense_started
        assert posted == last.summary.suspense_lines, (posted, last.summary.suspense_lines)
        await checkpoint(engine)
        baseline = await store_only_seconds(engine, lines)
        started = time.perf_counter()
        async with engine.begin() as conn:
            again = await recon.load_and_match(
                conn, last.run, last.statement_import, lines, NOW, tuning=tuning
            )
        rerun_seconds = time.perf_counter() - started
        assert again.new_lines == 0
    finally:
        await engine.dispose()
    with psycopg.connect(pg.libpq_url("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    seconds = median.seconds
    return {
        "lines": n,
        "load_and_match_seconds": round(seconds, 2),
        "load_and_match_runs": [round(load.seconds, 2) for load in loads],
        "lines_per_second": round(n / seconds),
        "suspense_entries": posted,
        "suspense_seconds": round(suspense_seconds, 2),
        "store_only_seconds": round(baseline, 2),
        "ratio_vs_store_only": round(seconds / baseline, 2),
        "rerun_seconds": round(rerun_seconds, 2),
        "setup_seconds": round(setup_seconds, 1),
        "classes": median.summary.classes,
        "stages_seconds": {k: round(v, 2) for k, v in median.stages.items()},
    }


@dataclass(frozen=True)
class Load:
    seconds: float
    stages: dict[str, float]
    summary: recon.MatchSummary
    run: runs.Run
    statement_import: runs.StatementImport


async def timed_load(
    engine: AsyncEngine, lines: list[StatementLine], attempt: int, tuning: LoadTuning
) -> Load:
    """One timed ``load_and_match`` of the whole statement, as a new import
    (opened as the activity opens it, by the tests' helper)."""
    async with engine.begin() as conn:
        run, statement_import = await open_run(
            conn, lines, bank=BANK, day=NOW.date(), now=NOW, sha=f"{attempt:064d}"
        )
    stages: dict[str, float] = {}
    await checkpoint(engine)  # earlier work's dirty pages are not ours to write
    started = time.perf_counter()
    async with engine.begin() as conn:
        summary = await recon.load_and_match(
            conn, run, statement_import, lines, NOW, timings=stages, tuning=tuning
        )
    seconds = time.perf_counter() - started
    # helper_*: the second connection's stages, while the main one works
    stages["commit"] = seconds - sum(v for k, v in stages.items() if not k.startswith("helper_"))
    assert summary.new_lines == len(lines), summary
    return Load(seconds, stages, summary, run, statement_import)


async def undo_load(engine: AsyncEngine, *, keep_history: bool = False) -> None:
    """Back to the ledger as it was before a load: its lines and discrepancies
    gone, and the fines and payments it locked (foreign key checks) vacuumed,
    so that the next load does not pay for setting their hint bits."""
    async with engine.begin() as conn:
        if keep_history:
            # discrepancy_assignments (the work queue's) reference discrepancies.
            await conn.execute(text("TRUNCATE discrepancy_assignments, discrepancies"))
            await conn.execute(
                text("DELETE FROM statement_lines WHERE import_id <> :history"),
                {"history": HISTORY_IMPORT_ID},
            )
        else:
            await conn.execute(
                text("TRUNCATE statement_lines, discrepancy_assignments, discrepancies")
            )
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM fines, payments, statement_lines"))


async def checkpoint(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("CHECKPOINT"))


def parse_seconds(n: int) -> float:
    """What parsing a CSV file of N lines costs (not part of load + match)."""
    at = NOW - timedelta(minutes=30)
    data = render_csv(
        [SimLine(f"FT{i:012d}", at, 100_000, "C", "123456789", f"NOP PHAT {i}") for i in range(n)]
    )
    started = time.perf_counter()
    parse_csv_statement(data, limits=StatementLimits(entries_max=n))
    return time.perf_counter() - started


@contextlib.contextmanager
def cluster(shared_buffers: str, settings: Sequence[str] = ()) -> Iterator[PostgresInfo]:
    """A durable embedded cluster. The dev stack starts PostgreSQL with
    shared_buffers=128MB, a laptop default; a million payments and lines are
    far bigger than that, as they would be on any production server, so the
    bench may start its own cluster with more (``--shared-buffers``)."""
    server_settings = {"shared_buffers": shared_buffers}
    for setting in settings:
        name, _, value = setting.partition("=")
        server_settings[name] = value
    with tempfile.TemporaryDirectory(prefix="bench-recon-pg-") as tmp:
        server = EmbeddedPostgres(
            Path(tmp) / "data", Path(tmp) / "pg.log", durable=True, settings=server_settings
        )
        info = server.start()
        try:
            yield info
        finally:
            server.stop()


async def main_async(
    sizes: list[int],
    write: bool,
    shared_buffers: str,
    settings: list[str],
    repeats: int,
    history_days: int = 0,
    tuning: LoadTuning = DEFAULT_TUNING,
) -> None:
    results = []
    with cluster(shared_buffers, settings) as pg:
        with psycopg.connect(pg.libpq_url("postgres")) as conn:
            shown = conn.execute("SHOW shared_buffers").fetchone()
        print(f"shared_buffers {shown[0] if shown else '?'}")
        for n in sizes:
            result = await one_size(pg, n, repeats, history_days, tuning)
            print_json(result)
            results.append(result)
    parse_100k = parse_seconds(100_000)
    if write:
        plot(results)
        write_section(
            "recon",
            "Statement reconciliation (load + match)",
            markdown(results, parse_100k, shared_buffers),
        )


@dataclass(frozen=True)
class Options:
    sizes: list[int]
    write: bool
    shared_buffers: str
    settings: list[str]
    repeats: int
    history_days: int
    tuning: LoadTuning


def parse_options(argv: Sequence[str]) -> Options:
    """The command line, checked before anything starts (exit 2 naming the
    option on a bad value)."""
    command = parser(__doc__.split("\n\n")[0])
    command.add_argument("--sizes", default="10000,100000,1000000")
    command.add_argument("--shared-buffers", default="1GB", help="the cluster's shared_buffers")
    command.add_argument("--set", action="append", default=[], help="extra name=value setting")
    command.add_argument(
        "--one-connection",
        action="store_true",
        help="every size on the one-connection staging path (for comparison; print only)",
    )
    command.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed loads per size (on the same ledger, undone in between); the median is kept",
    )
    command.add_argument(
        "--history-days",
        type=int,
        default=0,
        help="earlier daily statements of the same size loaded first, 0 to 30 (print only)",
    )
    args = command.parse_args(argv)
    if not 1 <= args.repeats <= 9:
        command.error(f"--repeats must be 1 to 9, not {args.repeats}")
    if not 0 <= args.history_days <= 30:
        command.error(f"--history-days must be 0 to 30, not {args.history_days}")
    tuning = DEFAULT_TUNING
    if args.one_connection:
        tuning = LoadTuning(parallel_lines_min=LINES_PER_STATEMENT_MAX + 1)
    return Options(
        sizes=[int(s) for s in args.sizes.split(",")],
        write=not (args.no_write or args.one_connection or args.history_days),
        shared_buffers=args.shared_buffers,
        settings=args.set,
        repeats=args.repeats,
        history_days=args.history_days,
        tuning=tuning,
    )


def main() -> None:
    o = parse_options(sys.argv[1:])
    asyncio.run(
        main_async(
            o.sizes, o.write, o.shared_buffers, o.settings, o.repeats, o.history_days, o.tuning
        )
    )


if __name__ == "__main__":
    main()
