"""Payment saga throughput against a bare Temporal saga (performance target: real /
bare ≥ 0.8).

Real: ``FinePaymentWorkflow`` started with ``workflows.payment.client.start_payment``
on workers built by ``reconciler.worker.build_workers`` with the real
``PaymentActivities``: a debit over HTTP to a bank simulator (its own
process), booking, receipt (signed, gapless series) and notice in a durable
(fsync on) PostgreSQL. Bare: a workflow of four no-op activities with the
same activity options, on workers with the same configuration
(``Worker.config()`` of a real one, the same sandbox and passthrough
treatment). Same Temporal dev server, client, concurrency and number of
worker processes (``bench/saga_worker.py``); this process is the client.

Each round runs ``--sagas`` sagas per variant, closed loop: ``--concurrency``
sagas in flight, each started and awaited to its result. The variants
alternate (which goes first swaps every round) and the median of the
per-round ratios is reported. Fines and payments are registered in the
ledger before the timed part (the API does that before it starts a saga).

    .venv/bin/python bench/saga_throughput.py [--sagas 200] [--rounds 6]
        [--concurrency 32] [--worker-processes 1,2] [--bank rest|vietqr]
        [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bank_adapters.simulators.admin import SimulatorAdmin
from bench.bare_saga import STEPS, BareInput, BareSagaWorkflow
from bench.common import ROOT, Section, parser, report_logged
from bench.saga_support import (
    CpuMeter,
    Seeded,
    Sim,
    count_receipts,
    listener,
    saga_stack,
    seed_payments,
    uptime,
)
from workflows.payment import types as wt
from workflows.payment.client import SagaConfig, start_payment
from workflows.payment.workflow import FinePaymentWorkflow, workflow_id_for

BANK = "sgbank"
RESULT_SECONDS_MAX = 120.0
WARM_UP_SAGAS = 20
WORKER_START_SECONDS_MAX = 60.0


async def closed_loop(count: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def lane() -> None:
        while not queue.empty():
            await asyncio.wait_for(one(queue.get_nowait()), RESULT_SECONDS_MAX)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - started


class Bench:
    def __init__(
        self,
        client: Client,
        engine: AsyncEngine,
        sim: Sim,
        session: aiohttp.ClientSession,
        concurrency: int,
        meters: dict[str, CpuMeter],
        queues: tuple[str, str],
    ) -> None:
        self.client = client
        self.engine = engine
        self.sim = sim
        self.admin = SimulatorAdmin(session, sim.admin_url)
        self.concurrency = concurrency
        self.meters = meters
        self.cpu: dict[str, dict[str, float]] = {"real": {}, "bare": {}}
        self.config = SagaConfig(queues[0], wt.VerifyPolicy())
        self.bare_queue = queues[1]
        self.tag = queues[0][-4:]
        self.paid: list[Seeded] = []

    async def _timed(
        self, kind: str, sagas: int, one: Callable[[int], Awaitable[None]], *, warm_up: bool
    ) -> float:
        meter = self.meters[kind]
        meter.start()
        seconds = await closed_loop(sagas, self.concurrency, one)
        used = meter.stop()
        if not warm_up:
            for part, cpu_seconds in used.items():
                self.cpu[kind][part] = self.cpu[kind].get(part, 0.0) + cpu_seconds
        return seconds

    async def real_round(self, round_number: int, sagas: int) -> float:
        prefix = f"R{self.tag}{round_number}-"
        seeded = await seed_payments(self.engine, self.sim.bank, prefix, sagas)

        async def one(i: int) -> None:
            s = seeded[i]
            await start_payment(self.client, self.config, s.decision_key, s.payment_id)
            handle = self.client.get_workflow_handle_for(
                FinePaymentWorkflow.run, workflow_id_for(s.decision_key)
            )
            result = await handle.result()
            assert result.status == "succeeded", result
            assert result.receipt_number, result

        seconds = await self._timed("real", sagas, one, warm_up=round_number < 0)
        self.paid.extend(seeded)
        return seconds

    async def bare_round(self, round_number: int, sagas: int) -> float:
        async def one(i: int) -> None:
            saga_id = f"bare-{self.tag}-{round_number}-{i}"
            handle = await self.client.start_workflow(
                BareSagaWorkflow.run, BareInput(saga_id), id=saga_id, task_queue=self.bare_queue
            )
            steps = await handle.result()
            assert steps == STEPS, steps

        return await self._timed("bare", sagas, one, warm_up=round_number < 0)

    async def check_money(self) -> dict[str, int]:
        """Ground truth: one debit at the bank and one receipt per saga."""
        debits = [m for m in await self.admin.debits() if m.get("kind") == "debit"]
        receipts = await count_receipts(self.engine, [s.payment_id for s in self.paid])
        assert len(debits) == len(self.paid), (len(debits), len(self.paid))
        assert receipts == len(self.paid), (receipts, len(self.paid))
        return {"bank_debits": len(debits), "receipts": receipts}


async def _rounds(
    bench: Bench, args: argparse.Namespace, processes: int
) -> tuple[list[float], list[float]]:
    real_s: list[float] = []
    bare_s: list[float] = []
    # Warm-up (imports, connections, caches): not counted.
    await bench.real_round(-1 - processes, WARM_UP_SAGAS * processes)
    await bench.bare_round(-1 - processes, WARM_UP_SAGAS * processes)
    for r in range(args.rounds):
        order = [("bare", bare_s), ("real", real_s)]
        for kind, times in order if r % 2 == 0 else reversed(order):
            runner = bench.bare_round if kind == "bare" else bench.real_round
            times.append(await runner(r, args.sagas))
            print(f"round {r} {kind}: {args.sagas / times[-1]:.1f} sagas/s", flush=True)
    return real_s, bare_s


@asynccontextmanager
async def worker_processes(
    kind: str, count: int, config: dict[str, Any], tmp: Path
) -> AsyncIterator[list[psutil.Process]]:
    """``count`` worker processes of one variant (``bench/saga_worker.py``),
    each polling before this yields; stopped with SIGTERM."""
    processes: list[asyncio.subprocess.Process] = []
    try:
        for n in range(count):
            worker_config = {**config, "kind": kind, "log_path": str(tmp / f"{kind}-{n}.log")}
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.saga_worker",
                json.dumps(worker_config),
                stdout=asyncio.subprocess.PIPE,
                cwd=ROOT,
            )
            processes.append(process)
            assert process.stdout is not None
            line = await asyncio.wait_for(process.stdout.readline(), WORKER_START_SECONDS_MAX)
            assert line.strip() == b"ready", line
        yield [psutil.Process(p.pid) for p in processes]
    finally:
        for process in processes:
            if process.returncode is None:
                process.terminate()
        for process in processes:
            await asyncio.wait_for(process.wait(), WORKER_START_SECONDS_MAX)


async def _setup(
    args: argparse.Namespace,
    processes: int,
    infra: dict[str, Any],
    paid: list[Seeded],
) -> dict[str, Any]:
    """Both variants with ``processes`` worker processes each."""
    tmp: Path = infra["tmp"]
    queues = (f"bench-real-{uuid.uuid4().hex[:8]}", f"bench-bare-{uuid.uuid4().hex[:8]}")
    config = {**infra["worker_config"], "real_queue": queues[0], "bare_queue": queues[1]}
    async with (
        worker_processes("real", processes, config, tmp) as real_workers,
        worker_processes("bare", processes, config, tmp) as bare_workers,
    ):
        meters = {
            kind: CpuMeter({"worker process(es)": (workers, False), **infra["shared_parts"]})
            for kind, workers in (("real", real_workers), ("bare", bare_workers))
        }
        bench = Bench(
            infra["client"],
            infra["engine"],
            infra["sim"],
            infra["session"],
            args.concurrency,
            meters,
            queues,
        )
        bench.paid = paid
        real_s, bare_s = await _rounds(bench, args, processes)
    ratios = [b / r for r, b in zip(real_s, bare_s, strict=True)]
    return {
        "worker_processes": processes,
        "real_per_second": [round(args.sagas / s, 1) for s in real_s],
        "bare_per_second": [round(args.sagas / s, 1) for s in bare_s],
        "ratios": [round(x, 3) for x in ratios],
        "median_ratio": round(statistics.median(ratios), 3),
        "real_median_per_second": round(args.sagas / statistics.median(real_s), 1),
        "bare_median_per_second": round(args.sagas / statistics.median(bare_s), 1),
        "cpu_ms_per_saga": {
            kind: {
                part: round(1000 * used / (args.sagas * args.rounds), 1)
                for part, used in parts.items()
            }
            for kind, parts in bench.cpu.items()
        },
    }


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    setups: list[dict[str, Any]] = []
    paid: list[Seeded] = []
    async with saga_stack(args.bank, BANK, tmp) as stack:
        pg, tmp_server, sim = stack.pg, stack.temporal, stack.sim
        infra: dict[str, Any] = {
            "tmp": tmp,
            "engine": stack.engine,
            "sim": sim,
            "session": stack.session,
            "client": await Client.connect(tmp_server.address),
            "worker_config": {
                "temporal_address": tmp_server.address,
                "db_url": pg.url(),
                "data_dir": str(tmp),
                "sim": dataclasses.asdict(sim),
            },
            "shared_parts": {
                "client (this process)": ([psutil.Process()], False),
                "temporal": ([listener(tmp_server.port)], True),
                "postgres": ([listener(pg.port)], True),
                "bank simulator": ([psutil.Process(sim.pid)], False),
            },
        }
        for processes in args.worker_processes:
            setups.append(await _setup(args, processes, infra, paid))
        checker = Bench(infra["client"], stack.engine, sim, stack.session, 1, {}, ("", ""))
        checker.paid = paid
        money = await checker.check_money()
    return {
        "bank_protocol": args.bank,
        "sagas_per_round": args.sagas,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "setups": setups,
        "checked": money,
        "load_average": uptime(),
    }


def _body(r: dict[str, Any]) -> str:
    setups = r["setups"]
    summary = "\n".join(
        f"| {x['worker_processes']} | **{x['real_median_per_second']} /s** | "
        f"{x['bare_median_per_second']} /s | **{x['median_ratio']}** | "
        f"{', '.join(str(v) for v in x['ratios'])} | ≥ 0.8 |"
        for x in setups
    )
    rounds = "\n".join(
        f"| {x['worker_processes']} | {i + 1} | {real} | {bare} | {ratio} |"
        for x in setups
        for i, (real, bare, ratio) in enumerate(
            zip(x["real_per_second"], x["bare_per_second"], x["ratios"], strict=True)
        )
    )
    header = " | ".join(
        f"real, {x['worker_processes']} proc. | bare, {x['worker_processes']} proc." for x in setups
    )
    parts = list(setups[0]["cpu_ms_per_saga"]["real"])
    cpu_rows = "\n".join(
        f"| {part} | "
        + " | ".join(
            f"{x['cpu_ms_per_saga']['real'][part]} | {x['cpu_ms_per_saga']['bare'][part]}"
            for x in setups
        )
        + " |"
        for part in parts
    )
    totals = [
        (sum(x["cpu_ms_per_saga"]["real"].values()), sum(x["cpu_ms_per_saga"]["bare"].values()))
        for x in setups
    ]
    cpu_rows += "\n| total | " + " | ".join(f"{t[0]:.1f} | {t[1]:.1f}" for t in totals) + " |"
    cpu_rows += (
        "\n| bare / real (the ratio if the machine were CPU-bound) | "
        + " | ".join(f"{t[1] / t[0]:.2f} | " for t in totals)
        + " |"
    )
    return f"""
