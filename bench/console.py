"""Console benchmark (docs/benchmarks.md, issue 16): the officer's pages
with a million fines and 50 staff sessions at once, against the same
pages' JSON endpoints in the same run.

A throwaway PostgreSQL (not durable) gets ``--fines`` fines over 20
issuing units by COPY (the search indexes built after the copy, as a bulk
load would), a few hundred receipts issued today, and one unit-scoped
officer per session (a console session cookie and an API token each). A
``reconciler api`` process serves them on 127.0.0.1. Each of the
``--sessions`` sessions then runs ``--rounds`` rounds of the four pages of
the counter (search by decision number, by plate, by name; today's
receipts), each page followed by its JSON twin
(``/api/v1/fines/{n}``, ``/api/v1/fines?plate=``, ``?name=``,
``/api/v1/receipts?issuing_unit=&day=``). Closed loop: a session sends its
next request when the last one answered, pausing ``--think-seconds`` (0.5
to 1.5 times it, at random) after each page and its JSON, as a person
reading the page does. Bounded: sessions × rounds × 8 requests, and
``--seconds-max`` for the whole load.

Target: page p95 ≤ 150 ms, page p95 / JSON p95 ≤ 2.

Run:  .venv/bin/python bench/console.py [--fines 1000000] [--sessions 50] [--rounds 10]
"""

from __future__ import annotations

import asyncio
import io
import os
import random
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import Section, parser, percentile, postgres, report, summary_ms
from domain.business_time import business_date
from domain.decision_numbers import normalise_decision_number
from ledger.access import TokenKind, create_user, get_user, issue_token, user_owner
from ledger.access.sessions import create_session
from ledger.migrations import upgrade_to_head
from ledger.receipts.issue import issue_receipt
from ledger.receipts.signing import ReceiptSigner
from reconciler.devstack.ports import free_port
from reconciler.devstack.stack import http_ok

UNITS = [f"Đội CSGT số {k} - Công an quận {k}" for k in range(1, 21)]
SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Phan", "Vũ", "Võ", "Đặng"]
MIDDLES = ["Văn", "Thị", "Hữu", "Đức", "Minh", "Thu", "Ngọc", "Quang", "Thanh", "Xuân"]
GIVENS = ["An", "Anh", "Bình", "Cường", "Dũng", "Đào", "Giang", "Hà", "Hải", "Hương", "Khoa"]
RECEIPTS_TODAY = 300
KINDS = ("decision", "plate", "name", "receipts")


def _plate(rng: random.Random) -> str:
    letter = rng.choice("ABCDEFGHKLMNPSTUVXYZ")
    return f"{rng.randint(11, 99)}{letter}-{rng.randint(100, 999)}.{rng.randint(10, 99)}"


def _name(rng: random.Random) -> str:
    return f"{rng.choice(SURNAMES)} {rng.choice(MIDDLES)} {rng.choice(GIVENS)}"


def _decision(i: int) -> str:
    return f"{i:07d}/QĐ-XPHC"


def copy_fines(libpq_url: str, count: int, seed: int) -> float:
    """``count`` fines by COPY, the search indexes dropped first and built
    after; returns the seconds it took."""
    rng = random.Random(seed)
    started = time.perf_counter()
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        indexes = conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'fines'"
            " AND indexname IN ('fines_plate_key', 'fines_name_key',"
            " 'fines_unit_plate_key', 'fines_unit_name_key')"
        ).fetchall()
        for name, _ in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        columns = "decision_number, decision_key, amount_vnd, violator_name, plate, issuing_unit"
        with conn.cursor().copy(f"COPY fines ({columns}, violation) FROM STDIN") as copy:
            batch = io.StringIO()
            for i in range(count):
                number = _decision(i)
                unit = UNITS[i % len(UNITS)]
                amount = rng.randrange(100_000, 20_000_000, 50_000)
                row = (number, normalise_decision_number(number), str(amount))
                batch.write("\t".join((*row, _name(rng), _plate(rng), unit, "Vượt đèn đỏ")))
                batch.write("\n")
                if i % 20_000 == 19_999:
                    copy.write(batch.getvalue())
                    batch = io.StringIO()
            copy.write(batch.getvalue())
        for _, definition in indexes:
            conn.execute(definition)
        conn.execute("ANALYZE fines")
    return time.perf_counter() - started


