"""A person logs in with a username and password and gets a short-lived
bearer token (``TokenKind.SESSION``) or, through the console, a session.

Three steps, so that the slow argon2 check holds no database connection and
no lock: read the user; check the password (``PasswordChecker``, bounded);
then, in one short transaction on the locked row, record the outcome. A
wrong password counts a failure; ``LockPolicy.failures`` of them within
``window`` lock the account for ``duration`` (audited as ``user.locked``).
While locked, no password is checked and the answer says until when. An
unknown, disabled or malformed username costs the same argon2 check as a
wrong password and answers the same; it counts nothing (there is no row),
which the API's per-name throttle covers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledger.access.model import USERNAME_RE, OwnerKind, TokenKind
from ledger.access.passwords import PASSWORD_CHARS_MAX, PasswordChecker
from ledger.access.sessions import Session, create_session
from ledger.access.tokens import (
    SESSION_TOKEN_HOURS_DEFAULT,
    Owner,
    TokenInfo,
    issue_token,
    prune_login_tokens,
)
from ledger.access.trail import audit
from ledger.access.users import USER_COLUMNS, User, get_user, user_from_row
from ledger.core import tables as t
from ledger.core.errors import ValidationError

SYSTEM_LOGIN: Final = "system:login"
LOGIN_TOKEN_NAME: Final = "login"  # noqa: S105 -- a token's label, not a token


@dataclass(frozen=True)
class LockPolicy:
    failures: int = 10
    window: timedelta = timedelta(minutes=30)
    duration: timedelta = timedelta(minutes=30)

    def __post_init__(self) -> None:
        assert self.failures >= 1, self.failures
        assert self.window > timedelta(0), self.window
        assert self.duration > timedelta(0), self.duration


@dataclass(frozen=True)
class LoginOutcome:
    """``user`` and a credential when the password matched; else
    ``locked_until`` when the account is locked, else nothing (wrong)."""

    user: User | None = None
    locked_until: datetime | None = None
    token: str | None = None
    token_info: TokenInfo | None = None
    session: str | None = None
    session_row: Session | None = None

    @property
    def ok(self) -> bool:
        return self.user is not None


def normalise_username(username: str) -> str | None:
    """The username as stored, or None if it cannot be one."""
    name = username.strip().lower()
    return name if USERNAME_RE.fullmatch(name) else None


def check_credentials(username: object, password: object) -> tuple[str, str]:
    if not isinstance(username, str) or not isinstance(password, str):
        raise ValidationError("body", 'must be {"username": "...", "password": "..."}')
    if len(username) > 200:
        raise ValidationError("username", "is longer than 200 characters")
    if len(password) > PASSWORD_CHARS_MAX:
        raise ValidationError("password", f"is longer than {PASSWORD_CHARS_MAX} characters")
    return username, password


async def _stored(engine: AsyncEngine, username: str | None) -> tuple[str | None, datetime | None]:
    """The user's password hash (None: no such enabled user) and lock."""
    if username is None:
        return None, None
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(
                    t.users.c.password_hash, t.users.c.disabled_at, t.users.c.locked_until
                ).where(t.users.c.username == username)
            )
        ).one_or_none()
    if row is None or row.disabled_at is not None:
        return None, None
    return str(row.password_hash), row.locked_until


async def log_in(
    engine: AsyncEngine,
    checker: PasswordChecker,
    username: str,
    password: str,
    now: datetime,
    *,
    policy: LockPolicy,
    token_hours: float = SESSION_TOKEN_HOURS_DEFAULT,
    issue: Literal["token", "console", "nothing"] = "token",
    client: str = "",
) -> LoginOutcome:
    """Check a login; on success ``issue`` a session token, a console
    session or nothing (a password re-checked before it is changed), in the
    same transaction that records the success."""
    name = normalise_username(username)
    password_hash, locked_until = await _stored(engine, name)
    if locked_until is not None and locked_until > now:
        return LoginOutcome(locked_until=locked_until)
    matched = await checker.matches(password_hash, password)
    if name is None or password_hash is None:
        return LoginOutcome()
    async with engine.begin() as conn:
        user = await get_user(conn, name, for_update=True)
        if user.disabled_at is not None:
            return LoginOutcome()
        if user.locked(now):
            return LoginOutcome(locked_until=user.locked_until)
        current_hash = (
            await conn.execute(select(t.users.c.password_hash).where(t.users.c.id == user.id))
        ).scalar_one()
        if not matched or current_hash != password_hash:
            # A password changed since the check counts as wrong (rare).
            return await _failed(conn, user, now, policy)
        return await _succeeded(conn, user, now, token_hours, issue, client)


async def _failed(
    conn: AsyncConnection, user: User, now: datetime, policy: LockPolicy
) -> LoginOutcome:
    row = (
        await conn.execute(
            select(t.users.c.failed_logins, t.users.c.failed_since).where(t.users.c.id == user.id)
        )
    ).one()
    fresh = row.failed_since is None or now - row.failed_since >= policy.window
    failures = 1 if fresh else row.failed_logins + 1
    since = now if fresh else row.failed_since
    if failures < policy.failures:
        await conn.execute(
            t.users.update()
            .where(t.users.c.id == user.id)
            .values(failed_logins=failures, failed_since=since)
        )
        return LoginOutcome()
    until = now + policy.duration
    await conn.execute(
        t.users.update()
        .where(t.users.c.id == user.id)
        .values(failed_logins=0, failed_since=None, locked_until=until)
    )
    await audit(
        conn,
        SYSTEM_LOGIN,
        "user.locked",
        ("user", user.username),
        now,
        user_id=user.id,
        failures=failures,
        locked_until=until.isoformat(),
    )
    return LoginOutcome(locked_until=until)


async def _succeeded(
    conn: AsyncConnection,
    user: User,
    now: datetime,
    token_hours: float,
    issue: str,
    client: str,
) -> LoginOutcome:
    values: dict[str, Any] = {"failed_logins": 0, "failed_since": None, "locked_until": None}
    if issue != "nothing":
        values["last_login_at"] = now
    row = (
        await conn.execute(
            t.users.update()
            .where(t.users.c.id == user.id)
            .values(**values)
            .returning(*USER_COLUMNS)
        )
    ).one()
    user = user_from_row(row)
    if issue == "nothing":
        return LoginOutcome(user=user)
    if issue == "console":
        raw, session = await create_session(conn, user.id, user.username, now, client=client)
        return LoginOutcome(user=user, session=raw, session_row=session)
    await prune_login_tokens(conn, user.id, now)
    owner = Owner(OwnerKind.USER, user.id, user.username, user.role)
    token, info = await issue_token(
        conn,
        owner,
        kind=TokenKind.SESSION,
        name=LOGIN_TOKEN_NAME,
        lifetime=timedelta(hours=token_hours),
        created_by=user.username,
        now=now,
    )
    return LoginOutcome(user=user, token=token, token_info=info)
