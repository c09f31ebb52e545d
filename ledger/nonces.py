"""PostgreSQL-backed webhook nonces, shared by every API process.

Atomic per nonce (``INSERT ... ON CONFLICT DO NOTHING``), bounded by expiry:
expired nonces are deleted as new ones arrive, and a nonce whose timestamp
window has passed is refused by the timestamp check before it gets here.

A nonce is spent only when its callback took effect. ``TxNonceStore``
remembers it in the caller's transaction, which also records the verified
event (``ledger.payments.bank_events``) and commits both before the event is
acted on; if acting on it then fails (the workflow service is down: 503),
``release_nonce`` forgets it again, so the bank's retry of the very same
delivery is not refused as a replay.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import bindparam, delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from ledger.core.tables import webhook_nonces as n

_FORGET_EXPIRED: Final = delete(n).where(
    n.c.bank == bindparam("bank"), n.c.expires_at <= bindparam("now")
)
_REMEMBER: Final = (
    insert(n)
    .values(bank=bindparam("bank"), nonce=bindparam("nonce"), expires_at=bindparam("expires"))
    .on_conflict_do_nothing()
    .returning(n.c.nonce)
)
_FORGET: Final = delete(n).where(n.c.bank == bindparam("bank"), n.c.nonce == bindparam("nonce"))


async def _remember(
    conn: AsyncConnection, bank: str, nonce: str, now: datetime, expires_at: datetime
) -> bool:
    await conn.execute(_FORGET_EXPIRED, {"bank": bank, "now": now})
    params = {"bank": bank, "nonce": nonce, "expires": expires_at}
    return (await conn.execute(_REMEMBER, params)).scalar_one_or_none() is not None


class TxNonceStore:
    """Nonces remembered in the caller's transaction: spent only if it
    commits. A concurrent delivery of the same nonce waits for that commit
    (the row is locked), then is refused as a replay."""

    def __init__(self, conn: AsyncConnection, bank: str) -> None:
        self._conn = conn
        self._bank = bank

    async def remember(self, nonce: str, *, now: datetime, expires_at: datetime) -> bool:
        return await _remember(self._conn, self._bank, nonce, now, expires_at)


async def release_nonce(engine: AsyncEngine, bank: str, nonce: str) -> None:
    """Forget a nonce whose callback could not take effect, so that the same
    delivery, sent again, is taken."""
    async with engine.begin() as conn:
        await conn.execute(_FORGET, {"bank": bank, "nonce": nonce})
