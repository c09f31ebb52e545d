"""Console sessions: what the staff web console's cookie stands for.

The cookie holds an opaque random id (``rs_`` and 256 bits); only its
SHA-256 is stored, so a copy of the table opens no session. A session ends
at ``expires_at`` (absolute), after ``idle_timeout_seconds`` without a
request, when revoked (logout, a password change, the user disabled), or
when its user is disabled. Each carries a CSRF secret for the console's
forms (compared in constant time). ``last_seen_at`` is written at most every
``TOUCH_RESOLUTION``, so a busy console does not write on every click.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.access.model import CONSOLE, OwnerKind, Principal
from ledger.access.tokens import hash_token
from ledger.access.trail import audit
from ledger.core import tables as t
from ledger.core.rows import columns, row_mapper

SESSION_PREFIX: Final = "rs_"
SESSION_ID_CHARS_MAX: Final = 200
SESSION_LIFETIME_DEFAULT: Final = timedelta(hours=12)
SESSION_LIFETIME_MAX: Final = timedelta(days=7)
IDLE_TIMEOUT_DEFAULT: Final = timedelta(minutes=30)
TOUCH_RESOLUTION: Final = timedelta(seconds=60)
ENDED_SESSIONS_KEPT: Final = timedelta(days=7)
CLIENT_CHARS_MAX: Final = 200
SUBJECT_TYPE: Final = "session"


@dataclass(frozen=True)
class Session:
    """A ``sessions`` row, without the digest of its id."""

    id: int
    user_id: int
    csrf_secret: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    idle_timeout_seconds: int
    revoked_at: datetime | None

    def ends_at(self) -> datetime:
        """When it ends if nothing touches it before."""
        idle_end = self.last_seen_at + timedelta(seconds=self.idle_timeout_seconds)
        return min(self.expires_at, idle_end)

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.ends_at()


_s, _u = t.sessions, t.users
_COLUMNS: Final = columns(Session, _s)
_session: Final = row_mapper(Session)
_LOOKUP: Final = select(
    *_COLUMNS,
    _u.c.username,
    _u.c.role,
    _u.c.units,
    _u.c.password_set_by,
).select_from(_s.join(_u, (_u.c.id == _s.c.user_id) & _u.c.disabled_at.is_(None)))


async def create_session(
    conn: AsyncConnection,
    user_id: int,
    actor: str,
    now: datetime,
    *,
    lifetime: timedelta = SESSION_LIFETIME_DEFAULT,
    idle_timeout: timedelta = IDLE_TIMEOUT_DEFAULT,
    client: str = "",
) -> tuple[str, Session]:
    """A new session of ``user_id`` (logged in as ``actor``): the cookie
    value (the only time it is visible) and the row."""
    assert timedelta(0) < lifetime <= SESSION_LIFETIME_MAX, lifetime
    assert timedelta(minutes=1) <= idle_timeout <= timedelta(days=1), idle_timeout
    raw = SESSION_PREFIX + secrets.token_urlsafe(32)
    await conn.execute(
        _s.delete().where(
            _s.c.user_id == user_id,
            _s.c.expires_at < now - ENDED_SESSIONS_KEPT,
        )
    )
    row = (
        await conn.execute(
            _s.insert()
            .values(
                id_hash=hash_token(raw),
                user_id=user_id,
                csrf_secret=secrets.token_urlsafe(32),
                created_at=now,
                last_seen_at=now,
                expires_at=now + lifetime,
                idle_timeout_seconds=int(idle_timeout.total_seconds()),
                client=client[:CLIENT_CHARS_MAX],
            )
            .returning(*_COLUMNS)
        )
    ).one()
    session = _session(row)
    await _audit(conn, actor, "session.created", session, now)
    return raw, session


async def _audit(
    conn: AsyncConnection, actor: str, action: str, session: Session, now: datetime
) -> None:
    expires_at = session.expires_at.isoformat()
    subject = (SUBJECT_TYPE, str(session.id))
    await audit(conn, actor, action, subject, now, user_id=session.user_id, expires_at=expires_at)


async def session_principal(
    conn: AsyncConnection, raw: str, now: datetime
) -> tuple[Principal, Session] | None:
    """The principal of a live session of an enabled user, or None."""
    if not raw.startswith(SESSION_PREFIX) or len(raw) > SESSION_ID_CHARS_MAX:
        return None
    row = (await conn.execute(_LOOKUP.where(_s.c.id_hash == hash_token(raw)))).one_or_none()
    if row is None:
        return None
    session = _session(row)
    if not session.live(now):
        return None
    issuer = row.password_set_by
    principal = Principal(
        owner_kind=OwnerKind.USER,
        owner_id=session.user_id,
        owner_name=row.username,
        role=row.role,
        units=tuple(row.units),
        credential=CONSOLE,
        credential_id=session.id,
        expires_at=session.ends_at(),
        vouched_by=issuer if issuer not in (None, row.username) else None,
    )
    return principal, session


async def touch_session(conn: AsyncConnection, session: Session, now: datetime) -> Session:
    """Note that the session was used (pushing its idle end back), at most
    once per ``TOUCH_RESOLUTION``."""
    if now - session.last_seen_at < TOUCH_RESOLUTION:
        return session
    await conn.execute(
        _s.update()
        .where(_s.c.id == session.id, _s.c.last_seen_at < now - TOUCH_RESOLUTION)
        .values(last_seen_at=now)
    )
    return replace(session, last_seen_at=now)


async def revoke_session(
    conn: AsyncConnection, session: Session, actor: str, now: datetime
) -> None:
    """End one session (logout); ending an ended session changes nothing."""
    ended = await conn.execute(
        _s.update().where(_s.c.id == session.id, _s.c.revoked_at.is_(None)).values(revoked_at=now)
    )
    if ended.rowcount:
        await _audit(conn, actor, "session.revoked", session, now)


async def revoke_user_sessions(conn: AsyncConnection, user_id: int, now: datetime) -> int:
    """End every live session of a user; returns how many there were (the
    caller audits the reason: a password change, the user disabled)."""
    result = await conn.execute(
        _s.update()
        .where(_s.c.user_id == user_id, _s.c.revoked_at.is_(None), _s.c.expires_at > now)
        .values(revoked_at=now)
    )
    return int(result.rowcount)


def csrf_token_matches(session: Session, presented: str) -> bool:
    """Does a form's CSRF token equal the session's secret (constant time)?"""
    return hmac.compare_digest(session.csrf_secret.encode(), presented.encode("utf-8", "replace"))
