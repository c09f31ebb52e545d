from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.business_time import business_date
from reconciler.devstack.temporal import TemporalInfo
from reconciler.recon_wiring import recon_activities
from reconciler.wiring import build_adapters
from reconciler.worker import build_workers, run_workers
from tests.support.stack import SagaStack, eventually, saga_stack


@dataclass
class ReconStack:
    """The saga stack with a worker that also runs reconciliations."""

    saga: SagaStack

    @property
    def today(self) -> date:
        return business_date(datetime.now(UTC))

    async def reconcile(self, bank: str, day: date | None = None) -> dict[str, Any]:
        """Start a reconciliation over the API and wait for it to finish."""
        status, started = await self.saga.call(
            "POST",
            "/api/v1/reconciliations",
            json={"bank": bank, "statement_date": (day or self.today).isoformat()},
        )
        assert status == 202, started
        return await self.wait_run(started["reconciliation_id"])

    async def wait_run(self, run_id: int, timeout_seconds: float = 60.0) -> dict[str, Any]:
        async def done() -> dict[str, Any] | None:
            status, run = await self.saga.call("GET", f"/api/v1/reconciliations/{run_id}")
            assert status == 200, run
            return run if run["status"] != "running" else None

        run: dict[str, Any] = await eventually(done, timeout_seconds, f"reconciliation {run_id}")
        return run

    async def receipted(self, number: str) -> dict[str, Any] | None:
        """The fine, once it is paid with a receipt (for ``eventually``)."""
        fine: dict[str, Any] = await self.saga.fine(number)
        return fine if fine["status"] == "paid" and fine["receipt"] else None

    async def discrepancy_audit(self) -> list[tuple[str, str]]:
        """(action, discrepancy id) of every audit record about a discrepancy."""
        async with self.saga.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT action, subject_id FROM audit_log"
                    " WHERE subject_type = 'discrepancy' ORDER BY id"
                )
            )
            return [(row.action, row.subject_id) for row in rows]


def _random_start() -> int:
    return 1_000_000 + secrets.randbelow(90_000_000)


@pytest.fixture
async def recon_stack(
    tmp_path: Path,
    engine: AsyncEngine,
    db_url: str,
    temporal_server: TemporalInfo,
    task_queue: str,
    request: pytest.FixtureRequest,
) -> AsyncIterator[ReconStack]:
    overrides: dict[str, Any] = getattr(request, "param", {})
    async with saga_stack(
        tmp_path,
        engine,
        db_url,
        temporal_server.address,
        task_queue,
        start_worker=False,
        **overrides,
    ) as stack:
        async with engine.begin() as conn:
            # Workflow ids carry discrepancy ids (discrepancy/<id>), and the
            # Temporal server is shared by every test of the session.
            await conn.execute(
                text("SELECT setval('discrepancies_id_seq', :n, false)"), {"n": _random_start()}
            )
        activities = recon_activities(
            stack.settings, engine, build_adapters(stack.settings, stack.session), stack.client
        )
        workers = build_workers(
            stack.client,
            task_queue,
            stack.activities,
            stack.settings.banks,
            recon_activities=activities,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(run_workers(workers, stop))
        try:
            yield ReconStack(stack)
        finally:
            stop.set()
            await task
