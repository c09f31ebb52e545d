"""API tokens and staff users.

Tokens are random and stored only as SHA-256 digests (a token has 256 bits of
entropy, so a fast hash is enough); passwords are hashed with argon2.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t
from ledger.core.errors import ConflictError, ValidationError

STAFF_ROLES: Final = ("officer", "finance", "approver", "operator", "admin")
TOKEN_ROLES: Final = (*STAFF_ROLES, "portal")
TOKEN_PREFIX: Final = "rk_"  # noqa: S105 -- a public prefix, not a secret
_hasher = PasswordHasher()


@dataclass(frozen=True)
class Principal:
    """Who is calling: a token's or a user's name and role."""

    name: str
    role: str


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def create_token(conn: AsyncConnection, name: str, role: str) -> str:
    """Create a named token and return it (the only time it is visible)."""
    if role not in TOKEN_ROLES:
        raise ValidationError("role", f"must be one of {', '.join(TOKEN_ROLES)}")
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
            select(t.api_tokens.c.name, t.api_tokens.c.role).where(
                t.api_tokens.c.token_hash == hash_token(token),
                t.api_tokens.c.revoked_at.is_(None),
            )
        )
    ).one_or_none()
    return Principal(name=row.name, role=row.role) if row else None


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValidationError("password", "must be at least 8 characters")
    if len(password) > 256:
        raise ValidationError("password", "must be at most 256 characters")
    return _hasher.hash(password)


async def create_user(
    conn: AsyncConnection, username: str, password: str, role: str, full_name: str = ""
) -> None:
    if role not in STAFF_ROLES:
        raise ValidationError("role", f"must be one of {', '.join(STAFF_ROLES)}")
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
            select(t.users.c.username, t.users.c.password_hash, t.users.c.role).where(
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
    return Principal(name=row.username, role=row.role)
