"""A PostgreSQL-backed webhook nonce store, shared by every API process.

Atomic per nonce (``INSERT ... ON CONFLICT DO NOTHING``), bounded by expiry:
expired nonces are deleted as new ones arrive, and a nonce whose timestamp
window has passed is refused by the timestamp check before it gets here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import bindparam, delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine

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


class PgNonceStore:
    def __init__(self, engine: AsyncEngine, bank: str) -> None:
        self._engine = engine
        self._bank = bank

    async def remember(self, nonce: str, *, now: datetime, expires_at: datetime) -> bool:
        """Record ``nonce``; False if it is already known and unexpired."""
        async with self._engine.begin() as conn:
            await conn.execute(_FORGET_EXPIRED, {"bank": self._bank, "now": now})
            params = {"bank": self._bank, "nonce": nonce, "expires": expires_at}
            inserted = (await conn.execute(_REMEMBER, params)).scalar_one_or_none()
        return inserted is not None
