"""Scale-out of the payment saga: several worker and API processes on one
Temporal dev server and one PostgreSQL, against a bare-saga ceiling measured
in the same run, and where each saga's CPU goes.

For each setup (``--workers`` × ``--api-procs``) a fresh
``reconciler dev --workers N --api-procs M`` runs (the supervisor as an
operator starts it: durable PostgreSQL, Temporal dev server, both bank
simulators with webhooks, prober), and this process is the clients:

* real: a payment started through the API (``POST /api/v1/fines/{n}/payments``,
  the API processes taken in turn), awaited to its result (succeeded, with a
  receipt) from Temporal; the fines are registered through the API before
  the timed part. Bank ``sgbank`` (REST, webhooks to the API);
* bare: the four-no-op-activity saga (``bench/bare_saga.py``) started from
  this process on N bare worker processes (``bench/saga_worker.py``) polling
  the same Temporal server: what the same number of worker processes can do
  when the activities do nothing.

Closed loop, ``--concurrency`` sagas in flight, ``--sagas`` per variant and
round, the variants alternating which goes first; medians of ``--rounds``.
CPU seconds per process (``psutil`` reads ``/proc/<pid>/stat``) are summed
per process kind and divided by the sagas: the figure the other jobs on this
shared machine hurt least. PostgreSQL's writes per payment come from
``pg_stat_database`` and the WAL position before and after the real rounds
(background loops included: prober, sweeper, outbox).

    .venv/bin/python bench/saga_scale.py [--workers 1,2,4] [--api-procs 1,2]
        [--sagas 150] [--rounds 3] [--concurrency 32] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import psycopg
from temporalio.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bare_saga import STEPS, BareInput, BareSagaWorkflow
from bench.common import ROOT, Section, parser, report_logged
from bench.saga_support import CpuMeter, uptime
from bench.saga_throughput import closed_loop, worker_processes
from domain.decision_numbers import normalise_decision_number
from workflows.payment.workflow import FinePaymentWorkflow, workflow_id_for

BANK = "sgbank"
START_SECONDS_MAX = 180.0
STOP_SECONDS_MAX = 60.0
# pg_stat_database is flushed by each backend when idle, at most this late.
PG_STATS_FLUSH_SECONDS = 11.0
PG_STATS = (
    "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted,"
    " pg_current_wal_lsn() - '0/0'::pg_lsn AS wal_bytes"
    " FROM pg_stat_database WHERE datname = current_database()"
)
KINDS = ("worker", "api", "temporal", "postgres", "simulators", "prober", "client")


@contextlib.asynccontextmanager
async def dev_stack(data_dir: Path, workers: int, api_procs: int) -> AsyncIterator[dict[str, Any]]:
    """``reconciler dev`` in ``data_dir``; yields its dev.json once written."""
    data_dir.mkdir(parents=True)  # noqa: ASYNC240 (once per setup, before the timed part)
    dev_json = data_dir / "dev.json"
    # No seed story: it leaves a bank's link down on purpose (the outage the
    # operator's console shows), and this benchmark pays through that bank.
    argv = [sys.executable, "-m", "reconciler", "dev", "--data-dir", str(data_dir), "--no-seed"]
    with (data_dir / "supervisor.out").open("ab") as out:
        process = subprocess.Popen(
            [*argv, "--workers", str(workers), "--api-procs", str(api_procs)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "RECONCILER_ENV": "dev"},
        )
    try:
        deadline = time.monotonic() + START_SECONDS_MAX
        while not dev_json.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"reconciler dev did not start: see {data_dir}/supervisor.out")
            await asyncio.sleep(0.2)
        yield json.loads(dev_json.read_text())
    finally:
        process.send_signal(signal.SIGINT)
        try:
            await asyncio.to_thread(process.wait, STOP_SECONDS_MAX)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def process_kinds(info: dict[str, Any]) -> dict[str, list[psutil.Process]]:
    """The stack's processes by kind, from dev.json's pids (``worker-2`` is
    a worker, ``sim-sgbank`` a simulator...)."""
    kinds: dict[str, list[psutil.Process]] = {k: [] for k in KINDS}
    for name, pid in info["pids"].items():
        kind = next((k for k in KINDS if name.startswith(k)), "simulators")
        kinds[kind].append(psutil.Process(pid))
    kinds["client"] = [psutil.Process()]
    return kinds


class Api:
    """The API processes of the stack, taken in turn, with the dev token."""

    def __init__(self, session: aiohttp.ClientSession, info: dict[str, Any]) -> None:
        self.session = session
        self.urls: list[str] = info["api_urls"]
        self.headers = {"Authorization": f"Bearer {info['api_token']}"}
        self.calls = 0

    async def post(self, path: str, body: dict[str, Any], key: str | None = None) -> Any:
        url = self.urls[self.calls % len(self.urls)] + path
        self.calls += 1
        headers = {**self.headers, **({"Idempotency-Key": key} if key else {})}
        async with self.session.post(url, json=body, headers=headers) as reply:
            answer = await reply.json()
            if reply.status not in (200, 201, 202):
                raise RuntimeError(f"POST {path}: {reply.status} {answer}")
            return answer


class Setup:
    """One stack: its rounds of both variants, CPU per kind, writes."""

    def __init__(self, api: Api, client: Client, bare_queue: str, args: argparse.Namespace):
        self.api = api
        self.client = client
        self.bare_queue = bare_queue
        self.args = args
        self.tag = uuid.uuid4().hex[:6]

    async def fines(self, round_number: int) -> list[str]:
        numbers = [f"S{self.tag}{round_number}-{i:04d}/QĐ-XPHC" for i in range(self.args.sagas)]

        async def one(i: int) -> None:
            fine = {
                "decision_number": numbers[i],
                "amount_vnd": 500_000 + 1_000 * i,
                "violator_name": "Nguyễn Văn A",
                "plate": "29A-123.45",
                "issuing_unit": f"Đội CSGT số {1 + i % 4}",
                "violation": "Vượt đèn đỏ",
            }
            await self.api.post("/api/v1/fines", fine)

        await closed_loop(len(numbers), self.args.concurrency, one)
        return numbers

    def real(self, numbers: list[str]) -> Callable[[int], Awaitable[None]]:
        async def one(i: int) -> None:
            path = "/api/v1/fines/" + urllib.parse.quote(numbers[i], safe="") + "/payments"
            body = {"bank": BANK, "payer_account": "123456789"}
            await self.api.post(path, body, key=str(uuid.uuid4()))
            handle = self.client.get_workflow_handle_for(
                FinePaymentWorkflow.run, workflow_id_for(normalise_decision_number(numbers[i]))
            )
            result = await handle.result()
            assert result.status == "succeeded", result
            assert result.receipt_number, result

        return one

    def bare(self, round_number: int) -> Callable[[int], Awaitable[None]]:
        async def one(i: int) -> None:
            saga_id = f"bare-{self.tag}-{round_number}-{i}"
            handle = await self.client.start_workflow(
                BareSagaWorkflow.run, BareInput(saga_id), id=saga_id, task_queue=self.bare_queue
            )
            assert await handle.result() == STEPS

        return one


async def _pg_stats(url: str) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        cur = await conn.execute(PG_STATS)
        row = await cur.fetchone()
        assert row is not None
        assert cur.description is not None
        return {col.name: int(v) for col, v in zip(cur.description, row, strict=True)}


async def _rounds(
    setup: Setup, meters: dict[str, CpuMeter], cpu: dict[str, dict[str, float]]
) -> dict[str, list[float]]:
    """Warm-up, then the rounds, alternating which variant goes first;
    CPU seconds per kind summed into ``cpu`` (warm-up excluded)."""
    args = setup.args
    seconds: dict[str, list[float]] = {"real": [], "bare": []}
    warm = await setup.fines(-1)
    await closed_loop(min(20, len(warm)), args.concurrency, setup.real(warm))
    await closed_loop(20, args.concurrency, setup.bare(-1))
    for r in range(args.rounds):
        numbers = await setup.fines(r)
        order = ["bare", "real"] if r % 2 == 0 else ["real", "bare"]
        for variant in order:
            one = setup.real(numbers) if variant == "real" else setup.bare(r)
            meters[variant].start()
            seconds[variant].append(await closed_loop(args.sagas, args.concurrency, one))
            for kind, used in meters[variant].stop().items():
                cpu[variant][kind] = cpu[variant].get(kind, 0.0) + used
            print(f"  round {r} {variant}: {args.sagas / seconds[variant][-1]:.1f} /s", flush=True)
    return seconds


async def one_setup(args: argparse.Namespace, workers: int, api_procs: int, tmp: Path) -> Any:
    print(f"{workers} worker(s), {api_procs} API process(es)", flush=True)
    load_before = os.getloadavg()
    data_dir = tmp / f"w{workers}-a{api_procs}"
    async with dev_stack(data_dir, workers, api_procs) as info, aiohttp.ClientSession() as session:
        client = await Client.connect(info["temporal_address"])
        bare_queue = f"bench-bare-{uuid.uuid4().hex[:8]}"
        sim = info["banks"][BANK]
        config = {
            "temporal_address": info["temporal_address"],
            "db_url": info["postgres_url"].replace("postgresql://", "postgresql+psycopg://", 1),
            "data_dir": str(data_dir),
            "sim": {"bank": BANK, "pid": info["pids"].get(f"sim-{BANK}", 0), **sim},
            "real_queue": f"bench-unused-{bare_queue}",
            "bare_queue": bare_queue,
        }
        async with worker_processes("bare", workers, config, data_dir) as bare_workers:
            kinds = process_kinds(info)
            stack_kinds = {k: (ps, k == "postgres") for k, ps in kinds.items() if k != "worker"}
            meters = {
                "real": CpuMeter({"worker": (kinds["worker"], False), **stack_kinds}),
                "bare": CpuMeter({"worker": (bare_workers, False), **stack_kinds}),
            }
            setup = Setup(Api(session, info), client, bare_queue, args)
            cpu: dict[str, dict[str, float]] = {"real": {}, "bare": {}}
            pg_before = await _pg_stats(info["postgres_url"])
            seconds = await _rounds(setup, meters, cpu)
            await asyncio.sleep(PG_STATS_FLUSH_SECONDS)
            pg_after = await _pg_stats(info["postgres_url"])
    return _setup_result(args, workers, api_procs, seconds, cpu, pg_before, pg_after, load_before)


def _setup_result(
    args: argparse.Namespace,
    workers: int,
    api_procs: int,
    seconds: dict[str, list[float]],
    cpu: dict[str, dict[str, float]],
    pg_before: dict[str, int],
    pg_after: dict[str, int],
    load_before: tuple[float, float, float],
) -> dict[str, Any]:
    sagas = args.sagas * args.rounds
    ratios = [b / r for r, b in zip(seconds["real"], seconds["bare"], strict=True)]
    # The payments of the warm-up and the fines' registrations count too.
    payments = sagas + min(20, args.sagas)
    return {
        "workers": workers,
        "api_procs": api_procs,
        "real_per_second": round(args.sagas / statistics.median(seconds["real"]), 1),
        "bare_per_second": round(args.sagas / statistics.median(seconds["bare"]), 1),
        "ratios": [round(x, 3) for x in ratios],
        "median_ratio": round(statistics.median(ratios), 3),
        "cpu_ms_per_saga": {
            variant: {k: round(1000 * s / sagas, 1) for k, s in parts.items()}
            for variant, parts in cpu.items()
        },
        "pg_per_payment": {
            k: round((pg_after[k] - pg_before[k]) / payments, 1) for k in sorted(pg_before)
        },
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    setups = [
        await one_setup(args, workers, api_procs, tmp)
        for workers in args.workers
        for api_procs in args.api_procs
    ]
    return {
        "sagas_per_round": args.sagas,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "setups": setups,
        "load_average": uptime(),
    }


def _body(r: dict[str, Any]) -> str:
    rows, cpu_rows, pg_rows = [], [], []
    for x in r["setups"]:
        real, bare = x["cpu_ms_per_saga"]["real"], x["cpu_ms_per_saga"]["bare"]
        load = f"{x['load_before'][0]:.1f} → {x['load_after'][0]:.1f}"
        rows.append(
            f"| {x['workers']} | {x['api_procs']} | **{x['real_per_second']}** | "
            f"{x['bare_per_second']} | **{x['median_ratio']}** | "
            f"{', '.join(str(v) for v in x['ratios'])} | {load} |"
        )
        cells = " | ".join(f"{real.get(k, 0.0)}" for k in KINDS)
        cpu_rows.append(
            f"| {x['workers']} | {x['api_procs']} | {cells} | {sum(real.values()):.1f} | "
            f"{bare.get('worker', 0.0)} | {bare.get('temporal', 0.0)} | {sum(bare.values()):.1f} |"
        )
        pg = x["pg_per_payment"]
        pg_rows.append(
            f"| {x['workers']} | {x['api_procs']} | {pg['xact_commit']} | {pg['tup_inserted']} | "
            f"{pg['tup_updated']} | {pg['tup_deleted']} | {pg['wal_bytes'] / 1024:.1f} |"
        )
    nl = "\n"
    return f"""
