"""``reconciler dev``: a small supervisor over a list of components.

Infrastructure (PostgreSQL, Temporal) starts first, then migrations and demo
data, then the service processes. Each component has a log under
``DIR/logs``; if one fails to start, everything stops and the message names
it and its log. One that dies later is restarted by the supervisor
(``reconciler.devstack.supervisor``) up to a cap, or, with ``--no-restart``,
everything stops. ``DIR/dev.json`` is written only once everything
answers, and removed on the way out (its URLs die with the stack).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import signal
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeAlias

import structlog

from ledger.migrations import DEFAULT_APP_ROLE as APP_ROLE
from reconciler.devstack.ports import free_port
from reconciler.devstack.postgres import EmbeddedPostgres
from reconciler.devstack.process import Component as ProcessComponent
from reconciler.devstack.process import ComponentFailedError, ManagedProcess
from reconciler.devstack.restarts import RestartPolicy
from reconciler.devstack.supervisor import Supervisor, Watched
from reconciler.devstack.temporal import TemporalDevServer

log = structlog.get_logger(__name__)

STARTUP_TIMEOUT_SECONDS = 90.0
DEMO_ROLES = ("officer", "finance", "approver", "operator", "admin")
# The dev stack's banks: one simulator per protocol.
DEV_BANKS = {"sgbank": "rest", "hnbank": "vietqr"}
SIM_ACCOUNT_NUMBER = "0011001234567"
SIM_BANK_BIN = "970499"
# Several workers or API processes on one machine: a few show scale-out;
# more would only fight for its cores.
MAX_PROCS = 8


# What the stack runs and the supervisor watches.
Component: TypeAlias = Watched


def _numbered(kind: str, count: int) -> list[str]:
    """``worker``, ``worker-2``, ...: the first keeps the name it always had."""
    return [kind if n == 1 else f"{kind}-{n}" for n in range(1, count + 1)]


def http_ok(url: str, timeout_seconds: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_seconds) as resp:  # noqa: S310 -- our own loopback URL
            return 200 <= int(resp.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False


@dataclass
class ServiceComponent:
    """One ``reconciler ...`` subprocess, ready when ``ready_url`` answers 2xx."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready_url: str | None
    _proc: ManagedProcess | None = field(default=None, init=False)

    def start(self) -> None:
        self._proc = ManagedProcess(self.name, self.argv, self.log_path, env=self.env)
        self._proc.start()
        url = self.ready_url
        if url is not None:
            self._proc.wait_until(lambda: http_ok(url), STARTUP_TIMEOUT_SECONDS, "answering")

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop()

    def alive(self) -> bool:
        return self._proc is not None and self._proc.alive()

    def returncode(self) -> int | None:
        return self._proc.returncode() if self._proc else None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None


@dataclass
class InfraComponent:
    """PostgreSQL or Temporal: a ``process.Component`` under a name."""

    name: str
    server: ProcessComponent

    @property
    def log_path(self) -> Path:
        return self.server.log_path

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def alive(self) -> bool:
        return self.server.alive()

    def returncode(self) -> int | None:
        return self.server.returncode()

    @property
    def pid(self) -> int | None:
        return self.server.pid


@dataclass
class StackState:
    """Secrets and credentials kept in ``DIR/stack.json`` so that a second
    ``reconciler dev`` on the same directory reuses them with its data."""

    api_token: str = ""
    passwords: dict[str, str] = field(default_factory=dict)
    webhook_secrets: dict[str, str] = field(default_factory=dict)
    citizen_link_secret: str = ""

    @classmethod
    def load(cls, path: Path) -> StackState:
        if not path.exists():
            return cls()
        raw = json.loads(path.read_text())
        return cls(
            api_token=raw.get("api_token", ""),
            passwords=dict(raw.get("passwords", {})),
            webhook_secrets=dict(raw.get("webhook_secrets", {})),
            citizen_link_secret=str(raw.get("citizen_link_secret", "")),
        )

    def save(self, path: Path) -> None:
        write_private(
            path,
            json.dumps(
                {
                    "api_token": self.api_token,
                    "passwords": self.passwords,
                    "webhook_secrets": self.webhook_secrets,
                    "citizen_link_secret": self.citizen_link_secret,
                },
                indent=2,
            ),
        )


