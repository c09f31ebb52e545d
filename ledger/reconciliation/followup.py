"""After a statement is matched: the saga steps its lines still need (healing
and refunding are done by workflows; this module says which, and records that
they were done), the run's totals, and the report rows.

Every function runs in the caller's transaction; nothing commits here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final
from uuid import UUID

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t
from ledger.core.rows import row_mapper
from ledger.reconciliation.payment_checks import auto_resolve
from ledger.reconciliation.runs import RUN_COUNT_COLUMNS, Run, get_run

ACTION_PHASES: Final = ("heal", "duplicate")
ACTION_BATCH_MAX: Final = 1_000
ACTION_ERROR_CHARS_MAX: Final = 500
# A line whose saga step failed this often is left to finance (its
# discrepancy, or the run's actions_pending count, shows it).
ACTION_ATTEMPTS_MAX: Final = 20


@dataclass(frozen=True)
class PendingAction:
    """One saga step a line needs, with what the step needs to know."""

    line_id: int
    bank: str
    bank_ref: str
    amount_vnd: int
    counterparty: str
    line_class: str
    action: str  # "signal" | "external_debit"
    payment_id: UUID | None
    payment_status: str | None
    payment_bank_ref: str | None
    fine_id: int
    decision_key: str
    fine_paid: bool
    booked: bool  # a payment already carries this bank reference


# The columns are named as PendingAction's fields.
_PENDING_SQL: Final = """
SELECT l.id AS line_id, l.bank, l.bank_ref, l.amount_vnd, l.counterparty,
       l.class AS line_class, l.action,
       l.payment_id, p.status AS payment_status, p.bank_ref AS payment_bank_ref,
       l.fine_id, f.decision_key,
       EXISTS (SELECT 1 FROM payments s WHERE s.fine_id = l.fine_id AND s.settles_fine)
           AS fine_paid,
       EXISTS (SELECT 1 FROM payments q WHERE q.bank = l.bank AND q.bank_ref = l.bank_ref)
           AS booked
  FROM statement_lines l
  JOIN fines f ON f.id = l.fine_id
  LEFT JOIN payments p ON p.id = l.payment_id
 WHERE l.bank = :bank AND l.action IS NOT NULL AND l.action_done_at IS NULL
   AND l.action_attempts < :attempts_max
   AND l.class = :class
   AND (:class = 'healed'
        OR EXISTS (SELECT 1 FROM payments s WHERE s.fine_id = l.fine_id AND s.settles_fine))
 ORDER BY l.id
 LIMIT :limit
"""

_PENDING_COUNT_SQL: Final = """
SELECT count(*) FROM statement_lines l
 WHERE l.bank = :bank AND l.action IS NOT NULL AND l.action_done_at IS NULL
   AND l.action_attempts < :attempts_max AND l.class = :class
