"""Reconciliations started by a Temporal Schedule and by ``reconciler recon``."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import text

from bank_adapters.simulators.render import SimLine, render_csv
from reconciler.cli.main import main
from tests.integration.reconciliation.conftest import ReconStack
from tests.support.stack import PAYER, eventually
from workflows.reconciliation.client import (
    ScheduleTimes,
    apply_schedules,
    describe_schedules,
    schedule_ids,
)


async def test_a_schedule_tick_reconciles_today_and_applying_again_updates(
    recon_stack: ReconStack,
) -> None:
    saga = recon_stack.saga
    number = await saga.new_fine(250_000)
    await saga.admins["hnbank"].transfer(PAYER, 250_000, f"nop phat {number}")
    times = ScheduleTimes(end_of_day="23:30", intraday_minutes=0)
    queue = saga.settings.task_queue
    eod_id, _ = schedule_ids("hnbank")
    try:
        done = await apply_schedules(saga.client, queue, ["hnbank"], times)
        assert (eod_id, "created") in done or (eod_id, "updated") in done
        assert (await apply_schedules(saga.client, queue, ["hnbank"], times))[0] == (
            eod_id,
            "updated",
        )
        [eod, intraday] = await describe_schedules(saga.client, ["hnbank"])
        assert (eod["exists"], eod["time_zone"], intraday["exists"]) == (
            True,
            "Asia/Ho_Chi_Minh",
            False,
        )
        await saga.client.get_schedule_handle(eod_id).trigger()

        async def completed() -> Any:
            async with saga.engine.connect() as conn:
                return (
                    await conn.execute(
                        text(
                            "SELECT * FROM reconciliations WHERE trigger = 'schedule'"
                            " AND status = 'completed'"
                        )
                    )
                ).one_or_none()

        run = await eventually(completed, 60, "the scheduled reconciliation")
        assert (run.bank, run.statement_date, run.healed) == ("hnbank", recon_stack.today, 1)
        assert run.workflow_id.startswith("reconciliation/hnbank/eod")
    finally:
        await saga.client.get_schedule_handle(eod_id).delete()


async def test_reconciler_recon_run_with_a_file(recon_stack: ReconStack, tmp_path: Path) -> None:
    saga = recon_stack.saga
    number = await saga.new_fine(250_000)
    at = datetime.now(UTC) - timedelta(minutes=1)
    statement = tmp_path / "statement.csv"
    statement.write_bytes(
        render_csv([SimLine("CLI1", at, 250_000, "C", PAYER, number.replace("/", ""))])
    )
    env = {
        "RECONCILER_DATABASE_URL": saga.settings.database_url,
        "RECONCILER_TEMPORAL_ADDRESS": saga.settings.temporal_address,
        "RECONCILER_TASK_QUEUE": saga.settings.task_queue,
        "RECONCILER_BANKS": json.dumps({b: s.model_dump() for b, s in saga.settings.banks.items()}),
        "RECONCILER_LOG_LEVEL": "warning",
        "RECONCILER_ENV": "dev",
    }
    args = [
        "recon",
        "run",
        "--bank",
        "hnbank",
        "--date",
        recon_stack.today.isoformat(),
        "--file",
        str(statement),
        "--format",
        "csv",
        "--timeout",
        "60",
    ]
    result = await asyncio.to_thread(CliRunner().invoke, main, args, env=env)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    # A file is a claim: the line that would pay the fine waits for the bank.
    assert (summary["status"], summary["lines"], summary["healed"]) == ("completed", 1, 0)
    assert summary["unconfirmed"] == 1
    assert summary["workflow_id"] == f"reconciliation-upload/{summary['reconciliation_id']}"
    shown = await asyncio.to_thread(
        CliRunner().invoke, main, ["recon", "show", str(summary["reconciliation_id"])], env=env
    )
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["unconfirmed"] == 1
    async with saga.engine.connect() as conn:
        uploader = (
            await conn.execute(
                text("SELECT actor FROM audit_log WHERE action = 'statement.uploaded'")
            )
        ).scalar_one()
    assert uploader.startswith("cli:")
