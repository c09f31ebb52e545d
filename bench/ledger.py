"""Ledger benchmarks (docs/benchmarks.md, performance targets):

1. balanced, idempotent journal entries posted per second (target ≥ 1,000/s),
   against a baseline of one bare INSERT per transaction at the same
   concurrency, in the same run; then every entry is replayed once and the
   balances must not move;
2. fine lookup latency at a steady 200 req/s while the bank link is down
   (the bank URL points at a closed port; the lookup must not care), against
   /healthz at the same rate as a baseline (target p99 ≤ 20 ms).

Run:  .venv/bin/python bench/ledger.py [--entries 5000] [--seconds 10]
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Section, parser, postgres, report, summary_ms
from ledger.access import TokenKind, create_user, issue_token, user_owner
from ledger.core.postings import (
    EntryRequest,
    Posting,
    balances,
    bank_clearing_account,
    ensure_account,
    post_entry,
    posting_sums,
)
from ledger.fines import FineInput, register_fine
from ledger.migrations import upgrade_to_head
from reconciler.devstack.ports import free_port
from reconciler.devstack.stack import http_ok

CONCURRENCY = 16
FINES = 2_000


async def _run_concurrently(n: int, work: Any) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            await work(queue.get_nowait())

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started


async def bench_entries(engine: AsyncEngine, entries: int) -> dict[str, Any]:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE bench_baseline (id bigint PRIMARY KEY, v bigint)"))
        for bank in ("sgbank", "hnbank"):
            await ensure_account(conn, bank_clearing_account(bank), bank, "asset")

    async def baseline(i: int) -> None:
        async with engine.begin() as conn:
            await conn.execute(
                text("INSERT INTO bench_baseline (id, v) VALUES (:i, :v)"), {"i": i, "v": i}
            )

    def entry(i: int) -> EntryRequest:
        amount = 100_000 + i
        bank = "sgbank" if i % 2 else "hnbank"
        return EntryRequest(
            idempotency_key=f"bench:{i}",
            kind="fine_payment",
            postings=(
                Posting(bank_clearing_account(bank), amount),
                Posting("fines-revenue", -amount),
            ),
        )

    async def post(i: int) -> None:
        async with engine.begin() as conn:
            posted = await post_entry(conn, entry(i))
            assert posted.created

    async def replay(i: int) -> None:
        async with engine.begin() as conn:
            posted = await post_entry(conn, entry(i))
            assert not posted.created, "a replay created a second entry"

    baseline_seconds = await _run_concurrently(entries, baseline)
    post_seconds = await _run_concurrently(entries, post)
    async with engine.connect() as conn:
        before = await balances(conn)
    replay_seconds = await _run_concurrently(entries, replay)
    async with engine.connect() as conn:
        after = await balances(conn)
        assert after == before, "replays moved balances"
        assert after == await posting_sums(conn), "cached balances drifted from postings"
        count = (await conn.execute(text("SELECT count(*) FROM journal_entries"))).scalar_one()
    assert count == entries
    return {
        "entries": entries,
        "concurrency": CONCURRENCY,
        "entries_per_second": round(entries / post_seconds),
        "replays_per_second": round(entries / replay_seconds),
        "baseline_inserts_per_second": round(entries / baseline_seconds),
        "ratio_vs_bare_insert": round(baseline_seconds / post_seconds, 2),
    }


async def _seed_fines(engine: AsyncEngine) -> str:
    async with engine.begin() as conn:
        for i in range(FINES):
            await register_fine(
                conn,
                FineInput(
                    decision_number=f"{i:05d}/QĐ-XPHC",
                    amount_vnd=500_000 + i,
                    violator_name="Nguyễn Văn A",
                    plate="29A-123.45",
                    issuing_unit="Phòng CSGT Hà Nội",
                    violation="Vượt đèn đỏ",
                ),
            )
        # A unit-scoped officer: the lookup then makes its scope comparison.
        await create_user(
            conn,
            username="bench-officer",
            password_hash="!no-login",  # not an argon2 hash: no login
            role="officer",
            actor="bench",
            now=datetime.now(UTC),
            units=["Phòng CSGT Hà Nội"],
        )
        token, _ = await issue_token(
            conn,
            await user_owner(conn, "bench-officer"),
            kind=TokenKind.API,
            name="bench",
            lifetime=timedelta(days=1),
            created_by="bench",
            now=datetime.now(UTC),
        )
        return token


async def _steady_load(
    session: aiohttp.ClientSession, urls: list[str], rate: int, seconds: float, token: str
) -> tuple[list[float], int]:
    """Open loop: a request every 1/rate s whatever the answers, so a slow
    server shows up as latency (no coordinated omission)."""
    latencies: list[float] = []
    errors = 0
    headers = {"Authorization": f"Bearer {token}"}

    async def one(url: str) -> None:
        nonlocal errors
        started = time.perf_counter()
        async with session.get(url, headers=headers) as resp:
            await resp.read()
            if resp.status != 200:
                errors += 1
        latencies.append(time.perf_counter() - started)

    tasks = []
    total = int(rate * seconds)
    start = time.perf_counter()
    for i in range(total):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(urls[i % len(urls)])))
    await asyncio.gather(*tasks)
    return latencies, errors


async def bench_lookup(db_url: str, engine: AsyncEngine, seconds: float) -> dict[str, Any]:
    token = await _seed_fines(engine)
    port = free_port()
    dead_bank = f"http://127.0.0.1:{free_port()}"  # nothing listens: link down
    env = {
        **os.environ,
        "RECONCILER_DATABASE_URL": db_url,
        "RECONCILER_BANKS": json.dumps({"sgbank": {"protocol": "rest", "url": dead_bank}}),
        "RECONCILER_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "RECONCILER_LOG_LEVEL": "warning",
        "RECONCILER_ENV": "dev",
    }
    with tempfile.TemporaryDirectory() as tmp:
        env["RECONCILER_DATA_DIR"] = tmp
        api = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "api", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while not http_ok(f"{base}/readyz"):
                assert time.monotonic() < deadline, "API did not start"
                await asyncio.sleep(0.1)
            lookups = [
                f"{base}/api/v1/fines/" + urllib.parse.quote(f"{i:05d}/qd-xphc", safe="")
                for i in range(0, FINES, 7)
            ]
            connector = aiohttp.TCPConnector(limit=64)
            async with aiohttp.ClientSession(connector=connector) as session:
                await _steady_load(session, lookups, 50, 1.0, token)  # warm-up
                base_lat, base_err = await _steady_load(
                    session, [f"{base}/healthz"], 200, seconds, token
                )
                look_lat, look_err = await _steady_load(session, lookups, 200, seconds, token)
        finally:
            api.terminate()
            api.wait(timeout=10)
    look = summary_ms(look_lat)
    return {
        "rate_per_second": 200,
        "seconds": seconds,
        "requests": len(look_lat),
        "errors": look_err + base_err,
        "lookup": look,
        "baseline_healthz": summary_ms(base_lat),
        "p99_ratio_vs_healthz": round(
            look["p99_ms"] / max(summary_ms(base_lat)["p99_ms"], 0.01), 2
        ),
    }


async def main_async(entries: int, seconds: float) -> dict[str, Any]:
    with postgres(durable=True) as pg:
        upgrade_to_head(pg.url())
        db_url = pg.url()
        engine = create_async_engine(db_url, pool_size=CONCURRENCY, max_overflow=0)
        try:
            result_entries = await bench_entries(engine, entries)
            result_lookup = await bench_lookup(db_url, engine, seconds)
        finally:
            await engine.dispose()
    return {"journal_entries": result_entries, "fine_lookup_bank_down": result_lookup}


def main() -> None:
    args = parser(__doc__, entries=5_000, seconds=10.0).parse_args()
    title = "Ledger: journal entries and fine lookup (bench/ledger.py)"
    report(
        asyncio.run(main_async(args.entries, args.seconds)), args, Section("ledger", title, _body)
    )


def _body(result: dict[str, Any]) -> str:
    e, lk = result["journal_entries"], result["fine_lookup_bank_down"]
    return f"""
