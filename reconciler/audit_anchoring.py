"""The worker's audit anchoring loop step: check the rows appended since the
last anchor and seal the head with the audit key (``ledger.core.audit_anchor``).

Each anchor is logged with its MAC: the log is a copy outside the database,
which ``reconciler audit verify --anchor ROW:MAC`` can check the log against
after an intruder has cut the database's newest anchors away.
"""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core.audit_anchor import AnchorError, anchor_head

log = structlog.get_logger(__name__)


async def anchor_audit_head(engine: AsyncEngine, key: bytes) -> None:
    """One round; a broken chain is reported (loudly) and nothing is sealed."""
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        try:
            async with conn.begin():
                anchor = await anchor_head(conn, key, datetime.now(UTC))
        except AnchorError as err:
            log.error("audit.anchor_refused", error=str(err))
            return
    if anchor is not None:
        log.info("audit.anchored", row_id=anchor.row_id, mac=anchor.mac, key_id=anchor.key_id)
