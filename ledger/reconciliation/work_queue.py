"""The discrepancy work queue: discrepancies filtered as finance works them
(bank, kind, status, age, amount range, bank reference, assignee), who
works on each (``discrepancy_assignments``, migration 0015) and notes.

Assigning and unassigning, one or many at once, and every note are audit
entries on the discrepancy (``discrepancy.assigned``,
``discrepancy.unassigned``, ``discrepancy.note``); a note lives only there
(append-only, in the hash chain). Only an open discrepancy is assigned.
Nothing here moves money: settling a discrepancy stays one at a time,
through its actions and a second person's approval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import BigInteger, Column, DateTime, MetaData, Table, Text, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t
from ledger.core.audit import AuditEntry, append_audit, audit_trail
from ledger.core.checks import check_reason
from ledger.core.errors import ConflictError, ValidationError
from ledger.reconciliation import discrepancies as disc

BULK_MAX: Final = 100
NAME_CHARS_MAX: Final = 200
BANK_REF_CHARS_MAX: Final = 64
AGE_DAYS_MAX: Final = 3650

# Its own metadata: migration 0015 creates it, nothing else here refers to it.
assignments: Final = Table(
    "discrepancy_assignments",
    MetaData(),
    Column("discrepancy_id", BigInteger, primary_key=True),
    Column("assignee", Text, nullable=False),
    Column("assigned_by", Text, nullable=False),
    Column("assigned_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class QueueFilter:
    bank: str | None = None
    kind: str | None = None
    status: str | None = "open"
    older_than_days: int | None = None
    amount_min: int | None = None
    amount_max: int | None = None
    bank_ref: str | None = None
    assignee: str | None = None

    def __post_init__(self) -> None:
        disc.DiscrepancyFilter(kind=self.kind, status=self.status)  # checks both
        if (
            self.amount_min is not None
            and self.amount_max is not None
            and self.amount_max < self.amount_min
        ):
            raise ValidationError("amount_max", "must not be below amount_min")
        if self.bank_ref is not None and len(self.bank_ref) > BANK_REF_CHARS_MAX:
            raise ValidationError("bank_ref", f"is longer than {BANK_REF_CHARS_MAX} characters")
        if self.assignee is not None and len(self.assignee) > NAME_CHARS_MAX:
            raise ValidationError("assignee", f"is longer than {NAME_CHARS_MAX} characters")


@dataclass(frozen=True)
class QueueItem:
    item: disc.Discrepancy
    assignee: str | None
    assigned_at: datetime | None


_d = t.discrepancies
_QUEUE: Final = (
    disc.discrepancy_query()
    .add_columns(assignments.c.assignee, assignments.c.assigned_at)
    .outerjoin(assignments, assignments.c.discrepancy_id == _d.c.id)
)


async def list_queue(
    conn: AsyncConnection,
    where: QueueFilter,
    now: datetime,
    *,
    limit: int = 50,
    before_id: int | None = None,
) -> tuple[list[QueueItem], int | None]:
    """Newest first, ``limit`` at most; the page and the next page's cursor."""
    if not 1 <= limit <= disc.PAGE_SIZE_MAX:
        raise ValidationError("limit", f"must be between 1 and {disc.PAGE_SIZE_MAX}")
    query = _QUEUE.order_by(_d.c.id.desc()).limit(limit + 1)
    for column, value in (
        (_d.c.bank, where.bank),
        (_d.c.kind, where.kind),
        (_d.c.status, where.status),
    ):
        if value is not None:
            query = query.where(column == value)
    if where.older_than_days is not None:
        query = query.where(_d.c.created_at <= now - timedelta(days=where.older_than_days))
    if where.amount_min is not None:
        query = query.where(_d.c.amount_vnd >= where.amount_min)
    if where.amount_max is not None:
        query = query.where(_d.c.amount_vnd <= where.amount_max)
    if where.bank_ref is not None:
        query = query.where(disc.bank_ref_column() == where.bank_ref)
    if where.assignee is not None:
        query = query.where(assignments.c.assignee == where.assignee)
    if before_id is not None:
        query = query.where(_d.c.id < before_id)
    rows = (await conn.execute(query)).all()
    page = [
        QueueItem(disc.discrepancy_from_row(r), r.assignee, r.assigned_at) for r in rows[:limit]
    ]
    return page, (page[-1].item.id if len(rows) > limit else None)


async def get_item(conn: AsyncConnection, discrepancy_id: int) -> QueueItem:
    item = await disc.get_discrepancy(conn, discrepancy_id)
    row = (
        await conn.execute(
            select(assignments.c.assignee, assignments.c.assigned_at).where(
                assignments.c.discrepancy_id == discrepancy_id
            )
        )
    ).one_or_none()
    return QueueItem(item, row.assignee if row else None, row.assigned_at if row else None)


def check_ids(ids: Sequence[int]) -> list[int]:
    """Distinct ids, 1..``BULK_MAX`` of them."""
    unique = sorted(set(ids))
    if not 1 <= len(unique) <= BULK_MAX:
        raise ValidationError("ids", f"must name 1 to {BULK_MAX} discrepancies")
    return unique


async def assign(
    conn: AsyncConnection,
    ids: Sequence[int],
    assignee: str | None,
    actor: str,
    now: datetime,
) -> int:
    """Give the open discrepancies ``ids`` to ``assignee`` (None: to nobody),
    all or none: a missing or closed one refuses the whole request. Returns
    how many changed hands; each change is audited."""
    wanted = check_ids(ids)
    items = [await disc.get_discrepancy(conn, i, for_update=True) for i in wanted]
    closed = [str(i.id) for i in items if not i.open]
    if closed:
        raise ConflictError(f"discrepancies {', '.join(closed)} are closed: not assigned")
    changed = 0
    for item in items:
        before = (
            await conn.execute(
                select(assignments.c.assignee).where(assignments.c.discrepancy_id == item.id)
            )
        ).scalar_one_or_none()
        if before == assignee:
            continue
        if assignee is None:
            await conn.execute(assignments.delete().where(assignments.c.discrepancy_id == item.id))
        else:
            await conn.execute(_upsert(item.id, assignee, actor, now))
        action = "discrepancy.assigned" if assignee is not None else "discrepancy.unassigned"
        await append_audit(
            conn,
            actor=actor,
            action=action,
            subject_type=disc.SUBJECT_TYPE,
            subject_id=str(item.id),
            now=now,
            detail={"assignee": assignee, "previous": before},
        )
        changed += 1
    return changed


def _upsert(discrepancy_id: int, assignee: str, actor: str, now: datetime) -> Any:
    values = {"assignee": assignee, "assigned_by": actor, "assigned_at": now}
    return (
        insert(assignments)
        .values(discrepancy_id=discrepancy_id, **values)
        .on_conflict_do_update(index_elements=[assignments.c.discrepancy_id], set_=values)
    )


async def add_note(
    conn: AsyncConnection, discrepancy_id: int, note: object, actor: str, now: datetime
) -> AuditEntry:
    """A person's note on the discrepancy (open or closed): an audit entry."""
    text = check_reason("note", note, required=True)
    await disc.get_discrepancy(conn, discrepancy_id)
    return await append_audit(
        conn,
        actor=actor,
        action="discrepancy.note",
        subject_type=disc.SUBJECT_TYPE,
        subject_id=str(discrepancy_id),
        now=now,
        detail={"note": text},
    )


async def history(conn: AsyncConnection, discrepancy_id: int) -> list[AuditEntry]:
    """Everything done about the discrepancy, notes included, oldest first."""
    return await audit_trail(conn, [(disc.SUBJECT_TYPE, str(discrepancy_id))])