PostgreSQL durable (fsync on), {e["concurrency"]} concurrent connections, one
transaction per entry.

| what | result | target |
| --- | --- | --- |
| journal entries posted (balanced, idempotent) | **{e["entries_per_second"]} /s** ({e["entries"]} entries) | ≥ 1,000 /s |
| replays of the same entries (no effect, checked) | {e["replays_per_second"]} /s | — |
| baseline: bare one-row INSERT per transaction | {e["baseline_inserts_per_second"]} /s | — |
| ratio entries / bare insert | {e["ratio_vs_bare_insert"]} | — |
| fine lookup, bank link down, 200 req/s for {lk["seconds"]:.0f} s: p50 / p99 / max | {lk["lookup"]["p50_ms"]} / **{lk["lookup"]["p99_ms"]}** / {lk["lookup"]["max_ms"]} ms ({lk["errors"]} errors) | p99 ≤ 20 ms |
| baseline /healthz at 200 req/s: p50 / p99 | {lk["baseline_healthz"]["p50_ms"]} / {lk["baseline_healthz"]["p99_ms"]} ms | — |
| ratio lookup p99 / healthz p99 | {lk["p99_ratio_vs_healthz"]} | — |

The load generator runs in the benchmark process; the API is a separate
`reconciler api` process with its bank pointed at a closed port.
"""


if __name__ == "__main__":
    main()
