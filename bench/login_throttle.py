"""What the shared login throttle costs a failed login (docs/benchmarks.md).

The API throttles failed logins in each process's memory and, for every
API process together, in PostgreSQL (``ledger.access.login_failures``):
one transaction per attempt with an advisory lock per key, two indexed
reads and two inserts (a success deletes its two rows). This
measures, in one run on one durable PostgreSQL, one failed login each way:

* the throttle alone, in memory only (``shared=False``) and shared;
* the whole failed login the throttle guards (``ledger.access.log_in`` of
  an unknown name: a user lookup and an argon2 verification), the baseline.

Rounds alternate which throttle goes first; every attempt uses a new name
and address, so none is throttled and each takes the full path.

Run:  .venv/bin/python bench/login_throttle.py [--attempts 400] [--rounds 3]
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Section, parser, postgres, report
from ledger.access import LockPolicy, PasswordChecker, log_in
from ledger.migrations import upgrade_to_head
from reconciler.api.login_throttle import FailureWindow, LoginThrottle

WINDOW_SECONDS = 300.0


def _throttle(shared: bool) -> LoginThrottle:
    return LoginThrottle(
        FailureWindow(30, WINDOW_SECONDS, keys_max=100_000),
        FailureWindow(5, WINDOW_SECONDS, keys_max=100_000),
        shared=shared,
    )


async def _throttle_ms(engine: AsyncEngine, shared: bool, attempts: int, tag: str) -> float:
    """Mean ms of one failed attempt through the throttle: checked and
    counted (before its password would be verified)."""
    throttle = _throttle(shared)
    started = time.perf_counter()
    for i in range(attempts):
        address, name = f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", f"{tag}-{i}"
        assert not isinstance(await throttle.begin(engine, address, name), int)
    return (time.perf_counter() - started) * 1000 / attempts


async def _login_ms(engine: AsyncEngine, attempts: int, tag: str) -> float:
    """Mean ms of one failed login of an unknown name, without a throttle."""
    checker = PasswordChecker()
    started = time.perf_counter()
    for i in range(attempts):
        outcome = await log_in(
            engine,
            checker,
            f"{tag}-{i}",
            "a wrong password",
            datetime.now(UTC),
            policy=LockPolicy(),
        )
        assert not outcome.ok
    return (time.perf_counter() - started) * 1000 / attempts


async def main_async(attempts: int, rounds: int) -> dict[str, Any]:
    with postgres(durable=True) as pg:
        upgrade_to_head(pg.url())
        engine = create_async_engine(pg.url(), pool_size=2, max_overflow=0)
        try:
            per_round: list[dict[str, float]] = []
            for r in range(rounds):
                order = (False, True) if r % 2 == 0 else (True, False)
                row: dict[str, float] = {}
                for shared in order:
                    key = "shared_ms" if shared else "memory_ms"
                    row[key] = await _throttle_ms(engine, shared, attempts, f"r{r}{key}")
                row["login_ms"] = await _login_ms(engine, attempts // 4, f"r{r}login")
                per_round.append(row)
            async with engine.connect() as conn:
                kept = (await conn.execute(text("SELECT count(*) FROM login_failures"))).scalar()
        finally:
            await engine.dispose()
    medians = {k: statistics.median(r[k] for r in per_round) for k in per_round[0]}
    added = medians["shared_ms"] - medians["memory_ms"]
    return {
        "attempts_per_round": attempts,
        "rounds": per_round,
        "median": {k: round(v, 3) for k, v in medians.items()},
        "shared_added_ms": round(added, 3),
        "added_over_login": round(added / medians["login_ms"], 3),
        "rows_kept": kept,
    }


def _body(result: dict[str, Any]) -> str:
    m = result["median"]
    lines = "\n".join(
        f"| {i + 1} | {r['memory_ms']:.3f} | {r['shared_ms']:.3f} | {r['login_ms']:.1f} |"
        for i, r in enumerate(result["rounds"])
    )
    return f"""
One durable PostgreSQL (fsync on), one connection at a time, {result["attempts_per_round"]}
failed attempts per throttle and round (a new name and address each, so
none is throttled), a quarter as many whole failed logins as the baseline.

| what | median ms per failed attempt |
| --- | ---: |
| throttle in memory only | {m["memory_ms"]} |
| throttle in memory and shared in PostgreSQL | {m["shared_ms"]} |
| whole failed login it guards (user lookup + argon2), baseline | {m["login_ms"]} |
| **added by sharing, as a share of the failed login** | **{result["shared_added_ms"]} ms, {result["added_over_login"]:.1%}** |

| round | memory (ms) | shared (ms) | failed login (ms) |
| ---: | ---: | ---: | ---: |
{lines}

Rows left in `login_failures` at the end: {result["rows_kept"]} (every failure of
the run is inside the 5-minute window, so none was due for deletion).
"""


def main() -> None:
    args = parser(__doc__, attempts=400, rounds=3).parse_args()
    title = "Login throttle shared by the API processes (bench/login_throttle.py)"
    report(
        asyncio.run(main_async(args.attempts, args.rounds)),
        args,
        Section("login_throttle", title, _body),
    )


if __name__ == "__main__":
    main()
