"""The sweeper starts the workflow of an in-doubt payment that has none (the
API crashed between its commit and the start), and leaves running ones
alone, on the real Temporal dev server and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client, WorkflowExecutionStatus

from ledger import payments as pay
from ledger.core.postings import ensure_bank_accounts
from ledger.fines import FineInput, get_fine, register_fine
from reconciler.devstack.temporal import TemporalInfo
from workflows.payment import types as wt
from workflows.payment.client import SagaConfig, start_payment, sweep_unstarted
from workflows.payment.workflow import workflow_id_for


async def _payment(engine: AsyncEngine) -> pay.Payment:
    number = f"{uuid.uuid4().int % 10**9:09d}/QĐ-XPHC"
    async with engine.begin() as conn:
        await ensure_bank_accounts(conn, ["sgbank"])
        await register_fine(
            conn,
            FineInput(
                number, 500_000, "Nguyễn Văn A", "29A-123.45", "Đội CSGT số 1", "Vượt đèn đỏ"
            ),
        )
        fine = await get_fine(conn, number)
        payment, created = await pay.create_payment(
            conn, fine, "sgbank", "123456789", datetime.now(UTC)
        )
    assert created
    return payment


async def test_sweeper_starts_only_the_missing_workflow(
    engine: AsyncEngine, temporal_server: TemporalInfo, task_queue: str
) -> None:
    client = await Client.connect(temporal_server.address)
    # No worker polls this task queue: started workflows stay running.
    config = SagaConfig(task_queue, wt.VerifyPolicy())
    running, orphan = await _payment(engine), await _payment(engine)
    await start_payment(client, config, running.decision_key, running.id)
    later = datetime.now(UTC) + timedelta(minutes=1)

    assert await sweep_unstarted(client, engine, config, later, timedelta(seconds=10)) == 1
    for payment in (running, orphan):
        handle = client.get_workflow_handle(workflow_id_for(payment.decision_key))
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    # Both run now (listed, or confirmed by describe while the listing lags).
    assert await sweep_unstarted(client, engine, config, later, timedelta(seconds=10)) == 0
    # Too young to be swept: the API may still be starting it.
    assert await sweep_unstarted(client, engine, config, datetime.now(UTC), timedelta(hours=1)) == 0
    for payment in (running, orphan):
        await client.get_workflow_handle(workflow_id_for(payment.decision_key)).terminate()
