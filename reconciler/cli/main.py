"""The ``reconciler`` command: the composition root of every process."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from reconciler.cli.audit_commands import audit
from reconciler.cli.backup import backup_command, restore_command
from reconciler.cli.certs import certs
from reconciler.cli.context import load_settings, refused_at_start
from reconciler.cli.identity import tokens, users
from reconciler.cli.keys import keys
from reconciler.cli.recon import recon
from reconciler.cli.report import report
from reconciler.logs import configure_logging
from reconciler.settings import Settings


def _settings() -> Settings:
    return load_settings()


@click.group()
def main() -> None:
    """Traffic-fine payment and receipt reconciliation service."""


main.add_command(recon)
main.add_command(report)
main.add_command(backup_command)
main.add_command(restore_command)
main.add_command(keys)
main.add_command(audit)
main.add_command(certs)
main.add_command(users)
main.add_command(tokens)


# How many processes of one kind the dev stack may run (its MAX_PROCS).
_PROCS: dict[str, Any] = {"type": click.IntRange(1, 8), "default": 1, "show_default": True}


@main.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".data"),
    show_default=True,
    help="Where PostgreSQL, Temporal, simulators and logs keep their data.",
)
@click.option(
    "--api-port", type=click.IntRange(1, 65535), default=None, help="Default: a free port."
)
@click.option(
    "--no-restart",
    is_flag=True,
    help="Stop the whole stack when a part dies, instead of restarting it (for debugging).",
)
@click.option(
    "--restart-delay",
    type=click.FloatRange(0.05, 10.0),
    default=0.5,
    show_default=True,
    help="Seconds before restarting a part that died; doubles per restart, up to 10 s.",
)
@click.option(
    "--no-seed",
    is_flag=True,
    help="Only the demo users, token and five unpaid fines: no payments, "
    "reconciliation, dispute or outage (the seed story).",
)
@click.option("--workers", **_PROCS, help="Worker processes, all on the same task queue.")
@click.option(
    "--api-procs",
    **_PROCS,
    help="API processes, on --api-port and then free ports (dev.json: api_urls).",
)
def dev(
    data_dir: Path,
    api_port: int | None,
    no_restart: bool,
    restart_delay: float,
    no_seed: bool,
    workers: int,
    api_procs: int,
) -> None:
    """Run the whole service on the embedded stack, in the foreground."""
    from reconciler.devstack.stack import DevStack

    configure_logging("warning")
    stack = DevStack(
        data_dir,
        api_port,
        restart=not no_restart,
        restart_delay=restart_delay,
        workers=workers,
        api_procs=api_procs,
        seed=not no_seed,
    )
    sys.exit(stack.run())


@main.command()
def migrate() -> None:
    """Migrate the database (RECONCILER_DATABASE_URL, as its owner) to the
    latest schema, and give the app's role (RECONCILER_DB_APP_ROLE) its
    privileges and its password (RECONCILER_DB_APP_PASSWORD, when set)."""
    from ledger.migrations import current_revision, set_role_password, upgrade_to_head

    settings = _settings()
    upgrade_to_head(settings.database_url, settings.db_app_role)
    if settings.db_app_password is not None:
        try:
            set_role_password(
                settings.database_url,
                settings.db_app_role,
                settings.db_app_password.get_secret_value(),
            )
        except ValueError as err:
            raise click.ClickException(f"RECONCILER_DB_APP_PASSWORD: {err}") from err
    click.echo(f"database at revision {current_revision(settings.database_url)}")


@main.command()
@click.option("--host", default=None, help="Default: RECONCILER_API_HOST.")
@click.option("--port", type=click.IntRange(0, 65535), default=None)
def api(host: str | None, port: int | None) -> None:
    """Serve the JSON API, public pages and /metrics."""
    from reconciler.api.app import create_app
    from reconciler.api.server import serve

    settings = _settings()
    with refused_at_start():
        app = create_app(settings)

    async def run() -> None:
        await serve(
            app,
            host or settings.api_host,
            port if port is not None else settings.api_port,
            settings.http_idle_seconds,
        )

    asyncio.run(run())


def _run_domain(make: object) -> str:
    """Run a coroutine factory; domain errors become a clean CLI error."""
    from ledger.core.errors import LedgerError

    assert callable(make)
    try:
        result: str = asyncio.run(make())
    except LedgerError as err:
        raise click.ClickException(err.message) from err
    return result


@main.command()
def worker() -> None:
    """Run the Temporal worker of the payment sagas (with its sweeper,
    outbox dispatcher and /metrics)."""
    from reconciler.worker import run_worker

    settings = _settings()
    with refused_at_start():
        _run_until_signalled(lambda stop: run_worker(settings, stop))


@main.group()
def receipts() -> None:
    """Receipts."""


@receipts.command("verify")
def receipts_verify() -> None:
    """Check every stored receipt's signature and every series for gaps."""
    from ledger.receipts.issue import verify_receipts
    from ledger.receipts.signing import SigningKeyError
    from reconciler.db import create_engine
    from reconciler.wiring import load_verifier

    settings = _settings()
    try:
        verifier = load_verifier(settings)
    except SigningKeyError as err:
        raise click.ClickException(str(err)) from err

    async def run() -> str:
        engine = create_engine(settings)
        try:
            async with engine.connect() as conn:
                report = await verify_receipts(conn, verifier)
        finally:
            await engine.dispose()
        lines = [f"checked {report.checked} receipts in {report.series_checked} series"]
        lines += [f"BAD {b.series}/{b.number}: {'; '.join(b.reasons)}" for b in report.bad]
        lines += [f"SERIES {p}" for p in report.series_problems]
        if not report.all_ok:
            raise click.ClickException("\n".join(lines))
        return "\n".join([*lines, "all receipts verify"])

    click.echo(_run_domain(run))