Closed loop, {r["concurrency"]} sagas in flight, {r["sagas_per_round"]} sagas per variant and
round, {r["rounds"]} rounds alternating which variant goes first; one Temporal dev
server, one PostgreSQL (durable, fsync on), the client in the benchmark's
process, and the same number of worker processes for both variants
(`bench/saga_worker.py`). Real: `FinePaymentWorkflow` via `start_payment`
(signal-with-start), `build_workers` with the real activities and the
worker's engine, bank `{r["bank_protocol"]}` simulator in its own process over HTTP on
127.0.0.1 (no webhooks: no API runs here), production logging (info, JSON)
to a file. Bare: 4 no-op activities, same activity options, same worker
configuration. After the run the bank's ground truth is checked:
{r["checked"]["bank_debits"]} debits, {r["checked"]["receipts"]} receipts, one each per saga (warm-ups included).

| worker processes per variant | payment sagas (median round) | bare sagas (median round) | ratio real / bare (median) | per-round ratios | target |
| ---: | ---: | ---: | ---: | --- | --- |
{summary}

CPU per saga (ms, all rounds; where the two cores go):

| process | {header} |
| --- |{" ---: |" * (2 * len(setups))}
{cpu_rows}

| worker processes | round | real /s | bare /s | ratio |
| ---: | ---: | ---: | ---: | ---: |
{rounds}

Load average (1, 5, 15 min) at the end: {r["load_average"]}.
"""


def main() -> None:
    command = parser(__doc__, sagas=200, rounds=6, concurrency=32)
    command.add_argument(
        "--worker-processes",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2],
        help="worker processes per variant; a comma-separated list runs each in turn",
    )
    command.add_argument("--bank", choices=("rest", "vietqr"), default="rest")
    args = command.parse_args()
    if not (
        1 <= args.sagas <= 2_000
        and 1 <= args.rounds <= 10
        and 1 <= args.concurrency <= 256
        and all(1 <= n <= 4 for n in args.worker_processes)
        and len(args.worker_processes) <= 3
    ):
        command.error("bounds: 1..2000 sagas, 1..10 rounds, 1..256 in flight, 1..4 workers")
    section = Section(
        "saga_throughput",
        "Payment saga throughput vs a bare saga (bench/saga_throughput.py)",
        _body,
    )
    report_logged(args, section, lambda tmp: run(args, tmp))


if __name__ == "__main__":
    main()
