"""``reconciler worker``: the Temporal worker of the payment sagas, plus its
housekeeping loops (sweeper, outbox, in-doubt gauges) and /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import aiohttp
import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.service import RPCError
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from ledger import disputes as ds
from ledger.access import login_failures
from ledger.core.postings import ensure_bank_accounts
from ledger.payments import in_doubt_summary
from ledger.receipts.signing import SigningKeyError
from observability.metrics import (
    payments_in_doubt,
    payments_in_doubt_oldest_seconds,
    process_heartbeat_timestamp_seconds,
)
from observability.metrics_server import MetricsServer
from reconciler import recon_wiring
from reconciler.audit_anchoring import anchor_audit_head
from reconciler.citizen_links import CitizenLinks
from reconciler.db import create_engine
from reconciler.ops_gauges import refresh_backlogs, refresh_ledger_gauges
from reconciler.outbox import dispatch_once
from reconciler.settings import Settings
from reconciler.unit_gauges import UnitGauges
from reconciler.wiring import (
    audit_key,
    build_adapters,
    connect_temporal,
    load_signer,
    load_verifier,
    saga_config,
)
from workflows.common import bank_queue, recovery_queue
from workflows.disputes.activities import DisputeActivities, DisputeDeps
from workflows.disputes.workflow import DisputeWorkflow
from workflows.interceptors import ActivityInterceptor
from workflows.ops.activities import HeartbeatActivities, IntegrityActivities
from workflows.ops.schedules import apply_ops_schedules
from workflows.ops.workflow import HeartbeatWorkflow, IntegrityChecksWorkflow
from workflows.payment.activities import PaymentActivities, PaymentDeps
from workflows.payment.client import SagaConfig, sweep_unstarted
from workflows.payment.external_debit import ExternalDebitWorkflow
from workflows.payment.link_recovery import LinkRecoveryWorkflow
from workflows.payment.recovery_activities import LinkRecoveryActivities
from workflows.payment.workflow import FinePaymentWorkflow
from workflows.reconciliation.activities import ReconciliationActivities, refresh_discrepancy_gauges
from workflows.reconciliation.discrepancy import DiscrepancyActionWorkflow
from workflows.reconciliation.workflow import ReconciliationWorkflow

log = structlog.get_logger(__name__)

# Citizens' contacts on ended disputes are erased once their retention has
# passed (``ledger.disputes.retention``); an hour late at most.
CONTACT_RETENTION_INTERVAL_SECONDS: Final = 3600.0

WORKFLOWS: list[type] = [
    FinePaymentWorkflow,
    ExternalDebitWorkflow,
    DisputeWorkflow,
    ReconciliationWorkflow,
    DiscrepancyActionWorkflow,
    LinkRecoveryWorkflow,
    HeartbeatWorkflow,
    IntegrityChecksWorkflow,
]
# On SIGTERM (a deploy), activities in flight get this long to finish before
# they are cancelled: a bank call cut off mid-way leaves its outcome unknown
# and costs a round of verification, and a local activity cancelled at once
# is retried by the SDK's core during shutdown (temporalio/sdk-rust#709),
# which can hold the shutdown for its whole local retry window.
GRACEFUL_SHUTDOWN = timedelta(seconds=15)
HOUSEKEEPING_ERRORS = (SQLAlchemyError, OSError, RPCError, aiohttp.ClientError, TimeoutError)


def sdk_runtime(settings: Settings) -> Runtime:
    """A Temporal runtime whose SDK metrics (task slots, pollers,
    schedule-to-start latency, poll failures) Prometheus scrapes on
    ``worker_sdk_metrics_port``: seconds, and ``_total`` on counters, as
    the rules in alerts.yml name them."""
    return Runtime(
        telemetry=TelemetryConfig(
            metrics=PrometheusConfig(
                bind_address=f"{settings.api_host}:{settings.worker_sdk_metrics_port}",
                counters_total_suffix=True,
                unit_suffix=True,
                durations_as_seconds=True,
            )
        )
    )


def sandbox_runner() -> SandboxedWorkflowRunner:
    # Our own modules are deterministic data and pure functions; pass them
    # through so they are not re-imported for every workflow run.
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "workflows", "domain", "structlog"
        )
    )


def build_worker(
    client: Client,
    task_queue: str,
    activities: PaymentActivities,
    max_concurrent_activities: int = 200,
    dispute_activities: DisputeActivities | None = None,
    recon_activities: ReconciliationActivities | None = None,
    integrity_activities: IntegrityActivities | None = None,
) -> Worker:
    extra = dispute_activities.all() if dispute_activities is not None else []
    extra += HeartbeatActivities().all()
    if integrity_activities is not None:
        extra += integrity_activities.all()
    # The link-recovery bulk step is built on the payment activities.
    extra += LinkRecoveryActivities(activities, activities.engine, client).all()
    if recon_activities is not None:
        extra += recon_activities.all()
    return Worker(
        client,
        task_queue=task_queue,
        workflows=WORKFLOWS,
        activities=[*activities.all(), *extra],
        interceptors=[ActivityInterceptor()],
        workflow_runner=sandbox_runner(),
        max_concurrent_activities=max_concurrent_activities,
        max_concurrent_workflow_tasks=100,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


def bank_workers(
    client: Client, task_queue: str, activities: PaymentActivities, banks: Iterable[str], slots: int
) -> list[Worker]:
    """One activity worker per bank, on the bank's own task queue
    (``workflows.common.bank_queue``) with its own ``slots``: the calls of a
    bank that hangs wait for that bank's slots only."""
    return [
        Worker(
            client,
            task_queue=bank_queue(task_queue, bank),
            activities=[*activities.bank_calls(), *HeartbeatActivities().all()],
            interceptors=[ActivityInterceptor()],
            max_concurrent_activities=slots,
            graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
        )
        for bank in sorted(set(banks))
    ]


