"""A PostgreSQL-backed webhook nonce store, shared by every API process.

Atomic per nonce (``INSERT ... ON CONFLICT DO NOTHING``), bounded by expiry:
expired nonces are deleted as new ones arrive, and a nonce whose timestamp
window has passed is refused by the timestamp check before it gets here.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


class PgNonceStore:
    def __init__(self, engine: AsyncEngine, bank: str) -> None:
        self._engine = engine
        self._bank = bank

    async def remember(self, nonce: str, *, now: datetime, expires_at: datetime) -> bool:
        """Record ``nonce``; False if it is already known and unexpired."""
        async with self._engine.begin() as conn:
            await conn.execute(
                text("DELETE FROM webhook_nonces WHERE bank = :bank AND expires_at <= :now"),
                {"bank": self._bank, "now": now},
            )
            inserted = (
                await conn.execute(
                    text(
                        "INSERT INTO webhook_nonces (bank, nonce, expires_at) "
                        "VALUES (:bank, :nonce, :expires) ON CONFLICT DO NOTHING RETURNING 1"
                    ),
                    {"bank": self._bank, "nonce": nonce, "expires": expires_at},
                )
            ).scalar_one_or_none()
        return inserted is not None
