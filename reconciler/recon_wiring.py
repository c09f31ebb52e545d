"""Reconciliation's pieces of the composition root: settings turned into the
policies, limits and dependencies the workflows and the API take."""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.service import RPCError

from bank_adapters.base import BankAdapter
from bank_adapters.statements import DEFAULT_LIMITS, StatementLimits
from ledger.reconciliation.payment_checks import MatchPolicy
from reconciler.settings import Settings
from reconciler.wiring import saga_config
from workflows.reconciliation.activities import ReconciliationActivities, ReconDeps
from workflows.reconciliation.client import ScheduleTimes, apply_schedules

log = structlog.get_logger(__name__)


def statement_limits(settings: Settings) -> StatementLimits:
    return StatementLimits(
        bytes_max=settings.recon_upload_bytes_max,
        entries_max=settings.recon_statement_lines_max,
        xml_depth_max=DEFAULT_LIMITS.xml_depth_max,
        xml_elements_max=DEFAULT_LIMITS.xml_elements_max,
    )


def match_policy(settings: Settings) -> MatchPolicy:
    return MatchPolicy(
        missing_grace_seconds=settings.recon_missing_grace_seconds,
        in_doubt_seconds=settings.recon_in_doubt_seconds,
    )


def schedule_times(settings: Settings) -> ScheduleTimes:
    return ScheduleTimes(
        end_of_day=settings.recon_end_of_day_time,
        end_of_day_offset_days=settings.recon_end_of_day_offset_days,
        intraday_minutes=settings.recon_intraday_minutes,
    )


def recon_activities(
    settings: Settings,
    engine: AsyncEngine,
    adapters: Mapping[str, BankAdapter],
    client: Client,
) -> ReconciliationActivities:
    return ReconciliationActivities(
        ReconDeps(
            engine=engine,
            adapters=adapters,
            client=client,
            saga=saga_config(settings),
            policy=match_policy(settings),
            statement_limits=statement_limits(settings),
            actions_concurrency=settings.recon_actions_concurrency,
        )
    )


async def apply_schedules_at_start(client: Client, settings: Settings) -> None:
    """Create or update every bank's reconciliation schedules. A worker still
    starts if Temporal refuses (the payment sagas matter more); the next
    start, or ``reconciler recon schedules --apply``, applies them."""
    if not settings.recon_schedules_enabled:
        return
    try:
        await apply_schedules(
            client, settings.task_queue, sorted(settings.banks), schedule_times(settings)
        )
    except RPCError as err:
        log.warning("reconciliation.schedules_not_applied", error=str(err))
