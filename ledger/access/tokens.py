"""Bearer tokens: owned by a person or a service account, expiring, revocable.

A token is ``rk_`` and 256 random bits, shown once and stored only as its
SHA-256 digest (that much entropy needs no slow hash). Its role, unit scope
and whether it still works come from its owner at every check: disabling a
user or a service account stops its tokens. Two kinds: ``session`` (a
person's login, hours) and ``api`` (a script or a service, days, at most
``API_TOKEN_DAYS_MAX``). Every creation and revocation is audited in the
caller's transaction, naming who did it; the token itself never is.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import Table, and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.access.model import (
    OwnerKind,
    Principal,
    TokenKind,
    check_token_name,
)
from ledger.access.trail import audit
from ledger.core import tables as t
from ledger.core.checks import check_limit
from ledger.core.errors import NotFoundError, ValidationError
from ledger.core.paging import LIST_LIMIT_MAX, keyset_page

TOKEN_PREFIX: Final = "rk_"  # noqa: S105 -- a public prefix, not a secret
TOKEN_CHARS_MAX: Final = 200
SESSION_TOKEN_HOURS_DEFAULT: Final = 8.0
SESSION_TOKEN_HOURS_MAX: Final = 24.0
API_TOKEN_DAYS_DEFAULT: Final = 90
API_TOKEN_DAYS_MAX: Final = 365
# ``last_used_at`` is a hint for whoever reviews tokens, not a log: written at
# most this often per token, so a busy token does not turn reads into writes.
LAST_USED_RESOLUTION: Final = timedelta(minutes=5)
# Expired login tokens kept this long (for review), then deleted at the
# owner's next login: a person's rows stay bounded.
EXPIRED_SESSION_TOKENS_KEPT: Final = timedelta(days=7)
SUBJECT_TYPE: Final = "api_token"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Owner:
    """Whose token: a user or a service account, by id and name."""

    kind: str
    id: int
    name: str
    role: str


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: never its digest."""

    id: int
    name: str
    kind: str
    owner_kind: str
    owner_name: str
    created_at: datetime
    created_by: str
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None

    def active(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


@dataclass(frozen=True)
class TokenLookup:
    principal: Principal
    last_used_at: datetime | None


_tok, _user, _service = t.api_tokens, t.users, t.service_accounts
_OWNED: Final = _tok.outerjoin(_user, _user.c.id == _tok.c.user_id).outerjoin(
    _service, _service.c.id == _tok.c.service_account_id
)
_INFO_SELECT: Final = select(
    *(_tok.c[name] for name in ("id", "name", "kind", "created_at", "created_by")),
    *(_tok.c[name] for name in ("expires_at", "last_used_at", "revoked_at", "revoked_by")),
    _user.c.username,
    _service.c.name.label("service_name"),
).select_from(_OWNED)


def _info(row: Any) -> TokenInfo:
    is_user = row.username is not None
    return TokenInfo(
        id=row.id,
        name=row.name,
        kind=row.kind,
        owner_kind=OwnerKind.USER if is_user else OwnerKind.SERVICE,
        owner_name=row.username if is_user else row.service_name,
        created_at=row.created_at,
        created_by=row.created_by,
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
    )


# Enabled owners only: a disabled user's or service's token finds no owner.
_LOOKUP: Final = (
    select(
        _tok.c.id,
        _tok.c.kind,
        _tok.c.expires_at,
        _tok.c.last_used_at,
        _tok.c.created_by,
        _user.c.id.label("user_id"),
        _user.c.username,
        _user.c.role.label("user_role"),
        _user.c.units,
        _user.c.password_set_by,
        _service.c.id.label("service_id"),
        _service.c.name.label("service_name"),
        _service.c.role.label("service_role"),
    )
    .select_from(
        _tok.outerjoin(
            _user, and_(_user.c.id == _tok.c.user_id, _user.c.disabled_at.is_(None))
        ).outerjoin(
            _service,
            and_(_service.c.id == _tok.c.service_account_id, _service.c.disabled_at.is_(None)),
        )
    )
    .where(
        _tok.c.token_hash == bindparam("digest"),
        _tok.c.revoked_at.is_(None),
        _tok.c.expires_at > bindparam("now"),
    )
)


def _principal(row: Any) -> Principal | None:
    if row.user_id is not None:
        # Who issued this credential, if not its owner: the maker of an API
        # token, or whoever set the password a login token came from.
        issuer = row.created_by if row.kind == TokenKind.API else row.password_set_by
        return Principal(
            owner_kind=OwnerKind.USER,
            owner_id=row.user_id,
            owner_name=row.username,
            role=row.user_role,
            units=tuple(row.units),
            credential=row.kind,
            credential_id=row.id,
            expires_at=row.expires_at,
            vouched_by=issuer if issuer not in (None, row.username) else None,
        )
    if row.service_id is not None:
        return Principal(
            owner_kind=OwnerKind.SERVICE,
            owner_id=row.service_id,
            owner_name=row.service_name,
            role=row.service_role,
            units=(),
            credential=row.kind,
            credential_id=row.id,
            expires_at=row.expires_at,
        )
    return None  # its owner is disabled


async def lookup_token(conn: AsyncConnection, token: str, now: datetime) -> TokenLookup | None:
    """The principal of a live token of an enabled owner, or None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > TOKEN_CHARS_MAX:
        return None
    row = (await conn.execute(_LOOKUP, {"digest": hash_token(token), "now": now})).one_or_none()
    if row is None:
        return None
    principal = _principal(row)
    return TokenLookup(principal, row.last_used_at) if principal is not None else None


def needs_use_noted(lookup: TokenLookup, now: datetime) -> bool:
    last = lookup.last_used_at
    return last is None or now - last >= LAST_USED_RESOLUTION


async def note_token_used(conn: AsyncConnection, token_id: int, now: datetime) -> None:
    """Record use, unless another process did within the resolution."""
    await conn.execute(
        _tok.update()
        .where(
            _tok.c.id == token_id,
            (_tok.c.last_used_at.is_(None)) | (_tok.c.last_used_at < now - LAST_USED_RESOLUTION),
        )
        .values(last_used_at=now)
    )


async def _owner(
    conn: AsyncConnection, kind: OwnerKind, table: Table, name_column: str, name: str
) -> Owner:
    row = (
        await conn.execute(
            select(table.c.id, table.c.role).where(
                table.c[name_column] == name, table.c.disabled_at.is_(None)
            )
        )
    ).one_or_none()
    if row is None:
        what = "user" if kind is OwnerKind.USER else "service account"
        raise NotFoundError(f"no enabled {what} {name!r}")
    return Owner(kind, row.id, name, row.role)


async def user_owner(conn: AsyncConnection, username: str) -> Owner:
    return await _owner(conn, OwnerKind.USER, _user, "username", username)


async def service_owner(conn: AsyncConnection, name: str) -> Owner:
    return await _owner(conn, OwnerKind.SERVICE, _service, "name", name)


def api_token_lifetime(days: object) -> timedelta:
    """``days`` (None: the default) as a lifetime within the bound."""
    if days is None:
        days = API_TOKEN_DAYS_DEFAULT
    if type(days) is not int or not 1 <= days <= API_TOKEN_DAYS_MAX:
        raise ValidationError("expires_days", f"must be a whole number in 1..{API_TOKEN_DAYS_MAX}")
    return timedelta(days=days)


async def issue_token(
    conn: AsyncConnection,
    owner: Owner,
    *,
    kind: TokenKind,
    name: object,
    lifetime: timedelta,
    created_by: str,
    now: datetime,
) -> tuple[str, TokenInfo]:
    """Create a token and return it with its row: the only time it is visible."""
    name = check_token_name(name)
    bound = (
        timedelta(hours=SESSION_TOKEN_HOURS_MAX)
        if kind is TokenKind.SESSION
        else timedelta(days=API_TOKEN_DAYS_MAX)
    )
    assert timedelta(0) < lifetime <= bound, (kind, lifetime)
    if owner.kind == OwnerKind.SERVICE and kind is not TokenKind.API:
        raise ValidationError("kind", "a service account only holds API tokens")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    values = {
        "name": name,
        "token_hash": hash_token(token),
        "kind": kind,
        "created_at": now,
        "expires_at": now + lifetime,
        "created_by": created_by,
        ("user_id" if owner.kind == OwnerKind.USER else "service_account_id"): owner.id,
    }
    token_id = (
        await conn.execute(_tok.insert().values(**values).returning(_tok.c.id))
    ).scalar_one()
    info = TokenInfo(
        token_id,
        name,
        kind,
        owner.kind,
        owner.name,
        now,
        created_by,
        now + lifetime,
        None,
        None,
        None,
    )
    await _audit(conn, created_by, "token.created", info, now)
    return token, info


async def _audit(
    conn: AsyncConnection, actor: str, action: str, info: TokenInfo, now: datetime
) -> None:
    await audit(
        conn,
        actor,
        action,
        (SUBJECT_TYPE, str(info.id)),
        now,
        name=info.name,
        kind=info.kind,
        owner_kind=info.owner_kind,
        owner=info.owner_name,
        expires_at=info.expires_at.isoformat(),
    )


async def list_tokens(
    conn: AsyncConnection,
    now: datetime,
    *,
    owner: Owner | None = None,
    include_inactive: bool = False,
    after_id: int = 0,
    limit: int = 100,
) -> list[TokenInfo]:
    """Oldest first; only live ones unless ``include_inactive``."""
    check_limit(limit, LIST_LIMIT_MAX)
    query = _INFO_SELECT
    if owner is not None:
        column = _tok.c.user_id if owner.kind == OwnerKind.USER else _tok.c.service_account_id
        query = query.where(column == owner.id)
    if not include_inactive:
        query = query.where(_tok.c.revoked_at.is_(None), _tok.c.expires_at > now)
    query = keyset_page(query, _tok.c.id, after_id=after_id, limit=limit)
    return [_info(r) for r in (await conn.execute(query)).all()]


def _owned_by(info: TokenInfo, owner: Owner) -> bool:
    return (info.owner_kind, info.owner_name) == (owner.kind, owner.name)


async def revoke_token(
    conn: AsyncConnection,
    token_id: int,
    actor: str,
    now: datetime,
    *,
    owner: Owner | None = None,
) -> TokenInfo:
    """Revoke a token (of ``owner`` only, when given: another's is not
    found). Revoking a revoked token changes nothing."""
    query = _INFO_SELECT.where(_tok.c.id == token_id).with_for_update(of=_tok)
    row = (await conn.execute(query)).one_or_none()
    info = _info(row) if row is not None else None
    if info is None or (owner is not None and not _owned_by(info, owner)):
        raise NotFoundError(f"no token {token_id}")
    if info.revoked_at is not None:
        return info
    await conn.execute(
        _tok.update().where(_tok.c.id == token_id).values(revoked_at=now, revoked_by=actor)
    )
    await _audit(conn, actor, "token.revoked", info, now)
    return replace(info, revoked_at=now, revoked_by=actor)


async def revoke_login_tokens(
    conn: AsyncConnection, user_id: int, actor: str, now: datetime
) -> int:
    """End every login (session token) of a user, e.g. when their password
    changes or they are disabled; returns how many were live."""
    result = await conn.execute(
        _tok.update()
        .where(
            _tok.c.user_id == user_id,
            _tok.c.kind == TokenKind.SESSION,
            _tok.c.revoked_at.is_(None),
            _tok.c.expires_at > now,
        )
        .values(revoked_at=now, revoked_by=actor)
    )
    return int(result.rowcount)


async def prune_login_tokens(conn: AsyncConnection, user_id: int, now: datetime) -> None:
    """Delete a user's login tokens that expired over a week ago."""
    await conn.execute(
        _tok.delete().where(
            _tok.c.user_id == user_id,
            _tok.c.kind == TokenKind.SESSION,
            _tok.c.expires_at < now - EXPIRED_SESSION_TOKENS_KEPT,
        )
    )
