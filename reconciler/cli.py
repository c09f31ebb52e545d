"""The ``reconciler`` command: the composition root of every process."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from reconciler.logs import configure_logging
from reconciler.settings import Settings


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    return settings


@click.group()
def main() -> None:
    """Traffic-fine payment and receipt reconciliation service."""


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
def dev(data_dir: Path, api_port: int | None) -> None:
    """Run the whole service on the embedded stack, in the foreground."""
    from reconciler.devstack.stack import DevStack

    configure_logging("warning")
    sys.exit(DevStack(data_dir, api_port).run())


@main.command()
def migrate() -> None:
    """Migrate the database (RECONCILER_DATABASE_URL) to the latest schema."""
    from ledger.migrations import current_revision, upgrade_to_head

    settings = _settings()
    upgrade_to_head(settings.database_url)
    click.echo(f"database at revision {current_revision(settings.database_url)}")


@main.command()
@click.option("--host", default=None, help="Default: RECONCILER_API_HOST.")
@click.option("--port", type=click.IntRange(0, 65535), default=None)
def api(host: str | None, port: int | None) -> None:
    """Serve the JSON API, public pages and /metrics."""
    from aiohttp import web

    from reconciler.api.app import create_app

    settings = _settings()
    web.run_app(
        create_app(settings),
        host=host or settings.api_host,
        port=port if port is not None else settings.api_port,
        access_log=None,
        print=None,
    )


@main.group()
def tokens() -> None:
    """API tokens."""


@tokens.command("create")
@click.argument("name")
@click.option(
    "--role",
    type=click.Choice(["portal", "officer", "finance", "approver", "operator", "admin"]),
    required=True,
)
def tokens_create(name: str, role: str) -> None:
    """Create an API token and print it (shown only once)."""
    from ledger.access import create_token

    settings = _settings()

    async def run() -> str:
        from reconciler.db import create_engine

        engine = create_engine(settings)
        try:
            async with engine.begin() as conn:
                return await create_token(conn, name, role)
        finally:
            await engine.dispose()

    click.echo(_run_domain(run))


@main.group()
def users() -> None:
    """Staff users of the console."""


@users.command("create")
@click.argument("username")
@click.option(
    "--role",
    type=click.Choice(["officer", "finance", "approver", "operator", "admin"]),
    required=True,
)
@click.option("--full-name", default="")
@click.password_option(envvar="RECONCILER_NEW_USER_PASSWORD")
def users_create(username: str, role: str, full_name: str, password: str) -> None:
    """Create a staff user (password prompted, or RECONCILER_NEW_USER_PASSWORD)."""
    from ledger.access import create_user

    settings = _settings()

    async def run() -> str:
        from reconciler.db import create_engine

        engine = create_engine(settings)
        try:
            async with engine.begin() as conn:
                await create_user(conn, username, password, role, full_name)
        finally:
            await engine.dispose()
        return f"user {username} created with role {role}"

    click.echo(_run_domain(run))


def _run_domain(make: object) -> str:
    """Run a coroutine factory; domain errors become a clean CLI error."""
    from ledger.errors import LedgerError

    assert callable(make)
    try:
        result: str = asyncio.run(make())
    except LedgerError as err:
        raise click.ClickException(err.message) from err
    return result