"""


_pending_action: Final[Callable[[Any], PendingAction]] = row_mapper(PendingAction)


def _phase_class(phase: str) -> str:
    assert phase in ACTION_PHASES, phase
    return "healed" if phase == "heal" else "duplicate"


async def pending_actions(
    conn: AsyncConnection, bank: str, phase: str, limit: int
) -> list[PendingAction]:
    """The next saga steps of ``phase``: ``heal`` (lines that pay a fine), then
    ``duplicate`` (further debits, taken only once their fine is paid, so the
    healing line is the one that gets the receipt)."""
    assert 1 <= limit <= ACTION_BATCH_MAX
    rows = (
        await conn.execute(
            text(_PENDING_SQL),
            {
                "bank": bank,
                "class": _phase_class(phase),
                "limit": limit,
                "attempts_max": ACTION_ATTEMPTS_MAX,
            },
        )
    ).all()
    return [_pending_action(row) for row in rows]


async def count_pending(conn: AsyncConnection, bank: str, phase: str) -> int:
    """Steps of ``phase`` not done yet (those waiting for their fine too)."""
    return int(
        (
            await conn.execute(
                text(_PENDING_COUNT_SQL),
                {"bank": bank, "class": _phase_class(phase), "attempts_max": ACTION_ATTEMPTS_MAX},
            )
        ).scalar_one()
    )


_lines: Final = t.statement_lines
# A step not yet done is tried again (each try counted).
_UNDONE_ACTION: Final = update(_lines).where(_lines.c.action_done_at.is_(None))


async def mark_actions_done(conn: AsyncConnection, line_ids: Sequence[int], now: datetime) -> int:
    if not line_ids:
        return 0
    result = await conn.execute(
        _UNDONE_ACTION.where(_lines.c.id.in_(list(line_ids))).values(
            action_done_at=now, action_error=None, action_attempts=_lines.c.action_attempts + 1
        )
    )
    return int(result.rowcount or 0)


async def record_action_failure(conn: AsyncConnection, line_id: int, error: str) -> None:
    await conn.execute(
        _UNDONE_ACTION.where(_lines.c.id == line_id).values(
            action_attempts=_lines.c.action_attempts + 1,
            action_error=error[:ACTION_ERROR_CHARS_MAX],
        )
    )


# --- the run's totals ---------------------------------------------------------------

_LINE_COUNTS_SQL: Final = """
SELECT count(*) AS lines,
       count(*) FILTER (WHERE reconciliation_id = :rid) AS new_lines,
       count(*) FILTER (WHERE class = 'matched') AS matched,
       count(*) FILTER (WHERE class = 'healed') AS healed,
       count(*) FILTER (WHERE class = 'duplicate') AS duplicates,
       count(*) FILTER (WHERE class = 'amount_mismatch') AS amount_mismatches,
       count(*) FILTER (WHERE class = 'unknown') AS unknown,
       count(*) FILTER (WHERE action IS NOT NULL AND action_done_at IS NULL) AS actions_pending,
       count(*) FILTER (WHERE class = 'unconfirmed') AS unconfirmed,
       coalesce(sum(amount_vnd) FILTER (WHERE direction = 'credit'), 0) AS credit_total_vnd,
       coalesce(sum(amount_vnd) FILTER (WHERE direction = 'debit'), 0) AS debit_total_vnd
  FROM statement_lines
 WHERE bank = :bank AND statement_date = :day
"""

_DISCREPANCY_COUNTS_SQL: Final = """
SELECT count(*) FILTER (WHERE kind = 'missing_at_bank') AS missing_at_bank,
       count(*) FILTER (WHERE kind = 'in_doubt_too_long') AS in_doubt_too_long,
       count(*) AS discrepancies,
       count(*) FILTER (WHERE status = 'open') AS discrepancies_open
  FROM discrepancies
 WHERE bank = :bank AND statement_date = :day
"""


async def run_counts(conn: AsyncConnection, run: Run) -> dict[str, int]:
    """Totals of the run's statement date: every line of that date for the
    bank (whichever run loaded it) and its discrepancies."""
    params = {"rid": run.id, "bank": run.bank, "day": run.statement_date}
    lines = (await conn.execute(text(_LINE_COUNTS_SQL), params)).one()
    found = (await conn.execute(text(_DISCREPANCY_COUNTS_SQL), params)).one()
    counts = {**dict(lines._mapping), **dict(found._mapping)}
    return {name: int(counts[name]) for name in RUN_COUNT_COLUMNS}


async def finish_run(conn: AsyncConnection, run_id: int, now: datetime) -> Run:
    """Close what resolved itself, store the totals, mark the run completed."""
    run = await get_run(conn, run_id, for_update=True)
    await auto_resolve(conn, run.bank, now)
    counts = await run_counts(conn, run)
    await conn.execute(
        update(t.reconciliations)
        .where(t.reconciliations.c.id == run_id)
        .values(**counts, status="completed", finished_at=now, error=None)
    )
    return await get_run(conn, run_id)


# --- report ----------------------------------------------------------------------------

REPORT_COLUMNS: Final = (
    "record",
    "bank",
    "statement_date",
    "source_line",
    "bank_ref",
    "booked_at",
    "direction",
    "amount_vnd",
    "class",
    "rule",
    "decision_number",
    "payment_id",
    "counterparty",
    "content",
    "action",
    "action_done",
    "in_suspense",
    "discrepancy_id",
    "discrepancy_kind",
    "discrepancy_status",
)

_REPORT_LINES_SQL: Final = """
SELECT 'line' AS record, l.bank, l.statement_date, l.source_line, l.bank_ref, l.booked_at,
       l.direction, l.amount_vnd, l.class, l.rule, f.decision_number, l.payment_id,
       l.counterparty, l.content, l.action, l.action_done_at IS NOT NULL AS action_done,
       l.in_suspense, d.id AS discrepancy_id, d.kind AS discrepancy_kind,
       d.status AS discrepancy_status
  FROM statement_lines l
  LEFT JOIN fines f ON f.id = l.fine_id
  LEFT JOIN discrepancies d ON d.statement_line_id = l.id
 WHERE l.bank = :bank AND l.statement_date = :day
 ORDER BY l.source_line, l.id
 LIMIT :limit
