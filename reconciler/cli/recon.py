"""``reconciler recon``: reconcile a statement now (fetched or from a file),
show or apply the schedules, look at runs, discrepancies and rules.

Heavy imports happen inside the commands, so ``reconciler --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

import click

from reconciler.cli.identity import cli_actor
from reconciler.logs import configure_logging
from reconciler.settings import Settings

T = TypeVar("T")
FORMATS = ("camt053", "mt940", "csv")


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _run(make: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine; operating errors become a clean CLI error."""
    from bank_adapters.types import BankAdapterError
    from ledger.core.errors import LedgerError
    from workflows.reconciliation.client import WorkflowServiceUnavailableError

    try:
        return asyncio.run(make())  # type: ignore[arg-type]
    except LedgerError as err:
        raise click.ClickException(err.message) from err
    except (BankAdapterError, WorkflowServiceUnavailableError) as err:
        raise click.ClickException(str(err)) from err


def _echo(value: Any) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


@click.group()
def recon() -> None:
    """Statement reconciliation."""


@recon.command("run")
@click.option("--bank", required=True, help="A configured bank id.")
@click.option(
    "--date",
    "statement_date",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    required=True,
    help="Statement date (Vietnam business day), YYYY-MM-DD.",
)
@click.option(
    "--file",
    "file_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Reconcile this statement file instead of fetching it from the bank.",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None)
@click.option("--wait/--no-wait", default=True, show_default=True)
@click.option("--timeout", "timeout_seconds", type=click.IntRange(1, 86_400), default=1_800)
def recon_run(
    bank: str,
    statement_date: Any,
    file_path: Path | None,
    fmt: str | None,
    wait: bool,
    timeout_seconds: int,
) -> None:
    """Reconcile BANK's statement of DATE (the worker must be running)."""
    if (file_path is None) != (fmt is None):
        raise click.UsageError("--file and --format go together")
    settings = _settings()
    if bank not in settings.banks:
        raise click.BadParameter(f"configured banks: {', '.join(sorted(settings.banks))}")
    day = statement_date.date()
    data = None
    if file_path is not None:
        if file_path.stat().st_size > settings.recon_upload_bytes_max:
            raise click.BadParameter(f"larger than {settings.recon_upload_bytes_max} bytes")
        data = file_path.read_bytes()
    result = _run(lambda: _reconcile(settings, bank, day, data, fmt, wait, timeout_seconds))
    _echo(result)
    if result.get("status") == "failed":
        raise SystemExit(1)


async def _reconcile(
    settings: Settings,
    bank: str,
    day: date,
    data: bytes | None,
    fmt: str | None,
    wait: bool,
    timeout_seconds: int,
) -> dict[str, Any]:
    from dataclasses import asdict
    from datetime import UTC, datetime

    from bank_adapters.types import StatementFormat
    from reconciler.db import create_engine
    from reconciler.recon_wiring import statement_limits
    from reconciler.wiring import connect_temporal, saga_config
    from workflows.reconciliation.client import import_statement, start_reconciliation
    from workflows.reconciliation.types import ReconciliationResult

    engine = create_engine(settings)
    try:
        client = await connect_temporal(settings)
        now = datetime.now(UTC)
        if data is not None and fmt is not None:
            outcome = await import_statement(
                client,
                engine,
                saga_config(settings),
                bank=bank,
                statement_date=day,
                fmt=StatementFormat(fmt),
                data=data,
                trigger="cli",
                # The uploader, as the audit log names them: whoever runs this.
                requested_by=cli_actor(),
                limits=statement_limits(settings),
                now=now,
            )
            run = outcome.run
        else:
            run, _ = await start_reconciliation(
                client,
                engine,
                saga_config(settings),
                bank,
                day,
                trigger="cli",
                requested_by=cli_actor(),
                now=now,
            )
        summary: dict[str, Any] = {"reconciliation_id": run.id, "workflow_id": run.workflow_id}
        if not wait or run.workflow_id is None:
            return {**summary, "status": run.status}
        handle = client.get_workflow_handle(run.workflow_id, result_type=ReconciliationResult)
        result = await asyncio.wait_for(handle.result(), timeout_seconds)
        return {**summary, **asdict(result)}
    finally:
        await engine.dispose()


