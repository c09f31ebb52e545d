"""The audit rows of identity: one call shape for users, service accounts,
tokens and sessions (never a password, a token or its digest)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core.audit import append_audit


async def audit(
    conn: AsyncConnection,
    actor: str,
    action: str,
    subject: tuple[str, str],
    now: datetime,
    **detail: Any,
) -> None:
    """Append ``action`` on ``subject`` (type, id) by ``actor``, in the
    caller's transaction."""
    subject_type, subject_id = subject
    await append_audit(
        conn,
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        now=now,
        detail=detail,
    )