Fresh `reconciler dev --workers N --api-procs M` per row (durable PostgreSQL,
one Temporal dev server, both bank simulators, prober), this process the
clients: {r["concurrency"]} sagas in flight, {r["sagas_per_round"]} per variant and round,
{r["rounds"]} rounds alternating which variant goes first (medians). Real: payments
started through the API processes in turn (`POST .../payments`, bank `{BANK}`,
REST with webhooks), each awaited to its receipt. Bare: the four-no-op saga on
N bare worker processes against the same Temporal server, same run. The
machine's 2 cores are shared with other engineers' jobs: the 1-minute load
average before → after each row is shown; CPU per saga is the figure the load
hurts least.

| workers | API procs | payment sagas /s | bare sagas /s | ratio real / bare | per-round ratios | load 1 min |
| ---: | ---: | ---: | ---: | ---: | --- | --- |
{nl.join(rows)}

CPU per payment saga (ms, by process kind, all rounds), and the bare saga's:

| workers | API procs | {" | ".join(KINDS)} | total | bare: worker | bare: temporal | bare: total |
| ---: | ---: |{" ---: |" * (len(KINDS) + 4)}
{nl.join(cpu_rows)}

PostgreSQL per payment (`pg_stat_database` and the WAL position, before and
after the real rounds; everything the stack did meanwhile included):

| workers | API procs | commits | rows inserted | rows updated | rows deleted | WAL kB |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: |
{nl.join(pg_rows)}

Load average (1, 5, 15 min) at the end: {r["load_average"]}.
"""


SECTION = Section("saga_scale", "Scale-out: workers × API processes (bench/saga_scale.py)", _body)


def _counts(text: str) -> list[int]:
    return [int(n) for n in text.split(",")]


def main() -> None:
    command = parser(__doc__, sagas=150, rounds=3, concurrency=32)
    command.add_argument("--workers", type=_counts, default=[1, 2, 4])
    command.add_argument("--api-procs", type=_counts, default=[1, 2])
    args = command.parse_args()
    if not (
        1 <= args.sagas <= 2_000
        and 1 <= args.rounds <= 10
        and 1 <= args.concurrency <= 256
        and all(1 <= n <= 4 for n in args.workers + args.api_procs)
        and len(args.workers) * len(args.api_procs) <= 8
    ):
        command.error("bounds: 1..2000 sagas, 1..10 rounds, 1..256 in flight, 1..4 processes")
    report_logged(args, SECTION, lambda tmp: run(args, tmp))


if __name__ == "__main__":
    main()
