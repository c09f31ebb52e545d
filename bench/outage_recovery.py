"""Recovery after a bank link outage (performance targets: 500 payments in doubt → all
receipted ≤ 10 s after the link is back, 5,000 → ≤ 15 s; the seed story's
citizen waited about an hour).

The story, on the production worker process (``reconciler worker``: real
activities and its housekeeping loops), the production ``VerifyPolicy``, a
bank simulator in its own process and a durable PostgreSQL; this process
plays the portal (payments), the prober (the link-recovery event) and the
observer (receipts):

1. ``--payments`` fines get a payment each (ledger functions, as the API);
   the bank books every debit but its answers are garbled (simulator fault
   ``malformed``), so each payment is *verifying*: debited, and we do not
   know it. (``lost_response`` or ``timeout_after_debit`` would tell the
   same story, but after five of them our circuit breaker rightly stops
   sending, and the other payments would be declined as never sent);
2. the link drops (fault ``link_down``): status checks fail, and the
   workflows back off towards ``poll_interval_seconds_max`` for
   ``--outage-seconds``;
3. the link comes back (faults cleared) and, in the woken run, the
   link-recovery event is sent at once
   (``workflows.payment.client.start_link_recovery``, what the prober calls when
   its probes see the link back): ``LinkRecoveryWorkflow`` asks the bank
   about every payment in doubt, books and receipts in bulk what it
   confirms, then wakes every payment workflow;
4. we count receipts in the ledger every ``POLL_SECONDS`` until all are
   issued: seconds from link back to the last receipt.

A second run does the same without the event (plain polling backoff), for
comparison. The bank sends no webhooks (the VietQR bank has none; the REST
simulator is given no webhook URL), so only a status check can resolve a
payment. The bank's ground truth is checked after each run: one debit and
one receipt per payment, none declined.

    .venv/bin/python bench/outage_recovery.py [--payments 500]
        [--outage-seconds 70] [--bank vietqr|rest] [--skip-unwoken] [--no-write]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import psutil
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bank_adapters.simulators.admin import SimulatorAdmin
from bench.common import Section, parser, percentile, report_logged
from bench.saga_support import (
    CpuMeter,
    Seeded,
    Sim,
    listener,
    saga_stack,
    seed_payments,
    uptime,
    worker_process,
)
from workflows.payment import types as wt
from workflows.payment.client import SagaConfig, start_link_recovery, start_payment
from workflows.payment.recovery_activities import RECOVERY_BATCH, RECOVERY_BATCHES_IN_FLIGHT

BANK = "hnbank"
START_CONCURRENCY = 32
POLL_SECONDS = 0.1
PROGRESS_SECONDS = 15.0
# Waits, per payment on top of a fixed part (a shared machine under load
# starts about 3 sagas a second): starting the sagas and their
# garbled debits, then (without the event) every workflow's own check.
VERIFYING_SECONDS_MAX = 180.0
RECEIPTED_SECONDS_MAX = 240.0
SECONDS_PER_PAYMENT_MAX = 0.5


@dataclass(frozen=True)
class Run:
    woken: bool
    payments: int
    outage_seconds: float
    wake_call_seconds: float | None
    workflows_woken: int | None
    settled_in_bulk: int | None
    first_receipt_seconds: float
    p50_seconds: float
    p90_seconds: float
    all_receipted_seconds: float
    cpu_seconds: dict[str, float]


async def _statuses(engine: AsyncEngine, ids: list[UUID]) -> dict[str, int]:
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT status, count(*) AS n FROM payments WHERE id = ANY(:ids) GROUP BY status"
                ),
                {"ids": ids},
            )
        ).all()
    return {r.status: int(r.n) for r in rows}


async def _receipted(engine: AsyncEngine, ids: list[UUID]) -> set[UUID]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT payment_id FROM receipts WHERE payment_id = ANY(:ids)"), {"ids": ids}
        )
        return {r.payment_id for r in rows}


def _say(line: str) -> None:
    """A progress line on stderr (the run takes minutes at 5,000)."""
    print(f"[{time.strftime('%H:%M:%S')}] {line}", file=sys.stderr, flush=True)


async def _until(what: str, seconds_max: float, probe: Any, progress: Any = None) -> None:
    """Poll ``probe`` until true; every ``PROGRESS_SECONDS`` say how far
    ``progress()`` (a short text) has got."""
    began = time.monotonic()
    deadline, said = began + seconds_max, began
    while not await probe():
        now = time.monotonic()
        if now > deadline:
            raise TimeoutError(f"gave up after {seconds_max:.0f} s waiting for {what}")
        if progress is not None and now - said >= PROGRESS_SECONDS:
            said = now
            _say(f"waiting {now - began:.0f} s for {what}: {await progress()}")
        await asyncio.sleep(POLL_SECONDS)


@dataclass
class Outage:
    client: Client
    engine: AsyncEngine
    config: SagaConfig
    sim: Sim
    admin: SimulatorAdmin
    payments: int
    meter: CpuMeter

    async def _start_all(self, seeded: list[Seeded]) -> None:
        queue: asyncio.Queue[Seeded] = asyncio.Queue()
        for s in seeded:
            queue.put_nowait(s)

        async def lane() -> None:
            while not queue.empty():
                s = queue.get_nowait()
                await start_payment(self.client, self.config, s.decision_key, s.payment_id)

        await asyncio.gather(*(lane() for _ in range(START_CONCURRENCY)))

    async def run(self, prefix: str, outage_seconds: float, *, wake: bool) -> Run:
        # Garbled answers before the payments exist: the worker's sweeper
        # starts a payment it finds without its workflow, and the first of
        # thousands could otherwise be sent (and answered) before this fault.
        await self.admin.add_fault("malformed")
        run = "with the link-recovery event" if wake else "polling alone"
        _say(f"run {run}: seeding {self.payments} payments")
        seeded = await seed_payments(self.engine, self.sim.bank, prefix, self.payments)
        ids = [s.payment_id for s in seeded]
        await self._start_all(seeded)
        _say(f"{len(ids)} payment workflows started")

        async def all_verifying() -> bool:
            return (await _statuses(self.engine, ids)).get("verifying", 0) == len(ids)

        async def counts() -> str:
            return str(await _statuses(self.engine, ids))

        slack = SECONDS_PER_PAYMENT_MAX * len(ids)
        await _until(
            "every payment to be verifying", VERIFYING_SECONDS_MAX + slack, all_verifying, counts
        )
        _say(f"all verifying; link down for {outage_seconds:g} s")
        await self.admin.add_fault("link_down")
        down_at = time.monotonic()
        await asyncio.sleep(max(0.0, outage_seconds - (time.monotonic() - down_at)))
        statuses = await _statuses(self.engine, ids)
        assert statuses == {"verifying": len(ids)}, statuses
        await self.admin.clear_faults()
        back_at = time.monotonic()
        self.meter.start()
        waking = asyncio.create_task(self._wake(back_at)) if wake else None
        seen: dict[UUID, float] = {}

        async def all_receipted() -> bool:
            # Only the payments still waiting: the probe stays cheap.
            now = time.monotonic() - back_at
            waiting = [i for i in ids if i not in seen]
            for payment_id in await _receipted(self.engine, waiting):
                seen[payment_id] = now
            return len(seen) == len(ids)

        async def receipted() -> str:
            return f"{len(seen)} of {len(ids)} receipted"

        _say("link back")
        await _until(
            "every payment to be receipted", RECEIPTED_SECONDS_MAX + slack, all_receipted, receipted
        )
        cpu = self.meter.stop()
        _say(f"all {len(ids)} receipted {max(seen.values()):.1f} s after the link came back")
        woken, settled, wake_call = await waking if waking is not None else (None, None, None)
        await self._check_money(ids)
        times = sorted(seen.values())
        return Run(
            woken=wake,
            payments=len(ids),
            outage_seconds=round(back_at - down_at, 1),
            wake_call_seconds=round(wake_call, 2) if wake_call is not None else None,
            workflows_woken=woken,
            settled_in_bulk=settled,
            first_receipt_seconds=round(times[0], 2),
            p50_seconds=round(percentile(times, 50), 2),
            p90_seconds=round(percentile(times, 90), 2),
            all_receipted_seconds=round(times[-1], 2),
            cpu_seconds={k: round(v, 1) for k, v in cpu.items()},
        )

    async def _wake(self, back_at: float) -> tuple[int, int, float]:
        """What the prober does once it sees the link back (it runs in its
        own process in production, as here: not in the worker's): start the
        link recovery. Waits for its report (workflows woken, payments
        settled in bulk) and the seconds until it ended."""
        handle = await start_link_recovery(self.client, self.config.task_queue, self.sim.bank)
        report = await handle.result()
        return report.woken, report.settled, time.monotonic() - back_at

    async def _check_money(self, ids: list[UUID]) -> None:
        """Ground truth: the bank booked each payment once; each has one
        receipt; nothing was declined."""
        keys = {f"fp-{i.hex}" for i in ids}
        debits = [
            m
            for m in await self.admin.debits()
            if m.get("kind") == "debit" and m.get("idempotency_key") in keys
        ]
        statuses = await _statuses(self.engine, ids)
        assert statuses == {"succeeded": len(ids)}, statuses
        assert len(await _receipted(self.engine, ids)) == len(ids)
        if self.sim.protocol == "rest":
            assert len(debits) == len(ids), (len(debits), len(ids))
        assert len(debits) == len(ids), (len(debits), len(ids))
        assert all(m.get("status") == "succeeded" for m in debits)


def recovery_passes(worker_log: Path) -> list[dict[str, Any]]:
    """What each pass of the link recovery logged (``bank.link_recovery.pass``):
    its counts and the seconds of each step (list, status, settle, wake)."""
    passes = []
    for line in worker_log.read_text(errors="replace").splitlines():
        if '"bank.link_recovery.pass"' in line:
            entry = json.loads(line)
            passes.append({k: entry.get(k) for k in ("in_doubt", "settled", "woken", "seconds")})
    return passes


def backoff_expectation(policy: wt.VerifyPolicy, outage_seconds: float) -> tuple[float, float]:
    """Without the event: where each workflow's polling stands when the link
    comes back. Polls happen at the cumulative sums of the doubling
    intervals; the wait is from link-back to the next poll. Returns (the
    interval in force, the worst-case wait) for a payment that started
    verifying when the outage began."""
    interval, at = policy.poll_interval_seconds_initial, 0.0
    while at + interval <= outage_seconds:
        at += interval
        interval = min(interval * 2, policy.poll_interval_seconds_max)
    return interval, at + interval - outage_seconds


async def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    runs: list[Run] = []
    async with saga_stack(args.bank, BANK, tmp) as stack:
        pg, tmp_server, sim = stack.pg, stack.temporal, stack.sim
        client = await Client.connect(tmp_server.address)
        config = SagaConfig(f"bench-outage-{uuid.uuid4().hex[:8]}", wt.VerifyPolicy())
        async with worker_process(
            pg.url(), tmp_server.address, config.task_queue, [sim], tmp
        ) as worker:
            meter = CpuMeter(
                {
                    "worker process": ([worker], False),
                    "temporal": ([listener(tmp_server.port)], True),
                    "postgres": ([listener(pg.port)], True),
                    "bank simulator": ([psutil.Process(sim.pid)], False),
                    "benchmark (prober's wake, observer)": ([psutil.Process()], False),
                }
            )
            admin = SimulatorAdmin(stack.session, sim.admin_url)
            outage = Outage(client, stack.engine, config, sim, admin, args.payments, meter)
            runs.append(await outage.run("W", args.outage_seconds, wake=True))
            print(runs[-1], flush=True)
            if not args.skip_unwoken:
                runs.append(await outage.run("U", args.outage_seconds, wake=False))
                print(runs[-1], flush=True)
    passes = recovery_passes(tmp / "worker.stderr.log")
    policy = wt.VerifyPolicy()
    interval, worst = backoff_expectation(policy, args.outage_seconds)
    return {
        "bank_protocol": args.bank,
        "payments": args.payments,
        "policy": {
            "poll_interval_seconds_initial": policy.poll_interval_seconds_initial,
            "poll_interval_seconds_max": policy.poll_interval_seconds_max,
        },
        "runs": [r.__dict__ for r in runs],
        "recovery_passes": passes,
        "unwoken_expected_interval_seconds": interval,
        "unwoken_expected_worst_wait_seconds": round(worst, 1),
        "load_average": uptime(),
    }


def target(payments: int) -> str:
    """The target for this many payments (docs/benchmarks.md)."""
    return "≤ 10" if payments <= 500 else "≤ 15" if payments <= 5_000 else "—"


def _ratio(w: dict[str, Any], u: dict[str, Any] | None) -> str:
    """Polling alone against the event, and the CPU each recovered payment
    cost (the figure the machine's other jobs hurt least)."""
    cpu = sum(w["cpu_seconds"].values())
    line = (
        f"CPU, all processes, from link back to the last receipt: {cpu:.1f} s, "
        f"{1000 * cpu / w['payments']:.1f} ms per payment with the event"
    )
    if u is None:
        return line + "."
    ratio = u["all_receipted_seconds"] / w["all_receipted_seconds"]
    return (
        f"**Polling alone took {ratio:.1f} times as long** to receipt every payment "
        f"({u['all_receipted_seconds']} s against {w['all_receipted_seconds']} s, same run). "
        + line
        + f", {1000 * sum(u['cpu_seconds'].values()) / u['payments']:.1f} ms by polling alone."
    )


def _steps(r: dict[str, Any]) -> str:
    """The woken run's recovery pass, step by step (from the worker's log)."""
    passes = [p for p in r.get("recovery_passes", []) if p.get("seconds")]
    if not passes:
        return ""
    first = passes[0]
    steps = ", ".join(f"{step} {sec:g} s" for step, sec in first["seconds"].items())
    return (
        f"Its pass over {first['in_doubt']} payments in doubt, step by step (the "
        f"worker's log line `bank.link_recovery.pass`): {steps}."
    )


def _body(r: dict[str, Any]) -> str:
    runs = {("woken" if x["woken"] else "unwoken"): x for x in r["runs"]}
    w = runs["woken"]
    rows = [
        f"| link-recovery event sent (`start_link_recovery`) | {w['payments']} | "
        f"{w['first_receipt_seconds']} | {w['p50_seconds']} | {w['p90_seconds']} | "
        f"**{w['all_receipted_seconds']}** | {target(w['payments'])} |"
    ]
    u = runs.get("unwoken")
    if u is not None:
        rows.append(
            f"| no event: polling backoff only | {u['payments']} | "
            f"{u['first_receipt_seconds']} | {u['p50_seconds']} | {u['p90_seconds']} | "
            f"{u['all_receipted_seconds']} | — |"
        )
    table = "\n".join(rows)
    policy = r["policy"]
    cpu_rows = "\n".join(
        f"| {part} | {seconds} | {u['cpu_seconds'].get(part, '—') if u else '—'} |"
        for part, seconds in w["cpu_seconds"].items()
    )
    return f"""
{r["payments"]} payments in doubt at the `{r["bank_protocol"]}` bank simulator (own process,
127.0.0.1, no webhooks): the bank booked each debit but its answers were
garbled (fault `malformed`: outcome unknown, payment verifying), then the
link dropped for {w["outage_seconds"]} s and came back. The production worker
process (`reconciler worker`, one process, with its sweeper and outbox
loops), production `VerifyPolicy` (polls every
{policy["poll_interval_seconds_initial"]:g} s doubling to {policy["poll_interval_seconds_max"]:g} s), durable PostgreSQL; this benchmark's process
plays the prober (sends the event) and counts receipts every {POLL_SECONDS:g} s.
Seconds are from the link coming back.

| run | payments | first receipt s | p50 s | p90 s | all receipted s | target |
| --- | ---: | ---: | ---: | ---: | ---: | --- |
{table}

{_ratio(w, u)}

The event started `LinkRecoveryWorkflow`: it asked the bank about every
payment in doubt at once (256 status checks in flight, no ledger read per
payment; the VietQR adapter answers them from one pass over the history),
settled and receipted {w["settled_in_bulk"]} payments in batches of {RECOVERY_BATCH}
({RECOVERY_BATCHES_IN_FLIGHT} in flight), each batch one transaction that writes what the
saga's own `payment.settle_with_receipt` step writes for each of its payments
(`settle_many_with_receipts`: a fixed number of statements per batch, and
the global locks, balance shards, receipt series and audit head, taken once
per batch instead of once per payment), then woke
{w["workflows_woken"]} payment workflows, which found their payment final and finished;
the recovery workflow ended {w["wake_call_seconds"]} s after the link came back (the
wake-ups, after the last receipt, are most of that). {_steps(r)} In
production the prober sends the event once its probes see the link back:
while a link is down it probes every `probe_suspect_interval_seconds` (1 s)
and needs `probe_successes_to_up` (2) good probes, so add up to about 2 s of
detection. Without the event each payment waits for its
next poll: after {w["outage_seconds"]:.0f} s of outage the interval in force is
{r["unwoken_expected_interval_seconds"]:g} s, so up to {r["unwoken_expected_worst_wait_seconds"]:g} s for a payment that began verifying
when the link dropped (at most {policy["poll_interval_seconds_max"]:g} s after any longer outage); the
seed story's hour cannot happen with either. After each run: one bank debit,
one receipt and no decline per payment.

CPU seconds used from link back to the last receipt (2 cores: at most
{2 * w["all_receipted_seconds"]:.0f} CPU-seconds in the woken run):

| process | woken | no event |
| --- | ---: | ---: |
{cpu_rows}

Load average (1, 5, 15 min) at the end: {r["load_average"]}.
"""


def main() -> None:
    command = parser(__doc__, payments=500, outage_seconds=70.0)
    command.add_argument("--bank", choices=("rest", "vietqr"), default="vietqr")
    command.add_argument("--skip-unwoken", action="store_true", help="only the woken run")
    args = command.parse_args()
    if not (1 <= args.payments <= 10_000 and 5 <= args.outage_seconds <= 600):
        command.error("bounds: 1..10000 payments, 5..600 s of outage")
    # One section per size the targets name (500 and 5,000), so that running
    # one does not overwrite the other's figures.
    name, title = "outage_recovery", "Recovery after a bank link outage (bench/outage_recovery.py)"
    if args.payments > 500:
        name = f"{name}_{args.payments}"
        title = f"{title[:-1]}, {args.payments:,} payments)"
    section = Section(name, title, _body)
    report_logged(args, section, lambda tmp: run(args, tmp))


if __name__ == "__main__":
    main()
