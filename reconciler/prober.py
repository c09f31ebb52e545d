"""``reconciler prober``: the link prober of every configured bank, wired to
the outage store and to the payment saga's link-recovery event."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime

import aiohttp
import structlog
from temporalio.service import RPCError

from bank_adapters.base import BankAdapter
from ledger.link_health import record_probe
from ledger.outages import PostgresOutageStore
from observability.metrics_server import MetricsServer
from observability.prober import HealthCheck, LinkProber, ProberConfig, ProbeResult
from reconciler.api.temporal_link import TemporalLink
from reconciler.db import create_engine
from reconciler.settings import Settings
from reconciler.wiring import build_adapters, temporal_tls
from workflows.payment.client import start_link_recovery

log = structlog.get_logger(__name__)


def health_check(adapter: BankAdapter) -> HealthCheck:
    async def check() -> tuple[bool, str]:
        status = await adapter.health()
        return status.up, status.detail

    return check


async def run_prober(settings: Settings, stop: asyncio.Event | None = None) -> None:
    if not settings.banks:
        raise SystemExit("no banks configured (RECONCILER_BANKS): nothing to probe")
    stop = stop or asyncio.Event()
    engine = create_engine(settings)
    temporal = TemporalLink(
        settings.temporal_address, settings.temporal_namespace, tls=temporal_tls(settings)
    )
    metrics_server = MetricsServer(settings.api_host, settings.prober_metrics_port)
    await metrics_server.start()

    async def on_recovery(bank: str) -> None:
        """The link is back: hand the recovery to Temporal (settle what the
        bank confirms in bulk, then wake every in-doubt payment of the bank).
        Starting it is the durable hand-off; raising makes the prober retry
        on its next rounds."""
        client = await temporal.client()
        if client is None:
            raise ConnectionError("Temporal unavailable: cannot start the link recovery yet")
        try:
            handle = await start_link_recovery(client, settings.task_queue, bank)
        except RPCError as err:
            raise ConnectionError(f"starting the link recovery of {bank} failed: {err}") from err
        log.info("prober.link_recovered", bank=bank, recovery_workflow_id=handle.id)

    async def on_probe(bank: str, at: datetime, result: ProbeResult, seconds: float) -> None:
        """The last probe, for the console's link board (latency)."""
        await record_probe(engine, bank, at, result.ok, seconds, result.cause)

    try:
        async with aiohttp.ClientSession() as session:
            adapters = build_adapters(settings, session)
            prober = LinkProber(
                {bank: health_check(adapter) for bank, adapter in adapters.items()},
                PostgresOutageStore(engine),
                on_recovery=on_recovery,
                on_probe=on_probe,
                config=ProberConfig(
                    interval_seconds=settings.probe_interval_seconds,
                    suspect_interval_seconds=min(
                        settings.probe_suspect_interval_seconds, settings.probe_interval_seconds
                    ),
                    failures_to_down=settings.probe_failures_to_down,
                    successes_to_up=settings.probe_successes_to_up,
                ),
            )
            task = asyncio.create_task(prober.run())
            log.info("prober.started", banks=sorted(adapters))
            await stop.wait()
            prober.stop()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, timeout=10)
    finally:
        await metrics_server.stop()
        await engine.dispose()