@recon.command("schedules")
@click.option("--apply", "apply_", is_flag=True, help="Create or update them first.")
def recon_schedules(apply_: bool) -> None:
    """Show every bank's reconciliation schedules (or apply them from settings)."""
    settings = _settings()

    async def go() -> dict[str, Any]:
        from reconciler.recon_wiring import schedule_times
        from reconciler.wiring import connect_temporal
        from workflows.reconciliation.client import apply_schedules, describe_schedules

        client = await connect_temporal(settings)
        banks = sorted(settings.banks)
        applied = (
            await apply_schedules(client, settings.task_queue, banks, schedule_times(settings))
            if apply_
            else []
        )
        return {
            "applied": [{"id": i, "done": d} for i, d in applied],
            "schedules": await describe_schedules(client, banks),
        }

    _echo(_run(go))


@recon.command("show")
@click.argument("reconciliation_id", type=click.IntRange(1))
def recon_show(reconciliation_id: int) -> None:
    """Show one reconciliation run with its totals."""
    settings = _settings()

    async def go() -> dict[str, Any]:
        from ledger.reconciliation.runs import get_run
        from reconciler.api.recon_views import run_json
        from reconciler.db import create_engine

        engine = create_engine(settings)
        try:
            async with engine.connect() as conn:
                return run_json(settings.public_base_url, await get_run(conn, reconciliation_id))
        finally:
            await engine.dispose()

    _echo(_run(go))


@recon.command("discrepancies")
@click.option("--bank", default=None)
@click.option("--kind", default=None)
@click.option("--status", default="open", show_default=True)
@click.option("--limit", type=click.IntRange(1, 500), default=50, show_default=True)
def recon_discrepancies(bank: str | None, kind: str | None, status: str, limit: int) -> None:
    """List discrepancies, newest first."""
    settings = _settings()

    async def go() -> list[dict[str, Any]]:
        from ledger.reconciliation.discrepancies import DiscrepancyFilter, list_discrepancies
        from reconciler.api.recon_views import discrepancy_json
        from reconciler.db import create_engine

        engine = create_engine(settings)
        try:
            async with engine.connect() as conn:
                items, _ = await list_discrepancies(
                    conn, DiscrepancyFilter(bank=bank, kind=kind, status=status), limit=limit
                )
        finally:
            await engine.dispose()
        return [discrepancy_json(d) for d in items]

    _echo(_run(go))


@recon.command("rules")
@click.option("--bank", required=True)
@click.option("--set", "rule", default=None, help="Change this rule for the bank.")
@click.option("--enabled/--disabled", default=None)
@click.option("--priority", type=click.IntRange(1, 1000), default=None)
@click.option("--tolerance-vnd", type=click.IntRange(0, 100_000_000), default=None)
@click.option("--truncated-min", type=click.IntRange(6, 64), default=None)
def recon_rules(
    bank: str,
    rule: str | None,
    enabled: bool | None,
    priority: int | None,
    tolerance_vnd: int | None,
    truncated_min: int | None,
) -> None:
    """Show the matching rules in force for BANK, or change one (--set)."""
    settings = _settings()

    async def go() -> list[dict[str, Any]]:
        from dataclasses import asdict

        from ledger.reconciliation import rules as rc
        from reconciler.db import create_engine

        engine = create_engine(settings)
        try:
            async with engine.begin() as conn:
                if rule is not None:
                    await rc.set_rule(
                        conn,
                        bank,
                        rule,
                        priority=priority,
                        enabled=enabled,
                        amount_tolerance_vnd=tolerance_vnd,
                        truncated_chars_min=truncated_min,
                    )
                rules = await rc.load_rules(conn, bank)
        finally:
            await engine.dispose()
        return [asdict(r) for r in sorted(rules.values(), key=lambda r: r.priority)]

    _echo(_run(go))
