"""An in-process payment stack over real components, for integration tests:
the real API (aiohttp on 127.0.0.1), a real Temporal worker on its own task
queue, the real embedded PostgreSQL (a fresh database per test) and both bank
simulators as real HTTP servers with SQLite state."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import secrets
import socket
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Worker

from bank_adapters.simulators.admin import SimulatorAdmin
from bank_adapters.simulators.server import SIM_ACCOUNT_NUMBER, SIM_BANK_BIN, SimulatorHandle
from domain.business_time import business_date
from ledger.core.postings import ensure_bank_accounts
from reconciler.api.app import create_app
from reconciler.api.server import EdgeRunner
from reconciler.recon_wiring import recon_activities
from reconciler.settings import Settings
from reconciler.wiring import build_adapters, load_signer, load_verifier
from reconciler.worker import build_workers, require_audit_key, run_workers
from tests.support.api import make_token
from workflows.disputes.activities import DisputeActivities, DisputeDeps
from workflows.ops.activities import IntegrityActivities
from workflows.payment.activities import PaymentActivities, PaymentDeps
from workflows.reconciliation.activities import ReconciliationActivities

BANKS = {"sgbank": "rest", "hnbank": "vietqr"}
PAYER = "123456789"
WAIT_SECONDS_DEFAULT = 30.0
WORKER_STOP_SECONDS = 20.0
RECONCILE_SECONDS_MAX = 60.0
# Workflow ids carry these tables' ids (``dispute/<id>``, ``discrepancy/<id>``)
# and every test's database starts them afresh on one shared Temporal server.
ID_SEQUENCES = ("disputes_id_seq", "discrepancies_id_seq")


async def random_ids(engine: AsyncEngine) -> None:
    """Start the ids workflow ids derive from at random: the test databases
    share one Temporal server, whose workflow ids must not meet."""
    async with engine.begin() as conn:
        for sequence in ID_SEQUENCES:
            await conn.execute(
                text("SELECT setval(CAST(:seq AS regclass), :n)"),
                {"seq": sequence, "n": secrets.randbelow(10**12) + 1},
            )


def fast_settings(**overrides: Any) -> dict[str, Any]:
    """Verification timings shrunk so a test takes seconds, not minutes."""
    values: dict[str, Any] = {
        "verify_poll_interval_seconds_initial": 0.2,
        "verify_poll_interval_seconds_max": 1.0,
        "link_down_window_seconds": 3.0,
        "link_down_retry_seconds": 0.3,
        "in_doubt_alert_seconds": 3600.0,
        "sweeper_interval_seconds": 1.0,
    }
    values.update(overrides)
    return values


@dataclass
class SagaStack:
    engine: AsyncEngine
    settings: Settings
    client: Client
    session: aiohttp.ClientSession
    sims: dict[str, SimulatorHandle]
    admins: dict[str, SimulatorAdmin]
    api_url: str
    app: web.Application
    token: str
    activities: PaymentActivities
    # Set for a stack whose worker runs every activity the production worker
    # has (``saga_stack(full_worker=True)``), not only the payment saga's.
    disputes: DisputeActivities | None = None
    recon: ReconciliationActivities | None = None
    # The scheduled integrity checks' (workflows.ops), as the worker has them.
    integrity: IntegrityActivities | None = None
    _worker_task: asyncio.Task[None] | None = field(default=None, repr=False)
    _worker_stop: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    # -- worker ----------------------------------------------------------------
    def new_workers(self) -> list[Worker]:
        """What ``reconciler worker`` polls: the stack's task queue and one
        queue per bank, with the settings' slots."""
        return build_workers(
            self.client,
            self.settings.task_queue,
            self.activities,
            self.settings.banks,
            max_concurrent_activities=self.settings.worker_activities_max,
            bank_activities_max=self.settings.worker_bank_activities_max,
            dispute_activities=self.disputes,
            recon_activities=self.recon,
            integrity_activities=self.integrity,
        )

    async def start_worker(self) -> None:
        assert self._worker_task is None
        self._worker_stop = asyncio.Event()
        self._worker_task = asyncio.create_task(run_workers(self.new_workers(), self._worker_stop))

    async def stop_worker(self) -> None:
        """Stop the worker, bounded: a shutdown still waiting after
        WORKER_STOP_SECONDS (an activity stuck on a bank call) is cancelled."""
        if self._worker_task is not None:
            self._worker_stop.set()
            task, self._worker_task = self._worker_task, None
            try:
                await asyncio.wait_for(asyncio.shield(task), WORKER_STOP_SECONDS)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(task, WORKER_STOP_SECONDS)

    # -- API -----------------------------------------------------------------
    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def call(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        async with self.session.request(
            method, self.api_url + path, headers=headers, **kwargs
        ) as resp:
            body = await resp.json(content_type=None) if resp.status != 204 else None
            return resp.status, body

    async def new_fine(self, amount_vnd: int = 800_000) -> str:
        """Register a fine with a number unique across the test session (the
        Temporal dev server, and so workflow ids, are shared by all tests)."""
        number = f"{secrets.randbelow(10**9):09d}/QĐ-XPHC"
        await self.register_fine(number, amount_vnd)
        return number

    async def register_fine(self, number: str, amount_vnd: int = 800_000) -> dict[str, Any]:
        status, body = await self.call(
            "POST",
            "/api/v1/fines",
            json={
                "decision_number": number,
                "amount_vnd": amount_vnd,
                "violator_name": "Nguyễn Văn A",
                "plate": "29A-123.45",
                "issuing_unit": "Phòng CSGT Hà Nội",
                "violation": "Vượt đèn đỏ",
            },
        )
        assert status in (200, 201), body
        return dict(body)

    async def pay(
        self, number: str, bank: str, key: str | None = None, payer: str = PAYER
    ) -> tuple[int, Any]:
        return await self.call(
            "POST",
            f"/api/v1/fines/{quote(number)}/payments",
            json={"bank": bank, "payer_account": payer},
            headers={"Idempotency-Key": key or secrets.token_hex(8)},
        )

    async def payment(self, payment_id: str) -> dict[str, Any]:
        status, body = await self.call("GET", f"/api/v1/payments/{payment_id}")
        assert status == 200, body
        return dict(body)

    async def fine(self, number: str) -> dict[str, Any]:
        status, body = await self.call("GET", f"/api/v1/fines/{quote(number)}")
        assert status == 200, body
        return dict(body)

    async def wait_payment(
        self, payment_id: str, statuses: set[str], timeout_seconds: float = WAIT_SECONDS_DEFAULT
    ) -> dict[str, Any]:
        """Poll until the payment is in one of ``statuses`` (and, for a
        succeeded payment that settles its fine, has its receipt)."""

        async def done() -> dict[str, Any] | None:
            payment = await self.payment(payment_id)
            if payment["status"] not in statuses:
                return None
            if (
                payment["status"] == "succeeded"
                and payment["settles_fine"]
                and not payment["receipt"]
            ):
                return None
            return payment

        return await eventually(done, timeout_seconds, f"payment {payment_id} in {statuses}")

    async def reconcile(self, bank: str) -> tuple[dict[str, Any], str]:
        """Reconcile today's statement of ``bank`` over the API (the worker
        must be a full one); the finished run and its workflow id."""
        today = business_date(datetime.now(UTC)).isoformat()
        status, started = await self.call(
            "POST", "/api/v1/reconciliations", json={"bank": bank, "statement_date": today}
        )
        assert status == 202, started
        run_id = started["reconciliation_id"]

        async def done() -> dict[str, Any] | None:
            status, run = await self.call("GET", f"/api/v1/reconciliations/{run_id}")
            assert status == 200, run
            return run if run["status"] != "running" else None

        run = await eventually(done, RECONCILE_SECONDS_MAX, f"reconciliation {run_id}")
        return run, str(started["workflow_id"])

    async def bank_movements(self, bank: str, kind: str | None = None) -> list[dict[str, Any]]:
        rows = await self.admins[bank].debits()
        return [r for r in rows if kind is None or r.get("kind") == kind]


async def eventually(
    probe: Callable[[], Awaitable[Any] | Any], timeout_seconds: float, what: str
) -> Any:
    """Poll ``probe`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout_seconds
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_seconds:.0f} s waiting for {what}")


# ``saga_stack`` with a test's directory, database, Temporal server and task
# queue already given (the ``stack_with`` fixture); called with the options.
StackWith = Callable[..., contextlib.AbstractAsyncContextManager["SagaStack"]]


def quote(number: str) -> str:
    return urllib.parse.quote(number, safe="")


@contextlib.asynccontextmanager
async def saga_stack(
    tmp_path: Path,
    engine: AsyncEngine,
    db_url: str,
    temporal_address: str,
    task_queue: str,
    *,
    start_worker: bool = True,
    full_worker: bool = False,
    **overrides: Any,
) -> AsyncIterator[SagaStack]:
    # The API's port is held from the start (the simulators need its URL for
    # their webhooks before the app exists): a port only probed free could
    # be taken meanwhile by a simulator or another test's server.
    api_socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    api_socket.bind(("127.0.0.1", 0))
    api_port = api_socket.getsockname()[1]
    api_url = f"http://127.0.0.1:{api_port}"
    secret = secrets.token_urlsafe(16)
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(api_socket.close)
        sims = await _start_simulators(stack, tmp_path, api_url, secret)
        settings = Settings(
            env="dev",
            database_url=db_url,
            temporal_address=temporal_address,
            task_queue=task_queue,
            public_base_url=api_url,
            data_dir=tmp_path,
            banks=_bank_settings(sims, secret),  # type: ignore[arg-type]
            **fast_settings(**overrides),
        )
        async with engine.begin() as conn:
            await ensure_bank_accounts(conn, list(BANKS))
        session = await stack.enter_async_context(aiohttp.ClientSession())
        client = await Client.connect(temporal_address)
        # The production edge (reconciler.api.server), not aiohttp's default.
        runner = EdgeRunner(
            create_app(settings, engine=engine), idle_seconds=settings.http_idle_seconds
        )
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await web.SockSite(runner, api_socket).start()
        saga = SagaStack(
            engine=engine,
            settings=settings,
            client=client,
            session=session,
            sims=sims,
            admins={b: SimulatorAdmin(session, s.admin_url) for b, s in sims.items()},
            api_url=api_url,
            app=runner.app,
            token=await make_token(engine, "admin"),
            activities=PaymentActivities(
                PaymentDeps(
                    engine=engine,
                    adapters=build_adapters(settings, session),
                    signer=load_signer(settings),
                    public_base_url=api_url,
                )
            ),
            integrity=_integrity_checks(settings, engine),
        )
        if full_worker:
            await _add_every_activity(saga)
        stack.push_async_callback(saga.stop_worker)
        if start_worker:
            await saga.start_worker()
        yield saga


async def _start_simulators(
    stack: contextlib.AsyncExitStack, tmp_path: Path, api_url: str, secret: str
) -> dict[str, SimulatorHandle]:
    """Both bank simulators as real HTTP servers, stopped with ``stack``."""
    sims: dict[str, SimulatorHandle] = {}
    for bank, protocol in BANKS.items():
        sim = SimulatorHandle(
            protocol,  # type: ignore[arg-type]
            tmp_path / f"{bank}.sqlite",
            bank_id=bank,
            webhook_url=f"{api_url}/webhooks/{bank}" if protocol == "rest" else None,
            webhook_secret=secret if protocol == "rest" else "",
            # Bank references (and so external-debit workflow ids) must
            # not repeat across tests: the Temporal server is shared.
            movement_id_start=1 + secrets.randbelow(90_000_000),
        )
        sims[bank] = await stack.enter_async_context(sim)
    return sims


BANK_READ_TIMEOUT_SECONDS = 3.0


def _bank_settings(sims: dict[str, SimulatorHandle], secret: str) -> dict[str, Any]:
    return {
        bank: {
            "protocol": protocol,
            "url": sims[bank].url,
            "admin_url": sims[bank].admin_url,
            "webhook_secret": secret if protocol == "rest" else "",
            "account_number": SIM_ACCOUNT_NUMBER,
            "bank_bin": SIM_BANK_BIN,
            # A hung answer is cut after 3 s, not 10: the tests of unknown
            # outcomes wait for it.
            "read_timeout_seconds": BANK_READ_TIMEOUT_SECONDS,
        }
        for bank, protocol in BANKS.items()
    }


def _integrity_checks(settings: Settings, engine: AsyncEngine) -> IntegrityActivities:
    """The scheduled integrity checks, with the stack's keys, as the worker."""
    return IntegrityActivities(engine, load_verifier(settings), require_audit_key(settings))


async def _add_every_activity(saga: SagaStack) -> None:
    """Disputes and reconciliation next to the payment saga, as
    ``reconciler.worker`` runs them."""
    adapters = build_adapters(saga.settings, saga.session)
    saga.disputes = DisputeActivities(DisputeDeps(saga.engine, adapters))
    saga.recon = recon_activities(saga.settings, saga.engine, adapters, saga.client)
    await random_ids(saga.engine)
