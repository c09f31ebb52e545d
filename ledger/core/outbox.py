"""The outbox: notices (a receipt issued, a payment in doubt, an approval
waiting) queued in the transaction of the fact they tell, so that both
commit or neither does, and delivered at least once by the dispatcher
(``reconciler.outbox``).

A notice is queued once per dedupe key (queuing it again is a no-op, so a
retried activity sends nothing twice); it is tried at most ``ATTEMPTS_MAX``
times, oldest first. Every function runs in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import bindparam, select
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t
from ledger.core.rows import columns, row_mapper

BATCH_SIZE_MAX: Final = 100
ATTEMPTS_MAX: Final = 20
LAST_ERROR_CHARS_MAX: Final = 500


@dataclass(frozen=True)
class Notice:
    """An ``outbox`` row still to deliver."""

    id: int
    kind: str
    payload: dict[str, Any]
    dedupe_key: str
    attempts: int


_notice: Final = row_mapper(Notice)
# Built once: the payment saga queues a notice per receipt, and building a
# statement per call costs more CPU than running it.
# Queue once per dedupe key (a second queueing is a no-op).
_ENQUEUE_MANY: Final = (
    insert(t.outbox)
    .values(
        dedupe_key=bindparam("dedupe_key"),
        kind=bindparam("kind"),
        payload=bindparam("payload", type_=JSONB),
    )
    .on_conflict_do_nothing(index_elements=["dedupe_key"])
)
_ENQUEUE: Final = _ENQUEUE_MANY.returning(t.outbox.c.id)
# ``sent_at IS NULL`` is the predicate of the partial index ``outbox_unsent``.
_CLAIM: Final = (
    select(*columns(Notice, t.outbox))
    .where(t.outbox.c.sent_at.is_(None), t.outbox.c.attempts < ATTEMPTS_MAX)
    .order_by(t.outbox.c.id)
    .limit(bindparam("limit"))
    .with_for_update(skip_locked=True)
)
_MARK_SENT: Final = (
    t.outbox.update()
    .where(t.outbox.c.id == bindparam("notice_id"))
    .values(sent_at=bindparam("now"), attempts=t.outbox.c.attempts + 1)
)
_MARK_FAILED: Final = (
    t.outbox.update()
    .where(t.outbox.c.id == bindparam("notice_id"))
    .values(attempts=t.outbox.c.attempts + 1, last_error=bindparam("error"))
)


async def enqueue(
    conn: AsyncConnection, dedupe_key: str, kind: str, payload: dict[str, Any]
) -> bool:
    """Queue a notice; False when one with this dedupe key was queued before
    (it is left as it is)."""
    params = {"dedupe_key": dedupe_key, "kind": kind, "payload": payload}
    return (await conn.execute(_ENQUEUE, params)).scalar_one_or_none() is not None


@dataclass(frozen=True)
class Draft:
    """A notice to queue (``enqueue_many``)."""

    dedupe_key: str
    kind: str
    payload: dict[str, Any]


async def enqueue_many(conn: AsyncConnection, drafts: Sequence[Draft]) -> None:
    """``enqueue`` for many notices in one round trip (those whose dedupe key
    was queued before are left as they are)."""
    if drafts:
        await conn.execute(_ENQUEUE_MANY, [vars(d) for d in drafts])


async def claim_batch(conn: AsyncConnection, limit: int = BATCH_SIZE_MAX) -> list[Notice]:
    """Up to ``limit`` undelivered notices with attempts left, oldest first,
    locked until the caller's transaction ends. Rows another dispatcher holds
    are skipped (SKIP LOCKED), so several share the work without doubles."""
    assert 1 <= limit <= BATCH_SIZE_MAX, limit
    return [_notice(row) for row in (await conn.execute(_CLAIM, {"limit": limit})).all()]


async def mark_sent(conn: AsyncConnection, notice_id: int, now: datetime) -> None:
    await conn.execute(_MARK_SENT, {"notice_id": notice_id, "now": now})


async def mark_failed(conn: AsyncConnection, notice_id: int, error: str) -> None:
    """One attempt used; the error kept (its first ``LAST_ERROR_CHARS_MAX``
    characters) for whoever looks at a notice that ran out of attempts."""
    params = {"notice_id": notice_id, "error": error[:LAST_ERROR_CHARS_MAX]}
    await conn.execute(_MARK_FAILED, params)