def write_private(path: Path, text: str) -> None:
    """Replace ``path`` with ``text``, readable by its owner only from the
    first byte: the file is created with mode 0600 (never written first and
    restricted after, when another user could open it in between), then
    renamed over ``path``. A temporary file left by a crash is removed
    first, since opening it again would keep its old mode."""
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        os.fchmod(file.fileno(), 0o600)  # the umask can only have removed bits
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    tmp.replace(path)


def python_cli() -> list[str]:
    return [sys.executable, "-m", "reconciler"]


@contextlib.contextmanager
def _exclusive(data_dir: Path) -> Iterator[IO[str]]:
    lock_file = (data_dir / ".lock").open("w")
    try:
        fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock_file.close()
        raise ComponentFailedError(
            "dev", f"another `reconciler dev` is already running on {data_dir}", None
        ) from None
    try:
        yield lock_file
    finally:
        fcntl.flock(lock_file, fcntl.LOCK_UN)
        lock_file.close()


class _Stop(BaseException):
    """Raised from the signal handler to unwind into the clean shutdown; a
    BaseException (as KeyboardInterrupt is) so that no ``except Exception``
    on the way, such as the supervisor's around a restart, swallows it."""


class DevStack:
    def __init__(
        self,
        data_dir: Path,
        api_port: int | None = None,
        *,
        restart: bool = True,
        restart_delay: float = RestartPolicy.initial_delay_seconds,
        workers: int = 1,
        api_procs: int = 1,
        seed: bool = True,
    ) -> None:
        if not (1 <= workers <= MAX_PROCS and 1 <= api_procs <= MAX_PROCS):
            raise ValueError(f"workers and api_procs: 1..{MAX_PROCS} each")
        self.workers, self.api_procs = workers, api_procs
        self.seed = seed
        self.data_dir = data_dir.resolve()
        self.restart_policy = (
            RestartPolicy(initial_delay_seconds=restart_delay) if restart else None
        )
        self.supervisor: Supervisor | None = None
        self.logs = self.data_dir / "logs"
        self.api_port = api_port or free_port()
        self.dev_json = self.data_dir / "dev.json"
        self.state_path = self.data_dir / "stack.json"
        # Every WAL segment is archived next to the cluster, for a
        # point-in-time restore (docs/runbook.md).
        self.postgres = EmbeddedPostgres(
            self.data_dir / "postgres",
            self.logs / "postgres.log",
            wal_archive=self.data_dir / "wal-archive",
        )
        self.temporal = TemporalDevServer(
            self.data_dir / "temporal" / "temporal.db", self.logs / "temporal.log"
        )
        self.started: list[Component] = []
        self.info: dict[str, Any] = {}

    # -- composition -------------------------------------------------------------
    def base_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                # The services connect as the app's role (DML only); the
                # migrations ran as the superuser.
                "RECONCILER_DATABASE_URL": self.postgres.info.as_user(APP_ROLE).url(),
                "RECONCILER_ENV": "dev",
                "RECONCILER_TEMPORAL_ADDRESS": self.temporal.info.address,
                "RECONCILER_DATA_DIR": str(self.data_dir),
                "RECONCILER_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.api_port}",
                "RECONCILER_LOG_FORMAT": "json",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def infrastructure(self) -> list[Component]:
        return [
            InfraComponent("postgres", self.postgres),
            InfraComponent("temporal", self.temporal),
        ]

    def services(self, state: StackState) -> list[Component]:
        """The service processes, in start order: bank simulators, API(s),
        worker(s), prober. A new process is one more entry here."""
        api_url = f"http://127.0.0.1:{self.api_port}"
        sims, banks_env = self._simulators(state, api_url)
        env = self.base_env()
        env["RECONCILER_BANKS"] = json.dumps(banks_env)
        env["RECONCILER_RECEIPT_LINK_KEY"] = state.citizen_link_secret
        worker_ports = [free_port() for _ in range(self.workers)]
        prober_port = free_port()
        env["RECONCILER_WORKER_METRICS_PORT"] = str(worker_ports[0])
        env["RECONCILER_PROBER_METRICS_PORT"] = str(prober_port)
        api_ports = [self.api_port, *(free_port() for _ in range(self.api_procs - 1))]
        metrics_urls: dict[str, str] = {}
        services: list[Component] = [*sims]
        for name, port in zip(_numbered("api", self.api_procs), api_ports, strict=True):
            argv = [*python_cli(), "api", "--port", str(port)]
            url = f"http://127.0.0.1:{port}"
            services.append(
                ServiceComponent(name, argv, env, self.logs / f"{name}.log", f"{url}/readyz")
            )
            metrics_urls[name] = f"{url}/metrics"
        for name, port in zip(_numbered("worker", self.workers), worker_ports, strict=True):
            # Each worker's Temporal SDK exporter needs its own port too.
            own = {
                **env,
                "RECONCILER_WORKER_METRICS_PORT": str(port),
                "RECONCILER_WORKER_SDK_METRICS_PORT": str(free_port()),
            }
            url = f"http://127.0.0.1:{port}"
            argv = [*python_cli(), "worker"]
            services.append(
                ServiceComponent(name, argv, own, self.logs / f"{name}.log", f"{url}/healthz")
            )
            metrics_urls[name] = f"{url}/metrics"
        prober_url = f"http://127.0.0.1:{prober_port}"
        services.append(
            ServiceComponent(
                "prober",
                [*python_cli(), "prober"],
                env,
                self.logs / "prober.log",
                ready_url=f"{prober_url}/healthz",
            )
        )
        metrics_urls["prober"] = f"{prober_url}/metrics"
        self.info.update(
            {
                "api_url": api_url,
                # Every API process, the first being api_url (added with
                # --api-procs; each behaves the same, any may be used).
                "api_urls": [f"http://127.0.0.1:{port}" for port in api_ports],
                "console_url": f"{api_url}/console/",
                "metrics_url": f"{api_url}/metrics",
                "metrics_urls": metrics_urls,
                "banks": {
                    bank: {"url": b["url"], "admin_url": b["admin_url"], "protocol": b["protocol"]}
                    for bank, b in banks_env.items()
                },
            }
        )
        return services

    def _simulators(
        self, state: StackState, api_url: str
    ) -> tuple[list[Component], dict[str, dict[str, str]]]:
        sims: list[Component] = []
        banks: dict[str, dict[str, str]] = {}
        for bank, protocol in DEV_BANKS.items():
            port, admin_port = free_port(), free_port()
            secret = state.webhook_secrets.setdefault(bank, secrets.token_urlsafe(24))
            argv = [
                *python_cli(),
                "sim",
                "--protocol",
                protocol,
                "--bank-id",
                bank,
                "--port",
                str(port),
                "--admin-port",
                str(admin_port),
                "--state",
                str(self.data_dir / "sims" / f"{bank}.sqlite"),
            ]
            if protocol == "rest":
                argv += ["--webhook-url", f"{api_url}/webhooks/{bank}"]
            env = {**self.base_env(), "RECONCILER_SIM_WEBHOOK_SECRET": secret}
            admin_url = f"http://127.0.0.1:{admin_port}"
            sims.append(
                ServiceComponent(
                    f"sim-{bank}", argv, env, self.logs / f"sim-{bank}.log", f"{admin_url}/healthz"
                )
            )
            banks[bank] = {
                "protocol": protocol,
                "url": f"http://127.0.0.1:{port}",
                "admin_url": admin_url,
                "webhook_secret": secret if protocol == "rest" else "",
                "account_number": SIM_ACCOUNT_NUMBER,
                "bank_bin": SIM_BANK_BIN,
            }
        state.save(self.state_path)
        return sims, banks

    # -- lifecycle -----------------------------------------------------------
    def _start(self, component: Component) -> None:
        print(f"  starting {component.name:<10} (log: {component.log_path})", flush=True)
        self.started.append(component)
        component.start()

    def _prepare_data(self, state: StackState) -> None:
        from ledger.migrations import upgrade_to_head
        from reconciler.devstack.seed import seed_demo_data

        print("  migrating database", flush=True)
        upgrade_to_head(self.postgres.info.url())
        seed_demo_data(self.postgres.info.url(), state, story=self.seed)
        state.save(self.state_path)

    def _play_story(self, state: StackState) -> None:
        """The seed story through the running stack (``seed_story``)."""
        from reconciler.devstack.seed_story import play

        print("  seeding: payments in every state, a reconciliation, a dispute", flush=True)
        info = {**self.info, "api_token": state.api_token}
        for problem in play(info, state.passwords):
            print(f"  seed step not done: {problem}", file=sys.stderr, flush=True)

    def _write_dev_json(self, state: StackState) -> None:
        info = {
            **self.info,
            "temporal_address": self.temporal.info.address,
            "postgres_url": self.postgres.info.libpq_url(),
            "api_token": state.api_token,
            "users": [
                {"username": f"demo-{role}", "password": state.passwords[role], "role": role}
                for role in DEMO_ROLES
            ],
            "banks": self.info.get("banks", {}),
            "logs_dir": str(self.logs),
            # Added with the restarting supervisor: what runs now, and how
            # often each part was restarted.
            "restart": self.restart_policy is not None,
            "pids": {c.name: c.pid for c in self.started},
            "restarts": self.supervisor.restarts() if self.supervisor else {},
        }
        # It holds the token and every password.
        write_private(self.dev_json, json.dumps(info, indent=2, ensure_ascii=False))

    def _print_summary(self, state: StackState) -> None:
        print("\nReconciler dev stack is up.", flush=True)
        print(f"  API:        {self.info['api_url']}  (token: {state.api_token})")
        for url in self.info["api_urls"][1:]:
            print(f"              {url}  (another API process, same service)")
        print(f"  Console:    {self.info['console_url']}")
        print(f"  Metrics:    {self.info['metrics_url']}")
        print(f"  Temporal:   {self.temporal.info.address}")
        print(f"  PostgreSQL: {self.postgres.info.libpq_url()}")
        for name, bank in self.info.get("banks", {}).items():
            print(f"  Bank {name} ({bank['protocol']}): {bank['url']}  admin: {bank['admin_url']}")
        print("  Users:")
        for role in DEMO_ROLES:
            print(f"    demo-{role:<9} password {state.passwords[role]}")
        print(f"  Written to {self.dev_json}. Logs in {self.logs}. Ctrl-C stops everything.")
        if self.restart_policy is None:
            print("  --no-restart: the first part that dies stops the whole stack.")
        sys.stdout.flush()

    def stop_all(self) -> None:
        for component in reversed(self.started):
            try:
                component.stop()
            except (OSError, ComponentFailedError) as err:
                print(f"  could not stop {component.name} cleanly: {err}", file=sys.stderr)
        self.started.clear()
        self.dev_json.unlink(missing_ok=True)

    def run(self) -> int:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.data_dir):
            self.dev_json.unlink(missing_ok=True)
            state = StackState.load(self.state_path)
            self._ensure_secrets(state)

            def on_signal(signum: int, _frame: object) -> None:
                raise _Stop(signal.Signals(signum).name)

            previous = {
                sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
            }
            try:
                return self._run(state)
            except _Stop as stop:
                print(f"\n{stop}: stopping the dev stack", flush=True)
                return 0
            except ComponentFailedError as err:
                print(f"\nreconciler dev: {err}", file=sys.stderr, flush=True)
                return 1
            finally:
                # A second Ctrl-C must not interrupt the shutdown itself.
                for sig in previous:
                    signal.signal(sig, signal.SIG_IGN)
                self.stop_all()
                for sig, handler in previous.items():
                    signal.signal(sig, handler)
                print("dev stack stopped", flush=True)

    def _ensure_secrets(self, state: StackState) -> None:
        for role in DEMO_ROLES:
            state.passwords.setdefault(role, secrets.token_urlsafe(9))
        state.citizen_link_secret = state.citizen_link_secret or secrets.token_urlsafe(32)
        state.save(self.state_path)

    def _run(self, state: StackState) -> int:
        print(f"Starting the reconciler dev stack in {self.data_dir}", flush=True)
        for component in self.infrastructure():
            self._start(component)
        self._prepare_data(state)
        for component in self.services(state):
            self._start(component)
        if self.seed:
            self._play_story(state)
        self.supervisor = Supervisor(
            list(self.started),
            self.restart_policy,
            on_restart=lambda: self._write_dev_json(state),
        )
        self._write_dev_json(state)
        self._print_summary(state)
        self.supervisor.watch()
