"""Shared by the saga benchmarks (bench/saga_throughput.py,
bench/outage_recovery.py): a bank simulator in its own process on
127.0.0.1, the ledger seeded with fines and payments through the ledger's
own functions (as the API does), the real payment activities, and the
product's logging sent to a file instead of the terminal."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
import psutil
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from bank_adapters.base import BankAdapter
from bank_adapters.factory import Protocol, build_adapter
from bank_adapters.simulators.server import SIM_ACCOUNT_NUMBER, SIM_BANK_BIN
from bench.common import ROOT, postgres, simulator_process, temporal
from ledger import payments as pay
from ledger.core.postings import ensure_bank_accounts
from ledger.fines import FineInput, get_fine, register_fine
from ledger.migrations import upgrade_to_head
from ledger.receipts.signing import ReceiptSigner
from reconciler.db import create_engine
from reconciler.devstack.ports import free_port
from reconciler.devstack.postgres import PostgresInfo
from reconciler.devstack.temporal import TemporalInfo
from reconciler.settings import Settings
from workflows.payment.activities import PaymentActivities, PaymentDeps

PAYER = "0123456789"
PUBLIC_BASE_URL = "http://127.0.0.1:8080"
# A city's receipts are spread over several police units (one series each).
ISSUING_UNITS = (
    "Đội CSGT số 1 - Công an quận Hoàn Kiếm",
    "Đội CSGT số 2 - Công an quận Ba Đình",
    "Phòng CSGT Công an TP Hà Nội",
    "Đội CSGT đường bộ số 4",
)
WORKER_STOP_SECONDS_MAX = 30.0


@dataclass(frozen=True)
class Sim:
    bank: str
    protocol: Protocol
    url: str
    admin_url: str
    pid: int


@asynccontextmanager
async def simulator(protocol: Protocol, bank: str, state: Path) -> AsyncIterator[Sim]:
    """One bank simulator in its own process, no webhooks (no API runs in
    these benchmarks)."""
    async with simulator_process(protocol, bank, state, quiet=True) as (process, info):
        yield Sim(bank, protocol, info["url"], info["admin_url"], process.pid)


@dataclass(frozen=True)
class SagaStack:
    """What a saga benchmark runs on: PostgreSQL (durable, migrated), a
    Temporal dev server, the client's engine, one bank simulator, a session."""

    pg: PostgresInfo
    temporal: TemporalInfo
    engine: AsyncEngine
    sim: Sim
    session: aiohttp.ClientSession


@asynccontextmanager
async def saga_stack(protocol: Protocol, bank: str, tmp: Path) -> AsyncIterator[SagaStack]:
    with postgres(durable=True) as pg, temporal() as server:
        upgrade_to_head(pg.url())
        # The client's engine (seeding, checks), as the product builds it.
        engine = create_engine(Settings(database_url=pg.url(), data_dir=tmp))
        try:
            async with (
                simulator(protocol, bank, tmp / "bank.sqlite") as sim,
                aiohttp.ClientSession() as session,
            ):
                yield SagaStack(pg, server, engine, sim, session)
        finally:
            await engine.dispose()


@asynccontextmanager
async def worker_process(
    db_url: str, temporal_address: str, task_queue: str, sims: list[Sim], data_dir: Path
) -> AsyncIterator[psutil.Process]:
    """The production worker process (``reconciler worker``: the saga worker
    with its sweeper, outbox and gauge loops), configured through the
    environment as in production, logging (info, JSON) to a file."""
    banks = {
        s.bank: {
            "protocol": s.protocol,
            "url": s.url,
            "account_number": SIM_ACCOUNT_NUMBER,
            "bank_bin": SIM_BANK_BIN,
        }
        for s in sims
    }
    env = {
        **os.environ,
        "RECONCILER_DATABASE_URL": db_url,
        "RECONCILER_TEMPORAL_ADDRESS": temporal_address,
        "RECONCILER_TASK_QUEUE": task_queue,
        "RECONCILER_BANKS": json.dumps(banks),
        "RECONCILER_DATA_DIR": str(data_dir),
        "RECONCILER_WORKER_METRICS_PORT": "0",
        # Its own port: the SDK's default one may be taken by another stack
        # on the same machine (the worker then dies at start).
        "RECONCILER_WORKER_SDK_METRICS_PORT": str(free_port()),
        "RECONCILER_LOG_LEVEL": "info",
        "RECONCILER_LOG_FORMAT": "json",
        "RECONCILER_ENV": "dev",
    }
    with (data_dir / "worker.stderr.log").open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "reconciler",
            "worker",
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
            cwd=ROOT,
        )
    try:
        yield psutil.Process(process.pid)
    finally:
        if process.returncode is None:
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), WORKER_STOP_SECONDS_MAX)
        except TimeoutError:
            process.kill()
            await process.wait()


