"""The integrity checks the ``IntegrityChecks`` workflow runs on its Temporal
Schedule: a clean ledger is exported as a success, a receipt or an audit row
changed behind the service's back (by someone with the owner's rights) as a
failure with its problem count, which IntegrityCheckFailed turns into a
page."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import aiohttp
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core.audit import append_audit
from ledger.receipts.signing import ReceiptSigner
from reconciler.audit_anchoring import anchor_audit_head
from reconciler.devstack.ports import free_port
from tests.integration.payments.test_worker_kill import WorkerProcesses, worker_env
from tests.support.receipts import NOW, issue, paid_fine
from tests.support.stack import StackWith, eventually
from workflows.ops.activities import IntegrityActivities
from workflows.ops.schedules import schedule_ids
from workflows.ops.types import Tick


async def run_integrity_checks(activities: IntegrityActivities) -> dict[str, int]:
    """Both scheduled checks' activities, as the workflow runs them."""
    found = [await activities.verify_receipts(Tick()), await activities.verify_audit(Tick())]
    return {result.check: result.problems for result in found}


def _gauge(name: str, check: str) -> float:
    return REGISTRY.get_sample_value(name, {"check": check}) or 0.0


async def _history(engine: AsyncEngine, signer: ReceiptSigner, key: bytes) -> None:
    for _ in range(2):
        await issue(engine, await paid_fine(engine), signer)
    async with engine.begin() as conn:
        await append_audit(
            conn, actor="fin", action="test.step", subject_type="thing", subject_id="1", now=NOW
        )
    await anchor_audit_head(engine, key)


async def test_a_clean_ledger_passes_and_a_tampered_one_fails(
    engine: AsyncEngine, owner_engine: AsyncEngine
) -> None:
    signer, key = ReceiptSigner.generate(), secrets.token_bytes(32)
    await _history(engine, signer, key)
    started = time.time()
    failed_before = {
        c: _gauge("integrity_check_last_failure_timestamp_seconds", c)
        for c in ("receipts", "audit")
    }

    checks = IntegrityActivities(engine, signer.verifier(), key)
    assert await run_integrity_checks(checks) == {"receipts": 0, "audit": 0}
    for check in ("receipts", "audit"):
        assert _gauge("integrity_check_last_success_timestamp_seconds", check) >= started
        assert (
            _gauge("integrity_check_last_failure_timestamp_seconds", check) == failed_before[check]
        )
        assert _gauge("integrity_check_problems", check) == 0

    async with owner_engine.begin() as conn:  # an intruder with the owner's rights
        await conn.execute(text("ALTER TABLE receipts DISABLE TRIGGER receipts_immutable"))
        await conn.execute(
            text(
                "UPDATE receipts SET payload = jsonb_set(payload, '{amount_vnd}', '1')"
                " WHERE number = 1"
            )
        )
        await conn.execute(text("ALTER TABLE receipts ENABLE TRIGGER receipts_immutable"))
        await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        await conn.execute(
            text("UPDATE audit_log SET actor = 'mallory' WHERE action = 'test.step'")
        )
        await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
    tampered = time.time()

    found = await run_integrity_checks(checks)
    assert found["receipts"] >= 1
    assert found["audit"] >= 1
    for check in ("receipts", "audit"):
        assert _gauge("integrity_check_last_failure_timestamp_seconds", check) >= tampered
        assert _gauge("integrity_check_problems", check) == found[check]
        # The newest result is the failure: what the alert compares.
        assert _gauge("integrity_check_last_failure_timestamp_seconds", check) > _gauge(
            "integrity_check_last_success_timestamp_seconds", check
        )


async def test_a_worker_process_runs_them_at_start(stack_with: StackWith, tmp_path: Path) -> None:
    """``reconciler worker`` as a real process: it creates the integrity
    schedule, which runs the checks at once, and its metrics show both
    passed."""
    port = free_port()
    async with stack_with(start_worker=False) as stack:
        env = {**worker_env(stack), "RECONCILER_WORKER_METRICS_PORT": str(port)}
        procs = WorkerProcesses(env, tmp_path / "worker.log")
        procs.start()
        try:

            async def exported() -> bool:
                try:
                    async with stack.session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                        body = await resp.text()
                except aiohttp.ClientError:
                    return False
                return all(
                    f'integrity_check_last_success_timestamp_seconds{{check="{c}"}}' in body
                    and f'integrity_check_problems{{check="{c}"}} 0.0' in body
                    for c in ("receipts", "audit")
                )

            await eventually(exported, 60, "the worker to export both checks")
        finally:
            procs.stop_all()
            # The shared Temporal server keeps no schedule of a finished test.
            for schedule_id in schedule_ids(stack.settings.task_queue):
                await stack.client.get_schedule_handle(schedule_id).delete()
