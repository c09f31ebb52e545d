"""Payment saga throughput against a bare Temporal saga (DESIGN §5: real /
bare ≥ 0.8).

Real: ``FinePaymentWorkflow`` started with ``workflows.client.start_payment``
on the worker of ``reconciler.worker.build_worker`` with the real
``PaymentActivities``: a debit over HTTP to a bank simulator (its own
process), booking, receipt (signed, gapless series) and notice in a durable
(fsync on) PostgreSQL. Bare: a workflow of four no-op activities with the
same activity options, on a worker with the same configuration
(``Worker.config()`` of the real one, the same sandbox and passthrough
treatment), the same Temporal dev server, client and concurrency.

Each round runs ``--sagas`` sagas per variant, closed loop: ``--concurrency``
sagas in flight, each started and awaited to its result. The variants
alternate (which goes first swaps every round) and the median of the
per-round ratios is reported. Fines and payments are registered in the
ledger before the timed part (the API does that before it starts a saga).

    .venv/bin/python bench/saga_throughput.py [--sagas 300] [--rounds 3]
        [--concurrency 32] [--bank rest|vietqr] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bank_adapters.simulators.admin import SimulatorAdmin
from bench.bare_saga import BareActivities, BareInput, BareSagaWorkflow
from bench.common import postgres, print_json, temporal, write_section
from bench.saga_support import (
    CpuMeter,
    Seeded,
    Sim,
    count_receipts,
    listener,
    log_to_file,
    payment_activities,
    seed_payments,
    simulator,
    uptime,
)
from ledger.migrations import upgrade_to_head
from reconciler.db import create_engine
from reconciler.settings import Settings
from reconciler.worker import build_worker
from workflows import types as wt
from workflows.activities import PaymentActivities
from workflows.client import SagaConfig, start_payment
from workflows.payment import FinePaymentWorkflow, workflow_id_for

BANK = "sgbank"
RESULT_SECONDS_MAX = 120.0
WARM_UP_SAGAS = 20


async def _closed_loop(
    count: int, concurrency: int, one: Callable[[int], Awaitable[None]]
) -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)

    async def lane() -> None:
        while not queue.empty():
            await asyncio.wait_for(one(queue.get_nowait()), RESULT_SECONDS_MAX)

    started = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    return time.perf_counter() - started


def bare_worker(real: Worker, task_queue: str) -> Worker:
    """The real worker's configuration, with the bare workflow and activities;
    the bare workflow's module is passed through the sandbox like ours."""
    config: dict[str, Any] = dict(real.config())
    runner = config["workflow_runner"]
    assert isinstance(runner, SandboxedWorkflowRunner)
    config.update(
        task_queue=task_queue,
        workflows=[BareSagaWorkflow],
        activities=BareActivities().all(),
        workflow_runner=SandboxedWorkflowRunner(
            restrictions=runner.restrictions.with_passthrough_modules("bench.bare_saga")
        ),
    )
    return Worker(**config)


class Bench:
    def __init__(
        self,
        client: Client,
        engine: AsyncEngine,
        activities: PaymentActivities,
        sim: Sim,
        session: aiohttp.ClientSession,
        concurrency: int,
        meter: CpuMeter,
    ) -> None:
        self.client = client
        self.engine = engine
        self.activities = activities
        self.sim = sim
        self.admin = SimulatorAdmin(session, sim.admin_url)
        self.concurrency = concurrency
        self.meter = meter
        self.cpu: dict[str, dict[str, float]] = {"real": {}, "bare": {}}
        self.config = SagaConfig(f"bench-real-{uuid.uuid4().hex[:8]}", wt.VerifyPolicy())
        self.bare_queue = f"bench-bare-{uuid.uuid4().hex[:8]}"
        self.paid: list[Seeded] = []
        # Both workers run for the whole benchmark; the idle one only holds
        # its long polls.
        self.real_worker = build_worker(client, self.config.task_queue, activities)
        self.bare_worker = bare_worker(self.real_worker, self.bare_queue)

    async def _timed(
        self, kind: str, sagas: int, one: Callable[[int], Awaitable[None]], *, warm_up: bool
    ) -> float:
        self.meter.start()
        seconds = await _closed_loop(sagas, self.concurrency, one)
        used = self.meter.stop()
        if not warm_up:
            for part, cpu_seconds in used.items():
                self.cpu[kind][part] = self.cpu[kind].get(part, 0.0) + cpu_seconds
        return seconds

    async def real_round(self, round_number: int, sagas: int) -> float:
        seeded = await seed_payments(self.engine, self.sim.bank, f"R{round_number}-", sagas)

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
            saga_id = f"bare-{round_number}-{i}"
            handle = await self.client.start_workflow(
                BareSagaWorkflow.run, BareInput(saga_id), id=saga_id, task_queue=self.bare_queue
            )
            result = await handle.result()
            assert result.steps == 4, result

        return await self._timed("bare", sagas, one, warm_up=round_number < 0)

    async def check_money(self) -> dict[str, int]:
        """Ground truth: one debit at the bank and one receipt per saga."""
        debits = [m for m in await self.admin.debits() if m.get("kind") == "debit"]
        receipts = await count_receipts(self.engine, [s.payment_id for s in self.paid])
        assert len(debits) == len(self.paid), (len(debits), len(self.paid))
        assert receipts == len(self.paid), (receipts, len(self.paid))
        return {"bank_debits": len(debits), "receipts": receipts}


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    with postgres(durable=True) as pg, temporal() as tmp_server:
        upgrade_to_head(pg.url())
        # The worker's engine as the product builds it (pool size, pre-ping).
        engine = create_engine(Settings(database_url=pg.url(), data_dir=tmp))
        try:
            async with (
                simulator(args.bank, BANK, tmp / "bank.sqlite") as sim,
                aiohttp.ClientSession() as session,
            ):
                client = await Client.connect(tmp_server.address)
                meter = CpuMeter(
                    {
                        "client + worker": (psutil.Process(), False),
                        "temporal": (listener(tmp_server.port), True),
                        "postgres": (listener(pg.port), True),
                        "bank simulator": (psutil.Process(sim.pid), False),
                    }
                )
                bench = Bench(
                    client,
                    engine,
                    payment_activities(engine, session, [sim]),
                    sim,
                    session,
                    args.concurrency,
                    meter,
                )
                real_s: list[float] = []
                bare_s: list[float] = []
                async with bench.real_worker, bench.bare_worker:
                    # Warm-up (imports, connections, caches): not counted.
                    await bench.real_round(-1, WARM_UP_SAGAS)
                    await bench.bare_round(-1, WARM_UP_SAGAS)
                    for r in range(args.rounds):
                        order = [("bare", bare_s), ("real", real_s)]
                        for kind, times in order if r % 2 == 0 else reversed(order):
                            runner = bench.bare_round if kind == "bare" else bench.real_round
                            times.append(await runner(r, args.sagas))
                            rate = args.sagas / times[-1]
                            print(f"round {r} {kind}: {rate:.1f} sagas/s", flush=True)
                money = await bench.check_money()
        finally:
            await engine.dispose()
    ratios = [b / r for r, b in zip(real_s, bare_s, strict=True)]
    return {
        "bank_protocol": args.bank,
        "sagas_per_round": args.sagas,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "real_per_second": [round(args.sagas / s, 1) for s in real_s],
        "bare_per_second": [round(args.sagas / s, 1) for s in bare_s],
        "ratios": [round(x, 3) for x in ratios],
        "median_ratio": round(statistics.median(ratios), 3),
        "real_median_per_second": round(args.sagas / statistics.median(real_s), 1),
        "bare_median_per_second": round(args.sagas / statistics.median(bare_s), 1),
        "checked": money,
        "cpu_ms_per_saga": {
            kind: {
                part: round(1000 * used / (args.sagas * args.rounds), 1)
                for part, used in parts.items()
            }
            for kind, parts in bench.cpu.items()
        },
        "load_average": uptime(),
    }