"""

_REPORT_PAYMENTS_SQL: Final = """
SELECT 'payment' AS record, d.bank, d.statement_date, NULL::integer AS source_line,
       p.bank_ref, p.debited_at AS booked_at, 'credit' AS direction, d.amount_vnd,
       NULL::text AS class, NULL::text AS rule, f.decision_number, d.payment_id,
       p.payer_account AS counterparty, '' AS content, NULL::text AS action,
       false AS action_done, false AS in_suspense, d.id AS discrepancy_id,
       d.kind AS discrepancy_kind, d.status AS discrepancy_status
  FROM discrepancies d
  JOIN payments p ON p.id = d.payment_id
  JOIN fines f ON f.id = p.fine_id
 WHERE d.bank = :bank AND d.statement_date = :day AND d.statement_line_id IS NULL
 ORDER BY d.id
 LIMIT :limit
"""


async def report_rows(
    conn: AsyncConnection, bank: str, day: date, limit: int
) -> AsyncIterator[dict[str, Any]]:
    """Every line of the date (streamed, at most ``limit``), then the
    payments with no line (missing at the bank, in doubt too long)."""
    params = {"bank": bank, "day": day, "limit": limit}
    for sql in (_REPORT_LINES_SQL, _REPORT_PAYMENTS_SQL):
        result = await conn.stream(text(sql), params)
        async for row in result.mappings():
            yield dict(row)


@dataclass(frozen=True)
class RunReport:
    run: Run
    by_class: dict[str, tuple[int, int]]  # class → (lines, amount)
    by_discrepancy: dict[str, tuple[int, int]]  # kind → (open, all)


async def run_report(conn: AsyncConnection, run_id: int) -> RunReport:
    """The summary of a run for the PDF report."""
    run = await get_run(conn, run_id)
    classes = (
        await conn.execute(
            text(
                "SELECT class, count(*) AS n, coalesce(sum(amount_vnd), 0) AS amount"
                " FROM statement_lines WHERE bank = :bank AND statement_date = :day"
                " GROUP BY class"
            ),
            {"bank": run.bank, "day": run.statement_date},
        )
    ).all()
    kinds = (
        await conn.execute(
            text(
                "SELECT kind, count(*) FILTER (WHERE status = 'open') AS open, count(*) AS n"
                " FROM discrepancies WHERE bank = :bank AND statement_date = :day GROUP BY kind"
            ),
            {"bank": run.bank, "day": run.statement_date},
        )
    ).all()
    return RunReport(
        run=run,
        by_class={r[0]: (int(r.n), int(r.amount)) for r in classes},
        by_discrepancy={r.kind: (int(r.open), int(r.n)) for r in kinds},
    )


_REPORT_DISCREPANCIES_SQL: Final = """
SELECT d.id AS discrepancy_id, d.kind AS discrepancy_kind, d.status AS discrepancy_status,
       d.amount_vnd, coalesce(l.bank_ref, p.bank_ref) AS bank_ref,
       coalesce(l.booked_at, p.debited_at, d.created_at) AS booked_at,
       f.decision_number, coalesce(l.content, '') AS content
  FROM discrepancies d
  LEFT JOIN statement_lines l ON l.id = d.statement_line_id
  LEFT JOIN payments p ON p.id = d.payment_id
  LEFT JOIN fines f ON f.id = d.fine_id
 WHERE d.bank = :bank AND d.statement_date = :day
 ORDER BY d.id
 LIMIT :limit
"""


async def discrepancy_rows(
    conn: AsyncConnection, bank: str, day: date, limit: int
) -> list[dict[str, Any]]:
    """The discrepancies of a statement date, oldest first, at most ``limit``."""
    rows = await conn.execute(
        text(_REPORT_DISCREPANCIES_SQL), {"bank": bank, "day": day, "limit": limit}
    )
    return [dict(r) for r in rows.mappings()]