def adapters(session: aiohttp.ClientSession, sims: list[Sim]) -> Mapping[str, BankAdapter]:
    return {
        s.bank: build_adapter(
            s.bank,
            s.protocol,
            s.url,
            session,
            account_number=SIM_ACCOUNT_NUMBER,
            bank_bin=SIM_BANK_BIN,
        )
        for s in sims
    }


def payment_activities(
    engine: AsyncEngine, session: aiohttp.ClientSession, sims: list[Sim]
) -> PaymentActivities:
    return PaymentActivities(
        PaymentDeps(
            engine=engine,
            adapters=adapters(session, sims),
            signer=ReceiptSigner.generate(),
            public_base_url=PUBLIC_BASE_URL,
        )
    )


@dataclass(frozen=True)
class Seeded:
    decision_key: str
    payment_id: UUID


async def seed_payments(
    engine: AsyncEngine, bank: str, prefix: str, count: int, concurrency: int = 8
) -> list[Seeded]:
    """Register ``count`` fines and start a payment of each in the ledger,
    with the same ledger calls as ``POST /api/v1/fines`` and
    ``POST .../payments`` (the workflow is started by the caller)."""
    async with engine.begin() as conn:
        await ensure_bank_accounts(conn, [bank])
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(count):
        queue.put_nowait(i)
    seeded: dict[int, Seeded] = {}

    async def one(i: int) -> None:
        number = f"{prefix}{i:05d}/QĐ-XPHC"
        async with engine.begin() as conn:
            await register_fine(
                conn,
                FineInput(
                    decision_number=number,
                    amount_vnd=500_000 + 1_000 * (i % 500),
                    violator_name="Nguyễn Văn A",
                    plate="29A-123.45",
                    issuing_unit=ISSUING_UNITS[i % len(ISSUING_UNITS)],
                    violation="Vượt đèn đỏ",
                ),
            )
            fine = await get_fine(conn, number)
            payment, created = await pay.create_payment(
                conn, fine, bank, PAYER, datetime.now(UTC), channel="portal"
            )
        assert created
        seeded[i] = Seeded(payment.decision_key, payment.id)

    async def worker() -> None:
        while not queue.empty():
            await one(queue.get_nowait())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return [seeded[i] for i in range(count)]


async def count_receipts(engine: AsyncEngine, payment_ids: list[UUID]) -> int:
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    text("SELECT count(*) FROM receipts WHERE payment_id = ANY(:ids)"),
                    {"ids": payment_ids},
                )
            ).scalar_one()
        )


def listener(port: int) -> psutil.Process:
    """The process listening on 127.0.0.1:``port``."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            assert conn.pid is not None
            return psutil.Process(conn.pid)
    raise LookupError(f"nothing listens on port {port}")


class CpuMeter:
    """CPU seconds (user + system) used by each part of the stack between
    ``start`` and ``stop``: where the work goes on a 2-core machine. A part
    may count its children (PostgreSQL's backends); a child that exits in
    between takes its time with it (not counted)."""

    def __init__(self, parts: Mapping[str, tuple[Sequence[psutil.Process], bool]]) -> None:
        """``parts``: name → (processes, whether their children count too)."""
        self._parts = dict(parts)
        self._before: dict[str, dict[int, float]] = {}
        self.used: dict[str, float] = {}

    def _now(self) -> dict[str, dict[int, float]]:
        totals: dict[str, dict[int, float]] = {}
        for name, (processes, recursive) in self._parts.items():
            family = [
                p
                for process in processes
                for p in [process, *(process.children(recursive=True) if recursive else [])]
            ]
            totals[name] = {}
            for p in family:
                try:
                    times = p.cpu_times()
                except psutil.NoSuchProcess:
                    continue
                totals[name][p.pid] = times.user + times.system
        return totals

    def start(self) -> None:
        self._before = self._now()

    def stop(self) -> dict[str, float]:
        after = self._now()
        self.used = {
            name: sum(seconds - self._before[name].get(pid, 0.0) for pid, seconds in pids.items())
            for name, pids in after.items()
        }
        return self.used


def uptime() -> str:
    """Load averages (1, 5, 15 min) when the run ended: the machine is shared."""
    result = subprocess.run(["uptime"], capture_output=True, text=True, check=False)
    out = result.stdout.strip()
    return out.split("load average:")[-1].strip() if "load average:" in out else out


def as_json(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
