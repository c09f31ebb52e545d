"""kill -9 of the worker in the middle of a saga (invariant 5 of docs/invariants.md).

The worker runs as a real process (``python -m reconciler worker``, settings
from ``RECONCILER_*``); the API and both simulators run in the test
(``saga_stack(start_worker=False)``). It is killed with SIGKILL while

* a REST debit is in flight: the bank has taken the money and holds its
  answer (``timeout_after_debit``), so the worker dies not knowing; and
* a VietQR payment is being verified (its answer was lost).

A new worker process takes over: each payment ends with exactly one debit
at the bank (the simulators' ground truth) and exactly one receipt, and no
process of ours is left behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from ledger.core.postings import balances, posting_sums
from reconciler.devstack.process import log_tail
from tests.support import db
from tests.support.stack import SagaStack, StackWith, eventually, fast_settings

REPO_ROOT = Path(__file__).resolve().parents[3]
STOP_SECONDS_MAX = 20.0
# The killed attempt of the debit activity is retried once its start-to-close
# timeout (workflows.common.BANK_CALL_TIMEOUT, 30 s) runs out on the server.
IN_FLIGHT_RESOLVE_SECONDS_MAX = 90.0


def worker_env(stack: SagaStack) -> dict[str, str]:
    settings = stack.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECONCILER_")}
    env.update(
        {
            "RECONCILER_DATABASE_URL": settings.database_url,
            "RECONCILER_TEMPORAL_ADDRESS": settings.temporal_address,
            "RECONCILER_TASK_QUEUE": settings.task_queue,
            "RECONCILER_PUBLIC_BASE_URL": settings.public_base_url,
            "RECONCILER_DATA_DIR": str(settings.data_dir),
            "RECONCILER_BANKS": json.dumps(
                {bank: b.model_dump() for bank, b in settings.banks.items()}
            ),
            "RECONCILER_WORKER_METRICS_PORT": "0",
            # Not the default: a dev stack on the machine may hold it.
            "RECONCILER_WORKER_SDK_METRICS_PORT": "0",
            "RECONCILER_DB_POOL_SIZE": "5",
            "RECONCILER_LOG_FORMAT": "console",
            "RECONCILER_ENV": "dev",
        }
    )
    env.update({f"RECONCILER_{k.upper()}": str(v) for k, v in fast_settings().items()})
    return env


class WorkerProcesses:
    """Every worker process this test starts, so that none can outlive it."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "reconciler", "worker"],
                cwd=REPO_ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.procs.append(proc)
        return proc

    def assert_alive(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.poll() is None, (
            f"worker exited with {proc.returncode}:\n{log_tail(self.log_path, 40)}"
        )

    def stop_all(self) -> None:
        """SIGTERM (a clean stop), SIGKILL only if it hangs; always reaped."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=STOP_SECONDS_MAX)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def processes_with_env(name: str, value: str) -> list[psutil.Process]:
    """Live processes whose environment has ``name=value`` (ours: the task
    queue is unique to this test)."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(name) == value and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


@pytest.fixture
def workers(tmp_path: Path, task_queue: str) -> Iterator[list[WorkerProcesses]]:
    holder: list[WorkerProcesses] = []
    yield holder
    for w in holder:
        w.stop_all()
    for w in holder:
        assert all(proc.returncode is not None for proc in w.procs), "a worker was not reaped"
    leftovers = processes_with_env("RECONCILER_TASK_QUEUE", task_queue)
    assert not leftovers, f"processes left over: {[(p.pid, p.cmdline()) for p in leftovers]}"


def debit_key(payment_id: str) -> str:
    return f"fp-{payment_id.replace('-', '')}"


async def debits_with_key(stack: SagaStack, bank: str, key: str) -> list[dict[str, Any]]:
    return [m for m in await stack.bank_movements(bank, "debit") if m["idempotency_key"] == key]


async def test_worker_killed_mid_saga_finishes_each_payment_once(
    tmp_path: Path, stack_with: StackWith, workers: list[WorkerProcesses]
) -> None:
    async with stack_with(start_worker=False) as stack:
        procs = WorkerProcesses(worker_env(stack), tmp_path / "worker.log")
        workers.append(procs)
        first = procs.start()

        rest_fine, qr_fine = await stack.new_fine(), await stack.new_fine(600_000)
        await stack.admins["hnbank"].add_fault("lost_response")
        _, qr = await stack.pay(qr_fine, "hnbank")
        qr_id = qr["payment_id"]

        async def verifying() -> bool:
            procs.assert_alive(first)
            return (await stack.payment(qr_id))["status"] == "verifying"

        await eventually(verifying, 60, "the QR payment to be verified")
        # The bank takes the money and holds its answer far beyond the
        # adapter's read timeout (10 s): we kill well before that.
        await stack.admins["sgbank"].add_fault("timeout_after_debit", hang_seconds=120)
        _, rest = await stack.pay(rest_fine, "sgbank")
        rest_id = rest["payment_id"]

        async def debit_made() -> bool:
            procs.assert_alive(first)
            return bool(await debits_with_key(stack, "sgbank", debit_key(rest_id)))

        await eventually(debit_made, 30, "the REST debit to be made")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        assert first.returncode == -signal.SIGKILL

        # The worker died before hearing the bank: the ledger does not know yet.
        assert (await stack.payment(rest_id))["status"] == "initiated"
        assert (await stack.payment(qr_id))["status"] == "verifying"
        await stack.admins["sgbank"].clear_faults()
        await stack.admins["hnbank"].clear_faults()

        second = procs.start()
        rest_done = await stack.wait_payment(
            rest_id, {"succeeded"}, timeout_seconds=IN_FLIGHT_RESOLVE_SECONDS_MAX
        )
        qr_done = await stack.wait_payment(qr_id, {"succeeded"})
        procs.assert_alive(second)

        for bank, payment in (("sgbank", rest_done), ("hnbank", qr_done)):
            statuses = [h["to_status"] for h in payment["history"]]
            assert "declined" not in statuses, payment
            debits = await debits_with_key(stack, bank, debit_key(payment["payment_id"]))
            assert [d["status"] for d in debits] == ["succeeded"], debits
            assert debits[0]["bank_ref"] == payment["bank_ref"]
            sql = "SELECT count(*) FROM receipts WHERE payment_id = :id"
            assert await db.value(stack.engine, sql, id=payment["payment_id"]) == 1
            assert await stack.bank_movements(bank, "refund") == []
        for number in (rest_fine, qr_fine):
            assert (await stack.fine(number))["status"] == "paid"
        async with stack.engine.connect() as conn:
            assert await balances(conn) == await posting_sums(conn)
        await asyncio.to_thread(procs.stop_all)
        assert second.returncode == 0, log_tail(procs.log_path, 40)
