"""``reconciler users ...`` and ``reconciler tokens ...``: staff users,
service accounts and their tokens, from the server's shell.

Whoever runs these already holds the database's credentials, so the CLI may
do what the API keeps from an admin: give a token to any user. Every change
is audited with the actor ``cli:<login>`` (the operating-system account that
ran it). Heavy imports happen inside the commands, so ``--help`` stays fast.
"""

from __future__ import annotations

import asyncio
import getpass
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Final, TypeVar

import click

from reconciler.logs import configure_logging
from reconciler.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

T = TypeVar("T")
STAFF_ROLES: Final = ("officer", "finance", "approver", "operator", "admin")
TOKEN_ROLES: Final = ("portal", *STAFF_ROLES)
_LOGIN_CHARS: Final = re.compile(r"[^a-z0-9._-]")


def cli_actor() -> str:
    """``cli:<login>``: the audit actor of a command run from the shell."""
    try:
        login = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry, no LOGNAME
        login = "unknown"
    return "cli:" + (_LOGIN_CHARS.sub("_", login.lower())[:64] or "unknown")


def _in_transaction(work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction on RECONCILER_DATABASE_URL; domain
    errors become a clean CLI error."""
    from ledger.core.errors import LedgerError
    from reconciler.db import create_engine

    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)

    async def run() -> T:
        engine = create_engine(settings)
        try:
            async with engine.begin() as conn:
                return await work(conn)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except LedgerError as err:
        raise click.ClickException(err.message) from err


def _hash(password: str, username: str) -> str:
    from ledger.access import PasswordChecker, check_new_password
    from ledger.core.errors import ValidationError

    try:
        check_new_password(password, username)
    except ValidationError as err:
        raise click.BadParameter(err.message, param_hint="password") from err
    return asyncio.run(PasswordChecker(1).hash(password))


# --- users ---------------------------------------------------------------------------


@click.group()
def users() -> None:
    """Staff users (they log in with POST /api/v1/auth/login)."""


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice(STAFF_ROLES), required=True)
@click.option("--full-name", default="")
@click.option(
    "--unit",
    "units",
    multiple=True,
    help="An issuing unit the user may see (repeat; officer and finance only). None: all.",
)
@click.password_option(envvar="RECONCILER_NEW_USER_PASSWORD")
def users_create(
    username: str, role: str, full_name: str, units: tuple[str, ...], password: str
) -> None:
    """Create a staff user (password prompted, or RECONCILER_NEW_USER_PASSWORD)."""
    from ledger.access import create_user

    password_hash = _hash(password, username)

    async def work(conn: AsyncConnection) -> None:
        await create_user(
            conn,
            username=username,
            password_hash=password_hash,
            role=role,
            actor=cli_actor(),
            now=datetime.now(UTC),
            full_name=full_name,
            units=list(units),
        )

    _in_transaction(work)
    click.echo(f"user {username} created with role {role}")


@users.command("list")
@click.option("--limit", type=click.IntRange(1, 500), default=500, show_default=True)
def users_list(limit: int) -> None:
    """Every user: name, role, units, state."""
    from ledger.access import list_users

    users_found = _in_transaction(lambda conn: list_users(conn, limit=limit))
    now = datetime.now(UTC)
    for user in users_found:
        state = "disabled" if user.disabled_at else "locked" if user.locked(now) else "active"
        units = ",".join(user.units) or "(all units)"
        click.echo(f"{user.username}\t{user.role}\t{state}\t{units}\t{user.full_name}")


def _user_change(username: str, change: str) -> None:
    from ledger import access

    actor, now = cli_actor(), datetime.now(UTC)

    async def work(conn: AsyncConnection) -> object:
        if change == "unlock":
            return await access.unlock(conn, username, actor, now)
        return await access.set_disabled(conn, username, change == "disable", actor, now)

    _in_transaction(work)
    click.echo(f"user {username}: {change}d")


@users.command("disable")
@click.argument("username")
def users_disable(username: str) -> None:
    """Disable a user: their logins, sessions and tokens stop."""
    _user_change(username, "disable")


@users.command("enable")
@click.argument("username")
def users_enable(username: str) -> None:
    """Enable a disabled user again."""
    _user_change(username, "enable")


@users.command("unlock")
@click.argument("username")
def users_unlock(username: str) -> None:
    """Lift a lock-out after failed logins."""
    _user_change(username, "unlock")


@users.command("reset-password")
@click.argument("username")
@click.password_option(envvar="RECONCILER_NEW_USER_PASSWORD")
def users_reset_password(username: str, password: str) -> None:
    """Set a new password (their logins end; until they choose their own, it
    cannot decide requests of whoever set it)."""
    from ledger.access import set_password

    password_hash = _hash(password, username)
    _in_transaction(
        lambda conn: set_password(conn, username, password_hash, cli_actor(), datetime.now(UTC))
    )
    click.echo(f"password of {username} reset")


# --- tokens --------------------------------------------------------------------------


@click.group()
def tokens() -> None:
    """API tokens of users and service accounts."""


@tokens.command("create")
@click.argument("name")
@click.option("--user", "username", default=None, help="The token's owner: this user.")
@click.option("--service", default=None, help="The owner: this service account.")
@click.option(
    "--role",
    type=click.Choice(TOKEN_ROLES),
    default=None,
    help="A new service account's role. Alone (no --user/--service): the service NAME.",
)
@click.option("--expires-days", type=click.IntRange(1, 365), default=90, show_default=True)
def tokens_create(
    name: str, username: str | None, service: str | None, role: str | None, expires_days: int
) -> None:
    """Create an API token named NAME and print it (shown only once)."""
    from ledger import access

    if username is not None and (service is not None or role is not None):
        raise click.UsageError("--user goes alone: a user's tokens have the user's role")
    if username is None and service is None:
        if role is None:
            raise click.UsageError("say whose token it is: --user NAME or --service NAME")
        service = name  # the command of old: a named token with a role
    if service is not None and role in ("approver", "admin"):
        raise click.UsageError(
            f"a service account never holds {role!r}; give the token to a person: --user NAME"
        )
    actor, now = cli_actor(), datetime.now(UTC)

    async def work(conn: AsyncConnection) -> str:
        if username is not None:
            owner = await access.user_owner(conn, username)
        else:
            owner = await access.ensure_service_account(conn, service, role, actor, now)
        token, _ = await access.issue_token(
            conn,
            owner,
            kind=access.TokenKind.API,
            name=name,
            lifetime=access.api_token_lifetime(expires_days),
            created_by=actor,
            now=now,
        )
        return token

    click.echo(_in_transaction(work))


@tokens.command("list")
@click.option("--user", "username", default=None)
@click.option("--service", default=None)
@click.option("--all", "include_inactive", is_flag=True, help="Also expired and revoked ones.")
@click.option("--limit", type=click.IntRange(1, 500), default=500, show_default=True)
def tokens_list(
    username: str | None, service: str | None, include_inactive: bool, limit: int
) -> None:
    """Tokens (never their secret): id, owner, kind, name, expiry, last use."""
    from ledger import access

    now = datetime.now(UTC)

    async def work(conn: AsyncConnection) -> list[access.TokenInfo]:
        owner = None
        if username is not None:
            owner = await access.user_owner(conn, username)
        elif service is not None:
            owner = await access.service_owner(conn, service)
        return await access.list_tokens(
            conn, now, owner=owner, include_inactive=include_inactive, limit=limit
        )

    for info in _in_transaction(work):
        state = "active" if info.active(now) else "revoked" if info.revoked_at else "expired"
        used = info.last_used_at.isoformat() if info.last_used_at else "never"
        click.echo(
            f"{info.id}\t{info.owner_kind}:{info.owner_name}\t{info.kind}\t{info.name}\t"
            f"{state}\texpires {info.expires_at.isoformat()}\tused {used}"
        )


@tokens.command("revoke")
@click.argument("token_id", type=click.IntRange(1, 10**18))
def tokens_revoke(token_id: int) -> None:
    """Revoke a token by its id (``tokens list``); it stops within seconds."""
    from ledger.access import revoke_token

    _in_transaction(lambda conn: revoke_token(conn, token_id, cli_actor(), datetime.now(UTC)))
    click.echo(f"token {token_id} revoked")