# The recovery's queue runs one bulk pass per bank at a time (its workflow
# id is the bank's), so a few slots serve every bank.
RECOVERY_ACTIVITIES_MAX = 8


def recovery_worker(client: Client, task_queue: str, activities: PaymentActivities) -> Worker:
    """The worker of the link recovery's own queue (``recovery_queue``):
    ``LinkRecoveryWorkflow`` and its bulk step, with slots of their own.
    (The main worker keeps both registered too, for a recovery started on
    the main queue by an older release.)"""
    return Worker(
        client,
        task_queue=recovery_queue(task_queue),
        workflows=[LinkRecoveryWorkflow],
        activities=[
            *LinkRecoveryActivities(activities, activities.engine, client).all(),
            *HeartbeatActivities().all(),
        ],
        interceptors=[ActivityInterceptor()],
        workflow_runner=sandbox_runner(),
        max_concurrent_activities=RECOVERY_ACTIVITIES_MAX,
        max_concurrent_workflow_tasks=RECOVERY_ACTIVITIES_MAX,
        graceful_shutdown_timeout=GRACEFUL_SHUTDOWN,
    )


def build_workers(
    client: Client,
    task_queue: str,
    activities: PaymentActivities,
    banks: Iterable[str],
    *,
    max_concurrent_activities: int = 200,
    bank_activities_max: int = 50,
    dispute_activities: DisputeActivities | None = None,
    recon_activities: ReconciliationActivities | None = None,
    integrity_activities: IntegrityActivities | None = None,
) -> list[Worker]:
    """The worker of ``task_queue`` (every workflow, every step but the bank
    calls and the link recovery), the link recovery's and one per bank:
    what one ``reconciler worker`` process polls."""
    main = build_worker(
        client,
        task_queue,
        activities,
        max_concurrent_activities,
        dispute_activities=dispute_activities,
        recon_activities=recon_activities,
        integrity_activities=integrity_activities,
    )
    return [
        main,
        recovery_worker(client, task_queue, activities),
        *bank_workers(client, task_queue, activities, banks, bank_activities_max),
    ]


