"""API tokens and staff users.

Tokens are random and stored only as SHA-256 digests (a token has 256 bits of
entropy, so a fast hash is enough); passwords are hashed with argon2.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t
from ledger.core.checks import check_choice
from ledger.core.errors import ConflictError, ValidationError
from ledger.core.rows import columns, row_mapper


class Role(StrEnum):
    """What a caller may do (``users.role``, ``api_tokens.role``)."""

    OFFICER = "officer"
    FINANCE = "finance"
    APPROVER = "approver"
    OPERATOR = "operator"
    ADMIN = "admin"
    PORTAL = "portal"  # the citizens' portal: a token, never a person


STAFF_ROLES: Final = tuple(role.value for role in Role if role is not Role.PORTAL)
TOKEN_ROLES: Final = tuple(role.value for role in Role)
TOKEN_PREFIX: Final = "rk_"  # noqa: S105 -- a public prefix, not a secret
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's or a user's name and role."""

    name: str
    role: str


_principal: Final = row_mapper(Principal)
_TOKEN_PRINCIPAL: Final = columns(Principal, t.api_tokens)
_USER_PRINCIPAL: Final = columns(Principal, t.users, name=t.users.c.username)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(conn: AsyncConnection, name: str, role: str) -> str:
    """Create a named token and return it (the only time it is visible)."""
    check_choice("role", role, TOKEN_ROLES)
    if not 1 <= len(name) <= 100:
        raise ValidationError("name", "must be 1..100 characters")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    inserted = (
        await conn.execute(
            insert(t.api_tokens)
            .values(name=name, token_hash=hash_token(token), role=role)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(t.api_tokens.c.id)
        )
    ).scalar_one_or_none()
    if inserted is None:
        raise ConflictError(f"a token named {name!r} already exists")
    return token


async def principal_for_token(conn: AsyncConnection, token: str) -> Principal | None:
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    row = (
        await conn.execute(
            select(*_TOKEN_PRINCIPAL).where(
                t.api_tokens.c.token_hash == hash_token(token),
                t.api_tokens.c.revoked_at.is_(None),
            )
        )
    ).one_or_none()
    return _principal(row) if row else None


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValidationError("password", "must be at least 8 characters")
    if len(password) > 256:
        raise ValidationError("password", "must be at most 256 characters")
    return _hasher.hash(password)


async def create_user(
    conn: AsyncConnection, username: str, password: str, role: str, full_name: str = ""
) -> None:
    check_choice("role", role, STAFF_ROLES)
    inserted = (
        await conn.execute(
            insert(t.users)
            .values(
                username=username,
                password_hash=hash_password(password),
                role=role,
                full_name=full_name,
            )
            .on_conflict_do_nothing(index_elements=["username"])
            .returning(t.users.c.id)
        )
    ).scalar_one_or_none()
    if inserted is None:
        raise ConflictError(f"a user named {username!r} already exists")


async def authenticate_user(
    conn: AsyncConnection, username: str, password: str
) -> Principal | None:
    row = (
        await conn.execute(
            select(*_USER_PRINCIPAL, t.users.c.password_hash).where(
                t.users.c.username == username, t.users.c.disabled_at.is_(None)
            )
        )
    ).one_or_none()
    if row is None:
        # Same cost as a real check, so a missing user is not told apart by timing.
        _hasher.hash(password[:256])
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return _principal(row)
