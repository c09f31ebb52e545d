"""What the operators' silent-failure gauges read from the ledger: one
snapshot, a handful of indexed aggregate queries, taken by the worker every
few seconds (``reconciler.ops_gauges``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core.outbox import ATTEMPTS_MAX


@dataclass(frozen=True)
class OpsSnapshot:
    outbox_pending: int
    outbox_oldest_pending: datetime | None
    outbox_dead_letters: int
    approvals_oldest_pending: datetime | None
    disputes_oldest_open: datetime | None
    # bank -> when its last completed run finished (banks with one only)
    recon_last_success: dict[str, datetime] = field(default_factory=dict)
    # bank -> runs failed in the last 24 hours
    recon_failed_24h: dict[str, int] = field(default_factory=dict)


_OUTBOX = text(
    """
    SELECT count(*) FILTER (WHERE attempts < :max) AS pending,
           min(created_at) FILTER (WHERE attempts < :max) AS oldest,
           count(*) FILTER (WHERE attempts >= :max) AS dead
      FROM outbox WHERE sent_at IS NULL
    """
)
_WAITING = text(
    """
    SELECT (SELECT min(requested_at) FROM approvals WHERE status = 'pending') AS approval,
           (SELECT min(opened_at) FROM disputes
             WHERE status NOT IN ('confirmed', 'refunded', 'rejected')) AS dispute
    """
)
_RECON = text(
    """
    SELECT bank,
           max(finished_at) FILTER (WHERE status = 'completed') AS last_success,
           count(*) FILTER (WHERE status = 'failed'
                            AND finished_at > now() - interval '24 hours') AS failed
      FROM reconciliations GROUP BY bank
    """
)


async def ops_snapshot(conn: AsyncConnection) -> OpsSnapshot:
    outbox = (await conn.execute(_OUTBOX, {"max": ATTEMPTS_MAX})).one()
    waiting = (await conn.execute(_WAITING)).one()
    recon = (await conn.execute(_RECON)).all()
    return OpsSnapshot(
        outbox_pending=int(outbox.pending),
        outbox_oldest_pending=outbox.oldest,
        outbox_dead_letters=int(outbox.dead),
        approvals_oldest_pending=waiting.approval,
        disputes_oldest_open=waiting.dispute,
        recon_last_success={r.bank: r.last_success for r in recon if r.last_success},
        recon_failed_24h={r.bank: int(r.failed) for r in recon},
    )
