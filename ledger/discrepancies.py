"""Discrepancies found by reconciliation: what finance sees and acts on.

A discrepancy is opened by a run (``ledger.reconciliation``) for every line
that is neither matched nor healed, and for payments the bank's statement
does not have (``missing_at_bank``) or that stay in doubt too long. It is
``open`` until it resolves itself (the missing line arrives, the duplicate is
refunded automatically, the payment is decided) or a person dismisses it or
an approved request (refund, manual match) resolves it.

Functions run in the caller's transaction; the caller commits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.errors import ConflictError, NotFoundError, ValidationError
from ledger.reconciliation import DISCREPANCY_KINDS

DISCREPANCY_STATUSES: Final = ("open", "resolved", "dismissed")
PAGE_SIZE_MAX: Final = 500
RESOLUTION_CHARS_MAX: Final = 2_000


class DiscrepancyClosedError(ConflictError):
    """The discrepancy is already resolved or dismissed (HTTP 409)."""

    code = "discrepancy_closed"


@dataclass(frozen=True)
class Discrepancy:
    id: int
    reconciliation_id: int
    bank: str
    statement_date: date
    kind: str
    statement_line_id: int | None
    payment_id: UUID | None
    fine_id: int | None
    decision_number: str | None
    amount_vnd: int
    status: str
    detail: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution: str | None
    # From the statement line, when there is one.
    bank_ref: str | None
    line_class: str | None
    in_suspense: bool

    @property
    def open(self) -> bool:
        return self.status == "open"


_SELECT: Final = """
SELECT d.*, f.decision_number, l.bank_ref AS line_bank_ref, l.class AS line_class,
       coalesce(l.in_suspense, false) AS in_suspense
  FROM discrepancies d
  LEFT JOIN statement_lines l ON l.id = d.statement_line_id
  LEFT JOIN fines f ON f.id = d.fine_id
"""


def _discrepancy(row: Any) -> Discrepancy:
    return Discrepancy(
        id=int(row.id),
        reconciliation_id=int(row.reconciliation_id),
        bank=row.bank,
        statement_date=row.statement_date,
        kind=row.kind,
        statement_line_id=row.statement_line_id,
        payment_id=row.payment_id,
        fine_id=row.fine_id,
        decision_number=row.decision_number,
        amount_vnd=int(row.amount_vnd),
        status=row.status,
        detail=dict(row.detail),
        created_at=row.created_at,
        updated_at=row.updated_at,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        resolution=row.resolution,
        bank_ref=row.line_bank_ref or row.detail.get("bank_ref"),
        line_class=row.line_class,
        in_suspense=bool(row.in_suspense),
    )


async def get_discrepancy(
    conn: AsyncConnection, discrepancy_id: int, *, for_update: bool = False
) -> Discrepancy:
    if for_update:
        await conn.execute(
            text("SELECT 1 FROM discrepancies WHERE id = :id FOR UPDATE"), {"id": discrepancy_id}
        )
    row = (
        await conn.execute(text(_SELECT + " WHERE d.id = :id"), {"id": discrepancy_id})
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no discrepancy {discrepancy_id}")
    return _discrepancy(row)


@dataclass(frozen=True)
class DiscrepancyFilter:
    bank: str | None = None
    kind: str | None = None
    status: str | None = None
    reconciliation_id: int | None = None
    statement_date: date | None = None

    def __post_init__(self) -> None:
        if self.kind is not None and self.kind not in DISCREPANCY_KINDS:
            raise ValidationError("kind", f"must be one of {', '.join(DISCREPANCY_KINDS)}")
        if self.status is not None and self.status not in DISCREPANCY_STATUSES:
            raise ValidationError("status", f"must be one of {', '.join(DISCREPANCY_STATUSES)}")


async def list_discrepancies(
    conn: AsyncConnection,
    where: DiscrepancyFilter,
    *,
    limit: int = 100,
    before_id: int | None = None,
) -> tuple[list[Discrepancy], int | None]:
    """Newest first, ``limit`` at most; returns the page and the cursor of the
    next page (``None`` when this is the last)."""
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise ValidationError("limit", f"must be between 1 and {PAGE_SIZE_MAX}")
    rows = (
        await conn.execute(
            text(
                _SELECT + " WHERE (CAST(:bank AS text) IS NULL OR d.bank = :bank)"
                " AND (CAST(:kind AS text) IS NULL OR d.kind = :kind)"
                " AND (CAST(:status AS text) IS NULL OR d.status = :status)"
                " AND (CAST(:rid AS bigint) IS NULL OR d.reconciliation_id = :rid)"
                " AND (CAST(:day AS date) IS NULL OR d.statement_date = :day)"
                " AND (CAST(:before AS bigint) IS NULL OR d.id < :before)"
                " ORDER BY d.id DESC LIMIT :limit"
            ),
            {
                "bank": where.bank,
                "kind": where.kind,
                "status": where.status,
                "rid": where.reconciliation_id,
                "day": where.statement_date,
                "before": before_id,
                "limit": limit + 1,
            },
        )
    ).all()
    page = [_discrepancy(r) for r in rows[:limit]]
    return page, (page[-1].id if len(rows) > limit else None)


def _check_resolution(text_value: str) -> str:
    value = text_value.strip()
    if not value:
        raise ValidationError("reason", "is required: say why")
    if len(value) > RESOLUTION_CHARS_MAX:
        raise ValidationError("reason", f"is longer than {RESOLUTION_CHARS_MAX} characters")
    return value


async def close_discrepancy(
    conn: AsyncConnection,
    discrepancy_id: int,
    status: str,
    actor: str,
    resolution: str,
    now: datetime,
) -> Discrepancy:
    """Resolve or dismiss an open discrepancy (once)."""
    assert status in ("resolved", "dismissed"), status
    resolution = _check_resolution(resolution)
    current = await get_discrepancy(conn, discrepancy_id, for_update=True)
    if not current.open:
        raise DiscrepancyClosedError(f"discrepancy {discrepancy_id} is already {current.status}")
    await conn.execute(
        text(
            "UPDATE discrepancies SET status = :status, resolved_at = :now, updated_at = :now,"
            " resolved_by = :actor, resolution = :resolution WHERE id = :id"
        ),
        {
            "id": discrepancy_id,
            "status": status,
            "now": now,
            "actor": actor[:200],
            "resolution": resolution,
        },
    )
    return await get_discrepancy(conn, discrepancy_id)


async def note_request(
    conn: AsyncConnection,
    discrepancy_id: int,
    request: dict[str, Any],
    now: datetime,
) -> None:
    """Remember on the discrepancy what was requested for it (approval id,
    action, who), newest last."""
    await conn.execute(
        text(
            "UPDATE discrepancies SET updated_at = :now,"
            " detail = jsonb_set(detail, '{requests}',"
            " coalesce(detail -> 'requests', '[]'::jsonb) || CAST(:request AS jsonb))"
            " WHERE id = :id"
        ),
        {"id": discrepancy_id, "now": now, "request": _json(request)},
    )


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


async def open_counts(conn: AsyncConnection) -> dict[tuple[str, str], int]:
    """Open discrepancies by (bank, kind), for the gauge."""
    rows = (
        await conn.execute(
            text(
                "SELECT bank, kind, count(*) AS n FROM discrepancies WHERE status = 'open'"
                " GROUP BY bank, kind"
            )
        )
    ).all()
    return {(r.bank, r.kind): int(r.n) for r in rows}