async def seed_receipts(engine: AsyncEngine, fines: int) -> None:
    """Receipts issued today for fines of the first unit."""
    signer = ReceiptSigner.generate()
    now = datetime.now(UTC)
    step = len(UNITS)
    for k in range(min(RECEIPTS_TODAY, fines // step)):
        async with engine.begin() as conn:
            payment_id = uuid.uuid4()
            await conn.execute(
                text(
                    "INSERT INTO payments (id, fine_id, bank, payer_account, amount_vnd, status,"
                    " debit_key, settles_fine, bank_ref) SELECT :id, id, 'sgbank',"
                    " '0011001234567', amount_vnd, 'succeeded', :dk, true, :ref"
                    " FROM fines WHERE decision_key = :key"
                ),
                {
                    "id": payment_id,
                    "dk": f"debit-{payment_id}",
                    "ref": f"FT{payment_id.hex[:12]}",
                    "key": normalise_decision_number(_decision(k * step)),
                },
            )
            await issue_receipt(conn, payment_id, signer, now - timedelta(seconds=k))


async def seed_staff(engine: AsyncEngine, sessions: int) -> list[dict[str, str]]:
    """One unit-scoped officer per session: its unit, cookie and token."""
    staff = []
    now = datetime.now(UTC)
    for n in range(sessions):
        unit = UNITS[n % len(UNITS)] if n else UNITS[0]
        username = f"bench-officer-{n}"
        async with engine.begin() as conn:
            await create_user(
                conn,
                username=username,
                password_hash="!no-login",
                role="officer",
                actor="bench",
                now=now,
                units=[unit],
            )
            user = await get_user(conn, username)
            cookie, _ = await create_session(conn, user.id, username, now)
            token, _ = await issue_token(
                conn,
                await user_owner(conn, username),
                kind=TokenKind.API,
                name=f"bench-{n}",
                lifetime=timedelta(days=1),
                created_by="bench",
                now=now,
            )
        staff.append({"unit": unit, "unit_index": str(UNITS.index(unit)), "cookie": cookie})
        staff[-1]["token"] = token
    return staff


def _requests(
    rng: random.Random, who: dict[str, str], fines: int, day: str
) -> list[tuple[str, str, str]]:
    """One round: (kind, page path, JSON path) for each of the four pages,
    about fines of the officer's own unit."""
    unit_index, step = int(who["unit_index"]), len(UNITS)
    i = rng.randrange(unit_index, fines, step)
    number = urllib.parse.quote(_decision(i).lower().replace("đ", "d"), safe="")
    plate = urllib.parse.quote(
        f"{rng.randint(11, 99)}{rng.choice('ABCDEFGHK')}-{rng.randint(1, 9)}"
    )
    name = urllib.parse.quote(f"{rng.choice(SURNAMES)} {rng.choice(MIDDLES)}".lower())
    unit = urllib.parse.quote(who["unit"])
    return [
        ("decision", f"/console/counter?q={number}", f"/api/v1/fines/{number}"),
        ("plate", f"/console/counter?plate={plate}", f"/api/v1/fines?plate={plate}"),
        ("name", f"/console/counter?name={name}", f"/api/v1/fines?name={name}"),
        (
            "receipts",
            "/console/receipts/today",
            f"/api/v1/receipts?issuing_unit={unit}&day={day}&limit=100",
        ),
    ]


async def _session(
    http: aiohttp.ClientSession,
    base: str,
    who: dict[str, str],
    rounds: int,
    fines: int,
    samples: dict[str, list[float]],
    errors: list[str],
    think: float,
) -> None:
    rng = random.Random(who["cookie"])
    day = business_date(datetime.now(UTC)).isoformat()
    page_headers = {"Cookie": f"rs_console={who['cookie']}"}
    json_headers = {"Authorization": f"Bearer {who['token']}"}
    for _ in range(rounds):
        for kind, page, api in _requests(rng, who, fines, day):
            for side, path, headers in (("page", page, page_headers), ("json", api, json_headers)):
                started = time.perf_counter()
                async with http.get(base + path, headers=headers, allow_redirects=False) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors.append(f"{resp.status} {path}")
                samples[f"{side}:{kind}"].append(time.perf_counter() - started)
            # A person reads the page before the next search; random, so the
            # sessions do not march in step.
            await asyncio.sleep(rng.uniform(0.5, 1.5) * think)


async def load(
    base: str,
    staff: list[dict[str, str]],
    rounds: int,
    fines: int,
    seconds_max: float,
    think: float,
) -> tuple[dict[str, list[float]], list[str], float]:
    samples: dict[str, list[float]] = {f"{s}:{k}": [] for s in ("page", "json") for k in KINDS}
    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=len(staff) + 4)
    async with aiohttp.ClientSession(connector=connector) as http:
        warm = [dict(staff[0])]
        await _session(http, base, warm[0], 2, fines, {k: [] for k in samples}, [], 0.0)
        started = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(
                *(_session(http, base, w, rounds, fines, samples, errors, think) for w in staff)
            ),
            seconds_max,
        )
        elapsed = time.perf_counter() - started
    return samples, errors, elapsed


