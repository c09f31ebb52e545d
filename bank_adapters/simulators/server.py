"""Running a bank simulator: two aiohttp servers (the bank port and the admin
port), the link controller, settlement and webhook delivery.

``run_simulator`` is what ``reconciler sim`` calls; ``SimulatorHandle`` runs
one in-process for tests (free ports on 127.0.0.1, restartable on the same
ports and state file).

``link_down`` and ``flap`` really close the bank port's listener and cut its
open connections, so clients get "connection refused"; the admin port stays
up. While the link is down, webhooks wait too.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Self

import aiohttp
from aiohttp import web

from bank_adapters.simulators.admin_api import admin_application
from bank_adapters.simulators.common import SimConfig, SimCore, SimProtocol
from bank_adapters.simulators.rest_sim import rest_bank_app
from bank_adapters.simulators.store import SimStore
from bank_adapters.simulators.vietqr_sim import vietqr_bank_app
from bank_adapters.webhooks import sign_webhook

SIM_ACCOUNT_NUMBER: Final = "0011001234567"
SIM_BANK_BIN: Final = "970499"
_LINK_TICK_SECONDS: Final = 0.05
_HOUSEKEEPING_TICK_SECONDS: Final = 0.1
_WEBHOOK_BATCH_MAX: Final = 20
_WEBHOOK_ATTEMPTS_MAX: Final = 12
_WEBHOOK_TIMEOUT_SECONDS: Final = 5.0
_WEBHOOK_BACKOFF_SECONDS_MAX: Final = 60.0
# In-flight requests get this long when the link "drops" or the simulator
# stops; a hung timeout_after_debit answer is cut, as a real outage would.
_BANK_SHUTDOWN_SECONDS: Final = 0.2


@dataclass(frozen=True, slots=True)
class SimulatorInfo:
    protocol: SimProtocol
    bank_id: str
    url: str
    admin_url: str
    account_number: str
    bank_bin: str


class Simulator:
    def __init__(
        self, config: SimConfig, state_path: Path, *, host: str, port: int, admin_port: int
    ) -> None:
        self._config = config
        self._state_path = state_path
        self._host = host
        self._port = port
        self._admin_port = admin_port
        self._stopping = asyncio.Event()
        self._webhook_wake = asyncio.Event()
        self._link_lock = asyncio.Lock()
        self._store: SimStore | None = None
        self._core: SimCore | None = None
        self._bank_runner: web.AppRunner | None = None
        self._admin_runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def core(self) -> SimCore:
        assert self._core is not None, "not started"
        return self._core

    async def start(self) -> SimulatorInfo:
        prefix = "FT" if self._config.protocol == "rest" else "QR"
        self._store = SimStore(
            self._state_path,
            bank_ref_prefix=prefix,
            movement_id_start=self._config.movement_id_start,
        )
        self._core = SimCore(
            self._config, self._store, self._stopping, self._apply_link, self._webhook_wake.set
        )
        if self._config.webhook_url is not None:
            self._session = aiohttp.ClientSession()
        self._admin_runner = web.AppRunner(
            admin_application(self._core), access_log=None, shutdown_timeout=1.0
        )
        await self._admin_runner.setup()
        admin_site = web.TCPSite(self._admin_runner, self._host, self._admin_port)
        await admin_site.start()
        self._admin_port = admin_site.port
        # Bind once even if the link starts down, to learn (and keep) the port.
        await self._bank_up()
        self._core.url = self.url
        await self._apply_link()
        self._tasks = [
            asyncio.create_task(self._link_loop(), name="sim-link"),
            asyncio.create_task(self._housekeeping_loop(), name="sim-housekeeping"),
        ]
        return self.info

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def admin_url(self) -> str:
        return f"http://{self._host}:{self._admin_port}"

    @property
    def ports(self) -> tuple[int, int]:
        return self._port, self._admin_port

    @property
    def info(self) -> SimulatorInfo:
        return SimulatorInfo(
            protocol=self._config.protocol,
            bank_id=self._config.bank_id,
            url=self.url,
            admin_url=self.admin_url,
            account_number=self._config.account_number,
            bank_bin=self._config.bank_bin,
        )

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self._bank_down()
        if self._admin_runner is not None:
            await self._admin_runner.cleanup()
            self._admin_runner = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._store is not None:
            self._store.close()
            self._store = None

    # --- the link ---------------------------------------------------------------

    async def _bank_up(self) -> None:
        core = self.core
        app = rest_bank_app(core) if self._config.protocol == "rest" else vietqr_bank_app(core)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=_BANK_SHUTDOWN_SECONDS)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port, reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._port = site.port
        self._bank_runner = runner
        core.link_up = True

    async def _bank_down(self) -> None:
        if self._bank_runner is not None:
            runner, self._bank_runner = self._bank_runner, None
            await runner.cleanup()
        if self._core is not None:
            self._core.link_up = False

    async def _apply_link(self) -> None:
        async with self._link_lock:
            if self._stopping.is_set():
                return
            down = self.core.link_should_be_down()
            if down and self._bank_runner is not None:
                await self._bank_down()
            elif not down and self._bank_runner is None:
                await self._bank_up()
                self._webhook_wake.set()

    async def _link_loop(self) -> None:
        while not self._stopping.is_set():
            await self._apply_link()
            await self.core.sleep(_LINK_TICK_SECONDS)

    # --- settlement, expiry, webhooks -------------------------------------------

    async def _housekeeping_loop(self) -> None:
        while not self._stopping.is_set():
            self.core.store.delete_expired_faults(time.time())
            self.core.settle_due()
            await self._deliver_due_webhooks()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._webhook_wake.wait(), _HOUSEKEEPING_TICK_SECONDS)
            self._webhook_wake.clear()

    async def _deliver_due_webhooks(self) -> None:
        url = self._config.webhook_url
        if url is None or self._session is None or not self.core.link_up:
            return
        store = self.core.store
        for row in store.due_webhooks(time.time(), _WEBHOOK_BATCH_MAX):
            body = row.payload.encode("utf-8")
            headers = sign_webhook(
                self._config.webhook_secret,
                body,
                timestamp=int(time.time()),
                nonce=secrets.token_urlsafe(18),
            )
            headers["Content-Type"] = "application/json"
            error = ""
            try:
                async with self._session.post(
                    url,
                    data=body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=_WEBHOOK_TIMEOUT_SECONDS),
                ) as response:
                    await response.content.read(4096)
                    if not 200 <= response.status < 300:
                        error = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
            if not error:
                store.webhook_delivered(row.id, time.time())
                continue
            attempts = row.attempts + 1
            backoff = min(2.0**attempts, _WEBHOOK_BACKOFF_SECONDS_MAX)
            store.webhook_failed(
                row.id, error, time.time() + backoff, give_up=attempts >= _WEBHOOK_ATTEMPTS_MAX
            )


async def run_simulator(
    protocol: str,
    bank_id: str,
    host: str,
    port: int,
    admin_port: int,
    state_path: Path,
    webhook_url: str | None,
    webhook_secret: str,
    stop: asyncio.Event | None = None,
    *,
    account_number: str = SIM_ACCOUNT_NUMBER,
    bank_bin: str = SIM_BANK_BIN,
    transfer_content_length_max: int = 50,
    ready: Callable[[SimulatorInfo], None] | None = None,
) -> None:
    """Run one bank simulator until ``stop`` is set (or the task is
    cancelled). ``port``/``admin_port`` 0 pick free ports; ``ready`` is
    called with the actual URLs once both ports answer. State lives in
    ``state_path`` (SQLite), so a restart on the same file loses nothing."""
    if protocol not in ("rest", "vietqr"):
        raise ValueError(f"protocol must be rest or vietqr, got {protocol!r}")
    config = SimConfig(
        protocol="rest" if protocol == "rest" else "vietqr",
        bank_id=bank_id,
        account_number=account_number,
        bank_bin=bank_bin,
        webhook_url=webhook_url,
        webhook_secret=webhook_secret.encode("utf-8"),
        transfer_content_length_max=transfer_content_length_max,
    )
    simulator = Simulator(config, state_path, host=host, port=port, admin_port=admin_port)
    info = await simulator.start()
    try:
        if ready is not None:
            ready(info)
        await (stop if stop is not None else asyncio.Event()).wait()
    finally:
        await simulator.stop()


class SimulatorHandle:
    """An in-process simulator for tests and benchmarks::

        async with SimulatorHandle("rest", tmp_path / "bank.sqlite") as sim:
            adapter = build_adapter("bank-a", "rest", sim.url, session)
            ...
            await sim.restart()   # same ports, same state file

    Listens on 127.0.0.1 only.
    """

    def __init__(
        self,
        protocol: SimProtocol,
        state_path: Path,
        *,
        bank_id: str | None = None,
        webhook_url: str | None = None,
        webhook_secret: str = "",
        account_number: str = SIM_ACCOUNT_NUMBER,
        bank_bin: str = SIM_BANK_BIN,
        transfer_content_length_max: int = 50,
        movement_id_start: int = 1,
    ) -> None:
        self._config = SimConfig(
            protocol=protocol,
            bank_id=bank_id or f"sim-{protocol}",
            account_number=account_number,
            bank_bin=bank_bin,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret.encode("utf-8"),
            transfer_content_length_max=transfer_content_length_max,
            movement_id_start=movement_id_start,
        )
        self._state_path = state_path
        self._ports = (0, 0)
        self._simulator: Simulator | None = None

    async def start(self) -> None:
        assert self._simulator is None, "already running"
        simulator = Simulator(
            self._config,
            self._state_path,
            host="127.0.0.1",
            port=self._ports[0],
            admin_port=self._ports[1],
        )
        try:
            await simulator.start()
        except BaseException:
            await simulator.stop()
            raise
        self._simulator = simulator
        self._ports = simulator.ports

    async def stop(self) -> None:
        if self._simulator is not None:
            simulator, self._simulator = self._simulator, None
            await simulator.stop()

    async def restart(self) -> None:
        """Stop everything (state file closed) and start again on the same ports."""
        await self.stop()
        await self.start()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def info(self) -> SimulatorInfo:
        assert self._simulator is not None, "not running"
        return self._simulator.info

    @property
    def url(self) -> str:
        return self.info.url

    @property
    def admin_url(self) -> str:
        return self.info.admin_url

    @property
    def bank_id(self) -> str:
        return self._config.bank_id

    @property
    def account_number(self) -> str:
        return self._config.account_number

    @property
    def bank_bin(self) -> str:
        return self._config.bank_bin
