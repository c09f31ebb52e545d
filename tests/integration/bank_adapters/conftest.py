"""Adapter + simulator pairs over real HTTP on 127.0.0.1, one per protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bank_adapters.base import AdapterOptions, BankAdapter, BreakerConfig, Timeouts
from bank_adapters.factory import build_adapter
from bank_adapters.simulators.admin import SimulatorAdmin
from bank_adapters.simulators.server import SimulatorHandle
from domain.business_time import VIETNAM_TZ

# Short timeouts keep the fault tests quick; a breaker that never opens keeps
# the contract tests independent of how many failures came before.
FAST_OPTIONS = AdapterOptions(
    timeouts=Timeouts(connect_seconds=1.0, read_seconds=0.5, total_seconds=5.0),
    breaker=BreakerConfig(failures_to_open=10_000, open_seconds=1.0),
)
PAYER = "0123456789"


@dataclass
class BankUnderTest:
    protocol: str
    sim: SimulatorHandle
    adapter: BankAdapter
    admin: SimulatorAdmin
    session: aiohttp.ClientSession

    def adapter_with(self, options: AdapterOptions, bank_id: str) -> BankAdapter:
        return build_adapter(
            bank_id,
            "rest" if self.protocol == "rest" else "vietqr",
            self.sim.url,
            self.session,
            account_number=self.sim.account_number,
            bank_bin=self.sim.bank_bin,
            options=options,
        )

    async def moves(self, key: str, kind: str = "debit") -> list[dict[str, Any]]:
        """Ground truth: what the bank booked under our key."""
        return [
            row
            for row in await self.admin.debits()
            if row["idempotency_key"] == key and row["kind"] == kind and row["status"] != "declined"
        ]


def business_date(row: dict[str, Any]) -> date:
    return datetime.fromisoformat(row["booked_at"]).astimezone(VIETNAM_TZ).date()


async def eventually(
    check: Callable[[], Awaitable[bool]], *, attempts: int = 200, pause_seconds: float = 0.05
) -> None:
    """Wait for something the simulator does in the background (settlement,
    webhooks); bounded, and fails the test if it never happens."""
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(pause_seconds)
    raise AssertionError("condition never became true")


async def _bank(protocol: str, tmp_path: Path, **sim_kwargs: Any) -> AsyncIterator[BankUnderTest]:
    async with (
        aiohttp.ClientSession() as session,
        SimulatorHandle(protocol, tmp_path / f"{protocol}.sqlite", **sim_kwargs) as sim,
    ):
        adapter = build_adapter(
            f"test-{protocol}",
            "rest" if protocol == "rest" else "vietqr",
            sim.url,
            session,
            account_number=sim.account_number,
            bank_bin=sim.bank_bin,
            options=FAST_OPTIONS,
        )
        yield BankUnderTest(protocol, sim, adapter, SimulatorAdmin(session, sim.admin_url), session)


@pytest.fixture(params=["rest", "vietqr"])
async def bank(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BankUnderTest]:
    async for pair in _bank(request.param, tmp_path):
        yield pair


@pytest.fixture
async def rest_bank(tmp_path: Path) -> AsyncIterator[BankUnderTest]:
    async for pair in _bank("rest", tmp_path):
        yield pair


@pytest.fixture
async def vietqr_bank(tmp_path: Path) -> AsyncIterator[BankUnderTest]:
    async for pair in _bank("vietqr", tmp_path):
        yield pair
