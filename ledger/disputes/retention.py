"""How long a disputing citizen's contact is kept: erased a while after
the dispute ends.

A phone number or an email is needed while someone may have to call the
citizen back; once the dispute is confirmed, refunded or rejected and the
retention period (``RECONCILER_DISPUTE_CONTACT_RETENTION_DAYS``, 90 days by
default) has passed, the worker erases it (``reconciler.worker``, once an
hour). Each erasure appends ``dispute.contact_erased`` naming which kinds
were erased, never the contact: the audit chain never held it (migration
0017), so nothing there breaks.

Safe with several workers: the rows of a batch are locked with ``SKIP
LOCKED``, so two passes never erase (or audit) the same dispute twice, and
an erased dispute no longer matches.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core import tables as t
from ledger.core.audit import AuditDraft, append_audit_many
from ledger.disputes.record import FINAL_STATUSES, SUBJECT_TYPE

SYSTEM_RETENTION: Final = "system:retention"
ERASE_BATCH: Final = 200
# One pass erases at most this many batches; what is left waits an hour.
ERASE_BATCHES_MAX: Final = 50

_d = t.disputes


async def erase_contacts_once(
    engine: AsyncEngine, resolved_before: datetime, now: datetime, limit: int = ERASE_BATCH
) -> int:
    """Erase the contact of at most ``limit`` disputes that ended before
    ``resolved_before``, in one transaction with their audit rows; how many."""
    if not 1 <= limit <= ERASE_BATCH:
        raise ValueError(f"erase 1..{ERASE_BATCH} contacts at once, not {limit}")
    picked = (
        select(_d.c.id, _d.c.contact_phone, _d.c.contact_email)
        .where(
            _d.c.status.in_([str(status) for status in FINAL_STATUSES]),
            _d.c.resolved_at < resolved_before,
            or_(_d.c.contact_phone.is_not(None), _d.c.contact_email.is_not(None)),
        )
        .order_by(_d.c.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    async with engine.begin() as conn:
        rows = (await conn.execute(picked)).all()
        if not rows:
            return 0
        ids = [int(row.id) for row in rows]
        await conn.execute(
            update(_d)
            .where(_d.c.id.in_(ids))
            .values(contact_phone=None, contact_email=None, updated_at=now)
        )
        drafts = [
            AuditDraft(
                actor=SYSTEM_RETENTION,
                action="dispute.contact_erased",
                subject_type=SUBJECT_TYPE,
                subject_id=str(row.id),
                now=now,
                detail={
                    "erased": [
                        kind
                        for kind, value in (
                            ("phone", row.contact_phone),
                            ("email", row.contact_email),
                        )
                        if value is not None
                    ],
                    "resolved_before": resolved_before.isoformat(),
                },
            )
            for row in rows
        ]
        await append_audit_many(conn, drafts)
    return len(ids)


async def erase_expired_contacts(
    engine: AsyncEngine, resolved_before: datetime, now: datetime
) -> int:
    """Erase every contact past its retention, a batch at a time, at most
    ``ERASE_BATCHES_MAX`` batches; how many were erased."""
    erased = 0
    for _ in range(ERASE_BATCHES_MAX):
        done = await erase_contacts_once(engine, resolved_before, now)
        erased += done
        if done < ERASE_BATCH:
            break
    return erased