async def run_workers(workers: Sequence[Worker], stop: asyncio.Event) -> None:
    """Run ``workers`` until ``stop`` is set or one of them fails, then shut
    them all down at once (each gets its graceful shutdown, in parallel)."""
    runs = [asyncio.create_task(w.run()) for w in workers]
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait([stopping, *runs], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopping.cancel()
        await asyncio.gather(
            *(w.shutdown() for w, r in zip(workers, runs, strict=True) if not r.done()),
            return_exceptions=True,
        )
        results = await asyncio.gather(*runs, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


async def _every(name: str, interval_seconds: float, step: Callable[[], Awaitable[object]]) -> None:
    """Run ``step`` forever; an operating error is logged and retried next tick."""
    while True:
        try:
            await step()
        except HOUSEKEEPING_ERRORS as err:
            log.warning("worker.housekeeping_failed", loop=name, error=str(err))
        await asyncio.sleep(interval_seconds)


async def _unit_gauges_loop(engine: AsyncEngine) -> None:
    """The per-unit gauges: one worker of the deployment leads and refreshes
    them (``reconciler.unit_gauges``). A stopping worker lets go of the lead
    before its engine goes: a connection still checked out would hold the
    lock until the process exits."""
    gauges = UnitGauges()
    try:
        await _every("unit-gauges", 60.0, lambda: gauges.refresh(engine))
    finally:
        await gauges.close()


async def update_in_doubt_gauges(engine: AsyncEngine, banks: list[str]) -> None:
    async with engine.connect() as conn:
        summary = await in_doubt_summary(conn)
    now = datetime.now(UTC)
    for bank in sorted(set(banks) | set(summary)):
        count, oldest = summary.get(bank, (0, None))
        payments_in_doubt.labels(bank).set(count)
        payments_in_doubt_oldest_seconds.labels(bank).set(
            (now - oldest).total_seconds() if oldest else 0
        )


async def beat() -> None:
    """The process's own heartbeat: its event loop runs. Not from a database
    loop (PostgreSQL down is PostgresDown's), and not a claim about Temporal:
    the pollers are proven by the OpsHeartbeat workflow (workflows/ops/)."""
    process_heartbeat_timestamp_seconds.labels("worker").set(time.time())


def housekeeping(
    settings: Settings,
    engine: AsyncEngine,
    client: Client,
    session: aiohttp.ClientSession,
    config: SagaConfig,
) -> list[Coroutine[Any, Any, None]]:
    # Without a configured key a link would check nowhere: notices carry none.
    links = (
        CitizenLinks.from_secret(
            settings.receipt_link_secret(),
            settings.public_base_url,
            settings.citizen_link_ttl_seconds,
        )
        if settings.receipt_link_key
        else None
    )

    async def sweep() -> None:
        await sweep_unstarted(
            client,
            engine,
            config,
            datetime.now(UTC),
            timedelta(seconds=settings.sweeper_interval_seconds),
        )

    async def erase_contacts() -> None:
        now = datetime.now(UTC)
        kept = timedelta(days=settings.dispute_contact_retention_days)
        erased = await ds.erase_expired_contacts(engine, now - kept, now)
        if erased:
            log.info("dispute.contacts_erased", count=erased)

    async def purge_login_failures() -> None:
        window = timedelta(seconds=settings.login_throttle_window_seconds)
        await login_failures.purge(engine, datetime.now(UTC) - window)

    key = require_audit_key(settings)
    return [
        _every(
            "audit-anchor",
            settings.audit_anchor_interval_seconds,
            lambda: anchor_audit_head(engine, key),
        ),
        _every("sweeper", settings.sweeper_interval_seconds, sweep),
        _every("contact-retention", CONTACT_RETENTION_INTERVAL_SECONDS, erase_contacts),
        _every("login-failures", 60.0, purge_login_failures),
        _every("outbox", 2.0, lambda: dispatch_once(engine, session, settings.notify_url, links)),
        _every("heartbeat", 5.0, beat),
        _every("gauges", 5.0, lambda: update_in_doubt_gauges(engine, list(settings.banks))),
        _every(
            "recon-gauges", 30.0, lambda: refresh_discrepancy_gauges(engine, list(settings.banks))
        ),
        _every("ops-gauges", 15.0, lambda: refresh_ledger_gauges(engine, list(settings.banks))),
        _unit_gauges_loop(engine),
        _every(
            "backlog",
            15.0,
            lambda: refresh_backlogs(client, settings.task_queue, list(settings.banks)),
        ),
    ]


def require_audit_key(settings: Settings) -> bytes:
    """The audit key; production never makes one up: none, no start."""
    key = audit_key(settings, create=True)
    if key is None:
        raise SigningKeyError("no audit key: set RECONCILER_AUDIT_KEY (openssl rand -base64 32)")
    return key


async def apply_ops_schedules_at_start(client: Client, settings: Settings) -> None:
    """The heartbeat and integrity schedules (``workflows.ops.schedules``).
    A worker still starts if Temporal refuses; the next start applies them,
    and WorkerPollersStuck / IntegrityCheckNotRun tell meanwhile."""
    try:
        await apply_ops_schedules(
            client,
            settings.task_queue,
            list(settings.banks),
            settings.ops_heartbeat_seconds,
            settings.integrity_check_interval_seconds,
        )
    except RPCError as err:
        log.warning("ops.schedules_not_applied", error=str(err))


async def run_worker(settings: Settings, stop: asyncio.Event | None = None) -> None:
    # Production never makes keys up: both must be configured, or no start.
    signer = load_signer(settings)
    require_audit_key(settings)
    engine = create_engine(settings, pre_ping=False)
    stop = stop or asyncio.Event()
    metrics_server = MetricsServer(settings.api_host, settings.worker_metrics_port)
    await metrics_server.start()
    try:
        async with engine.begin() as conn:
            await ensure_bank_accounts(conn, list(settings.banks))
        async with aiohttp.ClientSession() as session:
            client = await connect_temporal(settings, sdk_runtime(settings))
            adapters = build_adapters(settings, session)
            activities = PaymentActivities(
                PaymentDeps(
                    engine=engine,
                    adapters=adapters,
                    signer=signer,
                    public_base_url=settings.public_base_url,
                )
            )
            workers = build_workers(
                client,
                settings.task_queue,
                activities,
                settings.banks,
                max_concurrent_activities=settings.worker_activities_max,
                bank_activities_max=settings.worker_bank_activities_max,
                dispute_activities=DisputeActivities(DisputeDeps(engine, adapters)),
                recon_activities=recon_wiring.recon_activities(settings, engine, adapters, client),
                integrity_activities=IntegrityActivities(
                    engine, load_verifier(settings), require_audit_key(settings)
                ),
            )
            await recon_wiring.apply_schedules_at_start(client, settings)
            await apply_ops_schedules_at_start(client, settings)
            config = saga_config(settings)
            tasks = [
                asyncio.create_task(c)
                for c in housekeeping(settings, engine, client, session, config)
            ]
            log.info(
                "worker.started",
                task_queues=[w.task_queue for w in workers],
                banks=list(settings.banks),
            )
            try:
                await run_workers(workers, stop)
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
    finally:
        await metrics_server.stop()
        await engine.dispose()
