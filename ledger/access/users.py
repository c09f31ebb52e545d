"""Staff users and service accounts: created, disabled and enabled, their
passwords reset and their lock-outs lifted, each step audited in the
caller's transaction with who did it.

Passwords arrive here already hashed (``ledger.access.passwords``): argon2 is
slow on purpose and must not run inside a transaction. Whoever sets a
password is remembered (``password_set_by``): a login on a password an admin
chose cannot decide that admin's requests until its owner picks their own.
Setting a password or disabling a user ends their logins and console
sessions; their API tokens stop while they are disabled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.access.model import (
    SERVICE_ROLES,
    STAFF_ROLES,
    OwnerKind,
    check_service_name,
    check_units,
    check_username,
)
from ledger.access.sessions import revoke_user_sessions
from ledger.access.tokens import Owner, revoke_login_tokens
from ledger.access.trail import audit
from ledger.core import tables as t
from ledger.core.checks import check_choice, check_limit
from ledger.core.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from ledger.core.paging import LIST_LIMIT_MAX, keyset_page

FULL_NAME_CHARS_MAX: Final = 200
USER_SUBJECT: Final = "user"
SERVICE_SUBJECT: Final = "service_account"


@dataclass(frozen=True)
class User:
    """A ``users`` row, without its password hash."""

    id: int
    username: str
    full_name: str
    role: str
    units: tuple[str, ...]
    created_at: datetime
    created_by: str | None
    disabled_at: datetime | None
    failed_logins: int
    locked_until: datetime | None
    last_login_at: datetime | None
    password_set_at: datetime | None
    password_set_by: str | None

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


_u = t.users
USER_COLUMNS: Final = tuple(
    _u.c[name]
    for name in (
        "id",
        "username",
        "full_name",
        "role",
        "units",
        "created_at",
        "created_by",
        "disabled_at",
        "failed_logins",
        "locked_until",
        "last_login_at",
        "password_set_at",
        "password_set_by",
    )
)


def user_from_row(row: Any) -> User:
    values = {c.name: getattr(row, c.name) for c in USER_COLUMNS}
    return User(**{**values, "units": tuple(values["units"] or ())})


def _check_full_name(full_name: object) -> str:
    if not isinstance(full_name, str) or len(full_name) > FULL_NAME_CHARS_MAX:
        raise ValidationError("full_name", f"must be at most {FULL_NAME_CHARS_MAX} characters")
    if not full_name.isprintable():
        raise ValidationError("full_name", "contains control or invisible characters")
    return full_name.strip()


async def _user_audit(
    conn: AsyncConnection, actor: str, action: str, user: User, now: datetime, **detail: Any
) -> None:
    subject = (USER_SUBJECT, user.username)
    await audit(conn, actor, action, subject, now, user_id=user.id, role=user.role, **detail)


async def create_user(
    conn: AsyncConnection,
    *,
    username: object,
    password_hash: str,
    role: object,
    actor: str,
    now: datetime,
    full_name: object = "",
    units: object = (),
) -> User:
    """A new staff user; their password is ``password_hash``, set by ``actor``."""
    username = check_username(username)
    role = check_choice("role", role, STAFF_ROLES)
    scoped = check_units(units, role)
    row = (
        await conn.execute(
            insert(_u)
            .values(
                username=username,
                password_hash=password_hash,
                role=role,
                full_name=_check_full_name(full_name),
                units=list(scoped),
                created_at=now,
                created_by=actor,
                password_set_at=now,
                password_set_by=actor,
            )
            .on_conflict_do_nothing(index_elements=["username"])
            .returning(*USER_COLUMNS)
        )
    ).one_or_none()
    if row is None:
        raise ConflictError(f"a user named {username!r} already exists")
    user = user_from_row(row)
    await _user_audit(conn, actor, "user.created", user, now, units=list(user.units))
    return user


async def get_user(conn: AsyncConnection, username: str, *, for_update: bool = False) -> User:
    query = select(*USER_COLUMNS).where(_u.c.username == username)
    if for_update:
        query = query.with_for_update()
    row = (await conn.execute(query)).one_or_none()
    if row is None:
        raise NotFoundError(f"no user {username!r}")
    return user_from_row(row)


async def list_users(conn: AsyncConnection, *, after_id: int = 0, limit: int = 100) -> list[User]:
    check_limit(limit, LIST_LIMIT_MAX)
    query = keyset_page(select(*USER_COLUMNS), _u.c.id, after_id=after_id, limit=limit)
    return [user_from_row(r) for r in (await conn.execute(query)).all()]


async def _update(conn: AsyncConnection, user: User, **values: Any) -> User:
    row = (
        await conn.execute(
            _u.update().where(_u.c.id == user.id).values(**values).returning(*USER_COLUMNS)
        )
    ).one()
    return user_from_row(row)


async def _end_logins(conn: AsyncConnection, user: User, actor: str, now: datetime) -> int:
    tokens = await revoke_login_tokens(conn, user.id, actor, now)
    return tokens + await revoke_user_sessions(conn, user.id, now)


async def set_disabled(
    conn: AsyncConnection, username: str, disabled: bool, actor: str, now: datetime
) -> User:
    """Disable (every credential stops) or enable a user; idempotent."""
    user = await get_user(conn, username, for_update=True)
    if disabled and username == actor:
        raise ForbiddenError("you may not disable yourself; ask another admin")
    if (user.disabled_at is not None) == disabled:
        return user
    user = await _update(conn, user, disabled_at=now if disabled else None)
    if disabled:
        ended = await _end_logins(conn, user, actor, now)
        await _user_audit(conn, actor, "user.disabled", user, now, logins_ended=ended)
    else:
        await _user_audit(conn, actor, "user.enabled", user, now)
    return user


async def set_password(
    conn: AsyncConnection, username: str, password_hash: str, actor: str, now: datetime
) -> User:
    """A new password for ``username``, chosen by ``actor`` (the user
    themself: a change; anyone else: a reset). Lifts a lock-out and ends
    every login and console session of the user."""
    user = await get_user(conn, username, for_update=True)
    user = await _update(
        conn,
        user,
        password_hash=password_hash,
        password_set_at=now,
        password_set_by=actor,
        failed_logins=0,
        failed_since=None,
        locked_until=None,
    )
    ended = await _end_logins(conn, user, actor, now)
    action = "user.password_changed" if actor == username else "user.password_reset"
    await _user_audit(conn, actor, action, user, now, logins_ended=ended)
    return user


async def password_hash_of(conn: AsyncConnection, username: str) -> str:
    row = (
        await conn.execute(select(_u.c.password_hash).where(_u.c.username == username))
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no user {username!r}")
    return str(row.password_hash)


async def unlock(conn: AsyncConnection, username: str, actor: str, now: datetime) -> User:
    """Lift a lock-out and forget the failed logins."""
    user = await get_user(conn, username, for_update=True)
    was_locked = user.locked(now)
    user = await _update(conn, user, failed_logins=0, failed_since=None, locked_until=None)
    await _user_audit(conn, actor, "user.unlocked", user, now, was_locked=was_locked)
    return user


async def ensure_service_account(
    conn: AsyncConnection, name: object, role: object | None, actor: str, now: datetime
) -> Owner:
    """The enabled service account ``name``, created with ``role`` if it
    does not exist yet (a ``role`` given must be the one it has)."""
    name = check_service_name(name)
    s = t.service_accounts
    existing = (
        await conn.execute(select(s.c.id, s.c.role, s.c.disabled_at).where(s.c.name == name))
    ).one_or_none()
    if existing is not None:
        if existing.disabled_at is not None:
            raise ConflictError(f"service account {name!r} is disabled")
        if role is not None and role != existing.role:
            raise ConflictError(
                f"service account {name!r} has role {existing.role!r}, not {role!r}"
            )
        return Owner(OwnerKind.SERVICE, existing.id, name, existing.role)
    if role is None:
        raise ValidationError("role", f"is required to create the service account {name!r}")
    role = check_choice("role", role, SERVICE_ROLES)
    service_id = (
        await conn.execute(
            insert(s)
            .values(name=name, role=role, created_at=now, created_by=actor)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(s.c.id)
        )
    ).scalar_one_or_none()
    if service_id is None:
        raise ConflictError(f"service account {name!r} was created meanwhile; try again")
    subject = (SERVICE_SUBJECT, name)
    await audit(
        conn,
        actor,
        "service_account.created",
        subject,
        now,
        service_account_id=service_id,
        role=role,
    )
    return Owner(OwnerKind.SERVICE, service_id, name, role)