def _api_process(db_url: str, port: int, tmp: str) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "RECONCILER_DATABASE_URL": db_url,
        "RECONCILER_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "RECONCILER_LOG_LEVEL": "warning",
        "RECONCILER_ENV": "dev",
        "RECONCILER_DATA_DIR": tmp,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "reconciler", "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def main_async(
    fines: int, sessions: int, rounds: int, seconds_max: float, think: float
) -> dict[str, Any]:
    with postgres(durable=False) as pg:
        upgrade_to_head(pg.url())
        copy_seconds = copy_fines(pg.libpq_url(), fines, seed=16)
        engine = create_async_engine(pg.url(), pool_size=4, max_overflow=0)
        try:
            await seed_receipts(engine, fines)
            staff = await seed_staff(engine, sessions)
        finally:
            await engine.dispose()
        port = free_port()
        with tempfile.TemporaryDirectory() as tmp:
            api = _api_process(pg.url(), port, tmp)
            try:
                base = f"http://127.0.0.1:{port}"
                deadline = time.monotonic() + 60
                while not http_ok(f"{base}/readyz"):
                    assert time.monotonic() < deadline, "API did not start"
                    await asyncio.sleep(0.2)
                load_before = os.getloadavg()[0]
                samples, errors, elapsed = await load(
                    base, staff, rounds, fines, seconds_max, think
                )
                load_after = os.getloadavg()[0]
            finally:
                api.terminate()
                api.wait(timeout=10)
    result = _result(fines, sessions, rounds, copy_seconds, samples, errors, elapsed)
    # Other work on the machine shows here: the figures are only as good as
    # the cores were free.
    loads = {"load_1m_before": round(load_before, 1), "load_1m_after": round(load_after, 1)}
    return {**result, "think_seconds": think, **loads}


def _p95(samples: list[float]) -> float:
    return round(percentile([s * 1000 for s in samples], 95), 2)


def _result(
    fines: int,
    sessions: int,
    rounds: int,
    copy_seconds: float,
    samples: dict[str, list[float]],
    errors: list[str],
    elapsed: float,
) -> dict[str, Any]:
    pages = [s for k, v in samples.items() if k.startswith("page:") for s in v]
    jsons = [s for k, v in samples.items() if k.startswith("json:") for s in v]
    kinds = {
        kind: {
            "page": {
                **summary_ms(samples[f"page:{kind}"]),
                "p95_ms": _p95(samples[f"page:{kind}"]),
            },
            "json": {
                **summary_ms(samples[f"json:{kind}"]),
                "p95_ms": _p95(samples[f"json:{kind}"]),
            },
        }
        for kind in KINDS
    }
    return {
        "fines": fines,
        "sessions": sessions,
        "rounds": rounds,
        "copy_seconds": round(copy_seconds, 1),
        "requests": len(pages) + len(jsons),
        "seconds": round(elapsed, 1),
        "errors": len(errors),
        "first_errors": errors[:5],
        "page_p95_ms": _p95(pages),
        "json_p95_ms": _p95(jsons),
        "ratio_page_json_p95": round(_p95(pages) / max(_p95(jsons), 0.01), 2),
        "kinds": kinds,
    }


def main() -> None:
    args = parser(
        __doc__, fines=1_000_000, sessions=50, rounds=10, seconds_max=900.0, think_seconds=1.0
    ).parse_args()
    title = "Console: officer pages against their JSON (bench/console.py)"
    result = asyncio.run(
        main_async(args.fines, args.sessions, args.rounds, args.seconds_max, args.think_seconds)
    )
    report(result, args, Section("console", title, _body))


def _body(r: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {kind} | {v['page']['p50_ms']} / **{v['page']['p95_ms']}** / {v['page']['max_ms']}"
        f" | {v['json']['p50_ms']} / {v['json']['p95_ms']} / {v['json']['max_ms']}"
        f" | {round(v['page']['p95_ms'] / max(v['json']['p95_ms'], 0.01), 2)} |"
        for kind, v in r["kinds"].items()
    )
    return f"""
{r["fines"]:,} fines over 20 units (COPY and index build: {r["copy_seconds"]} s),
{r["sessions"]} unit-scoped officer sessions at once, each {r["rounds"]} rounds of the
four counter pages, each page followed by its JSON endpoint: {r["requests"]:,}
requests in {r["seconds"]} s, {r["errors"]} errors. Each session pauses
0.5-1.5 × {r["think_seconds"]} s after each page and its JSON (a person reading
the answer); every request is timed from send to last byte. One `reconciler api` process
and PostgreSQL (fsync off) on the same 2 cores as the load generator; the
machine's 1-minute load average was {r["load_1m_before"]} before the load and
{r["load_1m_after"]} after it{_load_note(r)}.

| page | page p50 / p95 / max (ms) | JSON p50 / p95 / max (ms) | p95 ratio |
| --- | --- | --- | --- |
{rows}
| **all** | p95 **{r["page_p95_ms"]}** | p95 {r["json_p95_ms"]} | **{r["ratio_page_json_p95"]}** |

Targets: page p95 ≤ 150 ms ({_met(r["page_p95_ms"] <= 150)}), page p95 / JSON p95 ≤ 2
({_met(r["ratio_page_json_p95"] <= 2)}). The ratio, measured in the same run under
the same load, is the figure that compares the pages with JSON; the
latencies also count the time a request waits for one of the 2 cores.
"""


def _load_note(r: dict[str, Any]) -> str:
    """Say so when something else ran too: more runnable work than cores."""
    busy = max(r["load_1m_before"], r["load_1m_after"]) > 2
    return " (above 2 on 2 cores: something else was running too)" if busy else ""


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


if __name__ == "__main__":
    main()