@main.group()
def disputes() -> None:
    """Citizens' disputes."""


@disputes.command("list")
@click.option(
    "--status",
    type=click.Choice(
        ["open", "awaiting_approval", "executing", "confirmed", "refunded", "rejected"]
    ),
    default=None,
)
@click.option("--limit", type=click.IntRange(1, 500), default=100, show_default=True)
def disputes_list(status: str | None, limit: int) -> None:
    """List disputes, oldest first."""
    from reconciler.cli.audit import disputes_list as run

    for line in asyncio.run(run(_settings(), status, limit)):
        click.echo(line)


@main.group()
def banks() -> None:
    """Bank links."""


@banks.command("wake")
@click.argument("bank")
@click.option(
    "--wait-seconds",
    type=click.FloatRange(0, 3600),
    default=60.0,
    show_default=True,
    help="How long to wait for the recovery's report (it goes on after).",
)
def banks_wake(bank: str, wait_seconds: float) -> None:
    """Send the link-recovery event for BANK: settle what the bank confirms,
    then every in-doubt payment of BANK re-checks now."""
    from reconciler.wiring import connect_temporal
    from workflows.payment.client import start_link_recovery

    settings = _settings()
    if bank not in settings.banks:
        raise click.BadParameter(
            f"no bank {bank!r} is configured (RECONCILER_BANKS: {', '.join(settings.banks)})",
            param_hint="BANK",
        )

    async def run() -> str:
        client = await connect_temporal(settings)
        handle = await start_link_recovery(client, settings.task_queue, bank)
        try:
            report = await asyncio.wait_for(handle.result(), wait_seconds)
        except TimeoutError:
            return f"link recovery of {bank} still running (workflow {handle.id})"
        return (
            f"link recovery of {bank}: {report.in_doubt} payment(s) in doubt, "
            f"{report.settled} settled and receipted, {report.duplicates} duplicate(s) "
            f"to refund, {report.left_to_workflows} left to their workflows, "
            f"{report.woken} workflow(s) woken"
        )

    click.echo(_run_domain(run))


def _run_until_signalled(run: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run a long-lived service until SIGINT/SIGTERM, then stop it cleanly."""

    async def main_loop() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run(stop)

    asyncio.run(main_loop())
    # Stopped cleanly. Leave without finalizing the interpreter: the Temporal
    # SDK's native runtime threads may still call into Python while it
    # finalizes, which aborts the process (seen as exit code -6 after a clean
    # worker shutdown). Everything is flushed first; nothing registers exit
    # handlers that matter.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


@main.command()
def prober() -> None:
    """Probe every bank's link, record outages, wake in-doubt payments on recovery."""
    from reconciler.prober import run_prober

    settings = _settings()
    with refused_at_start():
        _run_until_signalled(lambda stop: run_prober(settings, stop))


@main.command()
@click.option("--protocol", type=click.Choice(["rest", "vietqr"]), required=True)
@click.option("--bank-id", "--bank", "bank_id", required=True, help="e.g. sgbank, hnbank")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Bank port (0: free).")
@click.option("--admin-port", type=click.IntRange(0, 65535), default=0, help="Admin port.")
@click.option(
    "--state",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="SQLite state file (default: DATA_DIR/sim-BANK.sqlite).",
)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=Path(".data"))
@click.option("--webhook-url", default=None, help="Where the REST bank sends its callbacks.")
@click.option(
    "--webhook-secret",
    envvar="RECONCILER_SIM_WEBHOOK_SECRET",
    default="",
    help="Callback signing secret (better: RECONCILER_SIM_WEBHOOK_SECRET).",
)
@click.option("--account-number", default=None, help="Our collection account (VietQR).")
@click.option("--bank-bin", default=None, help="The bank's BIN (VietQR).")
def sim(
    protocol: str,
    bank_id: str,
    host: str,
    port: int,
    admin_port: int,
    state: Path | None,
    data_dir: Path,
    webhook_url: str | None,
    webhook_secret: str,
    account_number: str | None,
    bank_bin: str | None,
) -> None:
    """Run a bank simulator (bank port + admin port with fault injection)."""
    import json
    from dataclasses import asdict

    from bank_adapters.simulators.server import (
        SIM_ACCOUNT_NUMBER,
        SIM_BANK_BIN,
        SimulatorInfo,
        run_simulator,
    )

    configure_logging("info")
    state_path = state or data_dir / f"sim-{bank_id}.sqlite"
    state_path.parent.mkdir(parents=True, exist_ok=True)

    def ready(info: SimulatorInfo) -> None:
        click.echo(json.dumps(asdict(info)))

    _run_until_signalled(
        lambda stop: run_simulator(
            protocol,
            bank_id,
            host,
            port,
            admin_port,
            state_path,
            webhook_url,
            webhook_secret,
            stop,
            account_number=account_number or SIM_ACCOUNT_NUMBER,
            bank_bin=bank_bin or SIM_BANK_BIN,
            ready=ready,
        )
    )
