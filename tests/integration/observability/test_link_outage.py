"""A bank link goes down and comes back, end to end: the real prober probes
the simulator over HTTP, records the outage in PostgreSQL, exports the
metrics, and on recovery wakes the payment left in doubt by the outage."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import REGISTRY

from ledger.outages import PostgresOutageStore
from observability.prober import LinkProber, ProberConfig
from reconciler.prober import health_check
from tests.support.stack import SagaStack, eventually
from workflows.payment.client import wake_bank

BANK = "hnbank"  # no webhooks: only a status check can settle its payments


def _sample(name: str, bank: str) -> float:
    return REGISTRY.get_sample_value(name, {"bank": bank}) or 0.0


@pytest.fixture
def stack_overrides() -> dict[str, Any]:
    # Polling so slow that only the link-recovery wake can settle in time.
    return {
        "verify_poll_interval_seconds_initial": 120.0,
        "verify_poll_interval_seconds_max": 600.0,
    }


async def test_outage_is_seen_recorded_and_recovery_wakes_payments(stack: SagaStack) -> None:
    woken: list[str] = []

    async def on_recovery(bank: str) -> None:
        await wake_bank(stack.client, stack.engine, bank)
        woken.append(bank)

    adapters = stack.activities._adapters
    prober = LinkProber(
        {bank: health_check(adapter) for bank, adapter in adapters.items()},
        PostgresOutageStore(stack.engine),
        on_recovery=on_recovery,
        config=ProberConfig(interval_seconds=0.2, failures_to_down=2, successes_to_up=2),
    )
    outages_before = _sample("bank_outages_total", BANK)
    task = asyncio.create_task(prober.run())
    try:
        await eventually(lambda: _sample("bank_link_up", BANK) == 1.0, 10, "link up")

        # A payment debited at the bank whose answer was lost: in doubt.
        dn = await stack.new_fine()
        await stack.admins[BANK].add_fault("lost_response", seconds=60)
        _, started = await stack.pay(dn, BANK)

        async def verifying() -> bool:
            payment = await stack.payment(started["payment_id"])
            return payment["status"] == "verifying"

        await eventually(verifying, 20, "the payment to be verifying")
        await stack.admins[BANK].clear_faults()

        # The link drops.
        await stack.admins[BANK].add_fault("link_down")
        await eventually(lambda: _sample("bank_link_up", BANK) == 0.0, 10, "link down")
        status, outages = await stack.call("GET", "/api/v1/outages")
        assert status == 200
        open_now = [o for o in outages["open"] if o["bank"] == BANK]
        assert len(open_now) == 1
        assert open_now[0]["ended_at"] is None
        await asyncio.sleep(0.5)
        assert (await stack.payment(started["payment_id"]))["status"] == "verifying"

        # The link comes back: outage closed, counted, in-doubt payment woken.
        await stack.admins[BANK].clear_faults()
        await eventually(lambda: _sample("bank_link_up", BANK) == 1.0, 10, "link back up")
        payment = await stack.wait_payment(started["payment_id"], {"succeeded"}, 20)
        assert payment["receipt"] is not None
        assert woken == [BANK]
        status, outages = await stack.call("GET", "/api/v1/outages", params={"bank": BANK})
        assert outages["open"] == []
        closed = outages["recent"][0]
        assert closed["ended_at"] is not None
        assert closed["duration_seconds"] > 0
        assert _sample("bank_outages_total", BANK) == outages_before + 1
        async with stack.session.get(f"{stack.api_url}/metrics") as resp:
            exposition = await resp.text()
        assert f'bank_link_up{{bank="{BANK}"}} 1.0' in exposition
        assert f'bank_outages_total{{bank="{BANK}"}}' in exposition
    finally:
        prober.stop()
        await asyncio.wait_for(task, 10)


async def test_flapping_link_opens_no_outage_per_flap(stack: SagaStack) -> None:
    """The simulator's link flaps faster than the hysteresis: at most one
    outage, never one per flap."""
    adapters = stack.activities._adapters
    prober = LinkProber(
        {BANK: health_check(adapters[BANK])},
        PostgresOutageStore(stack.engine),
        config=ProberConfig(interval_seconds=0.1, failures_to_down=4, successes_to_up=4),
    )
    await stack.admins[BANK].add_fault("flap", probability=0.5, period_seconds=0.15, seconds=3)
    task = asyncio.create_task(prober.run())
    try:
        await asyncio.sleep(3.5)
    finally:
        prober.stop()
        await asyncio.wait_for(task, 10)
    outages = await PostgresOutageStore(stack.engine).recent(50, bank=BANK)
    assert len(outages) <= 1, outages