def _body(r: dict[str, Any]) -> str:
    rounds = "\n".join(
        f"| {i + 1} | {real} | {bare} | {ratio} |"
        for i, (real, bare, ratio) in enumerate(
            zip(r["real_per_second"], r["bare_per_second"], r["ratios"], strict=True)
        )
    )
    cpu = r["cpu_ms_per_saga"]
    cpu_rows = "\n".join(
        f"| {part} | {cpu['real'][part]} | {cpu['bare'][part]} |" for part in cpu["real"]
    )
    total_real, total_bare = sum(cpu["real"].values()), sum(cpu["bare"].values())
    cpu_rows += f"\n| total | {total_real:.1f} | {total_bare:.1f} |"
    return f"""
Closed loop, {r["concurrency"]} sagas in flight, {r["sagas_per_round"]} sagas per variant and
round, {r["rounds"]} rounds alternating which variant goes first; one Temporal dev
server, one PostgreSQL (durable, fsync on), one client and one worker process
(the benchmark's) for both. Real: `FinePaymentWorkflow` via `start_payment`
(signal-with-start), `build_worker` with the real activities, bank
`{r["bank_protocol"]}` simulator in its own process over HTTP on 127.0.0.1 (no
webhooks: no API runs here), production logging (info, JSON) to a file.
Bare: 4 no-op activities, same activity options, same worker configuration.
After the run the bank's ground truth is checked: {r["checked"]["bank_debits"]} debits,
{r["checked"]["receipts"]} receipts, one each per saga (warm-up included).

| what | result | target |
| --- | --- | --- |
| payment sagas completed per second (median round) | **{r["real_median_per_second"]} /s** | — |
| bare 4-no-op-activity sagas per second (median round) | {r["bare_median_per_second"]} /s | — |
| ratio real / bare (median of per-round ratios) | **{r["median_ratio"]}** | ≥ 0.8 |

| round | real /s | bare /s | ratio |
| ---: | ---: | ---: | ---: |
{rounds}

CPU per saga (ms, all rounds; where the two cores go):

| process | real saga | bare saga |
| --- | ---: | ---: |
{cpu_rows}

Load average (1, 5, 15 min) at the end: {r["load_average"]}.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sagas", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--bank", choices=("rest", "vietqr"), default="rest")
    parser.add_argument("--no-write", action="store_true", help="do not update docs/benchmarks.md")
    args = parser.parse_args()
    if not (1 <= args.sagas <= 2_000 and 1 <= args.rounds <= 10 and 1 <= args.concurrency <= 256):
        parser.error("bounds: 1..2000 sagas, 1..10 rounds, 1..256 in flight")
    with tempfile.TemporaryDirectory(prefix="bench-saga-") as tmp:
        stream = log_to_file(Path(tmp) / "worker.log")
        try:
            result = asyncio.run(run(args, Path(tmp)))
        finally:
            stream.close()
    print_json(result)
    if not args.no_write:
        write_section(
            "saga_throughput",
            "Payment saga throughput vs a bare saga (bench/saga_throughput.py)",
            _body(result),
        )


if __name__ == "__main__":
    main()
