"""Checks of the payments a statement should have: payments missing at the
bank, payments in doubt for too long, and closing the discrepancies that
resolved themselves. They read the payments, not the statement's lines
(only to know what the bank has): a load runs them after its lines are
written, and finishing a run closes what resolved itself again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.business_time import business_day_start
from ledger.reconciliation.runs import Run
from ledger.reconciliation.sql_template import EMPTY, Sql, fill, identifier

SYSTEM_ACTOR: Final = "system:reconciliation"


@dataclass(frozen=True)
class MatchPolicy:
    """Time-based checks of a run (the rules themselves are data)."""

    # A payment debited at least this long ago with no line is missing at
    # the bank (the bank may book a little later than we do).
    missing_grace_seconds: float = 1800.0
    # A payment still in doubt after this long opens a discrepancy.
    in_doubt_seconds: float = 3600.0


# ``not_staged`` and ``per_row`` say which payments of the day are looked up
# among the bank's lines, and how (below).
_MISSING_AT_BANK_TEMPLATE: Final = """
INSERT INTO discrepancies (reconciliation_id, bank, statement_date, kind, payment_id, fine_id,
                           amount_vnd, detail, created_at, updated_at)
SELECT :rid, :bank, :statement_date, 'missing_at_bank', p.id, p.fine_id, p.amount_vnd,
       jsonb_build_object('bank_ref', p.bank_ref, 'debited_at', p.debited_at,
                          'status', p.status, 'channel', p.channel),
       :now, :now
  FROM (SELECT p.* FROM payments p
         WHERE p.bank = :bank AND p.status IN ('succeeded', 'refunded')
           AND p.debited_at >= :day_start AND p.debited_at < :cutoff
           {not_staged}) AS p
 WHERE NOT EXISTS (
        SELECT 1 FROM statement_lines l
         WHERE l.bank = p.bank AND l.bank_ref = p.bank_ref AND NOT l.uploaded
        {per_row})
ON CONFLICT (kind, payment_id) WHERE statement_line_id IS NULL DO NOTHING
"""
# Right after a load, most payments of the day are on the statement just
# loaded: one hash join with its staging table drops them, and only the rest
# are looked up among all the bank's lines, one index lookup each (the
# ``OFFSET 0`` fences keep that order: never a hash of every line the bank
# ever had, nor a lookup per payment of the day).
_MISSING_NOT_STAGED: Final = (
    "AND NOT EXISTS (SELECT 1 FROM {table} s WHERE s.bank_ref = p.bank_ref) OFFSET 0"
)
_PER_ROW: Final = Sql("OFFSET 0")
# After the split path's decision (2b): only the payments it found unstaged
# are looked up among the bank's lines.
_MISSING_UNSTAGED_SQL: Final = fill(
    _MISSING_AT_BANK_TEMPLATE,
    not_staged=Sql("AND p.id = ANY(CAST(:unstaged AS uuid[])) OFFSET 0"),
    per_row=_PER_ROW,
)
# No statement staged in this transaction (the import was loaded before):
# every payment of the day is looked up.
_MISSING_ANY_SQL: Final = fill(_MISSING_AT_BANK_TEMPLATE, not_staged=EMPTY, per_row=EMPTY)


_IN_DOUBT_SQL: Final = """
INSERT INTO discrepancies (reconciliation_id, bank, statement_date, kind, payment_id, fine_id,
                           amount_vnd, detail, created_at, updated_at)
SELECT :rid, :bank, :statement_date, 'in_doubt_too_long', p.id, p.fine_id, p.amount_vnd,
       jsonb_build_object('status', p.status, 'since', p.created_at, 'channel', p.channel),
       :now, :now
  FROM payments p
 WHERE p.bank = :bank AND p.status IN ('initiated', 'verifying') AND p.created_at < :before
   AND NOT EXISTS (
        SELECT 1 FROM statement_lines l
         WHERE l.bank = :bank AND l.action IS NOT NULL AND l.action_done_at IS NULL
           AND l.payment_id = p.id)
ON CONFLICT (kind, payment_id) WHERE statement_line_id IS NULL DO NOTHING
"""

# Only the bank's own lines show what the bank has: an uploaded line (a
# claim) neither hides a missing debit nor closes its discrepancy, and a
# claim's discrepancy is closed once the bank's own statement has a line
# under its reference (that line is the one that acts). ``NOT l.uploaded``
# is the predicate of the unique index on the bank's lines: the same lookups.
#
# Per open discrepancy, a lookup or two by index, and no join: each EXISTS
# is a subplan of its own (``OFFSET 0``) run with the discrepancy's ids as
# parameters, and the reference it looks for is a scalar subquery on those
# ids alone (an InitPlan of the subplan), so the line or payment under that
# reference can only be found by its unique index's key, whatever the
# statistics say. With a join inside the EXISTS, the planner may merge-join
# the one payment against a whole-index scan of ``statement_lines`` when it
# believes that table empty, as it does after a VACUUM that ran while a
# load's rows were still uncommitted (no tuples over its pages): a million
# lines read per discrepancy, twenty thousand discrepancies, hours.
AUTO_RESOLVE_SQL: Final = """
UPDATE discrepancies d
   SET status = 'resolved', resolved_at = :now, updated_at = :now,
       resolved_by = :actor,
       resolution = CASE d.kind
           WHEN 'missing_at_bank' THEN 'the bank''s statement now has the debit'
           WHEN 'in_doubt_too_long' THEN 'the payment is no longer in doubt'
           WHEN 'unconfirmed' THEN 'the bank''s own statement has this reference: its line'
                                   || ' is the one that counts'
           ELSE 'the duplicate debit was refunded automatically' END
 WHERE d.bank = :bank AND d.status = 'open' AND (
       (d.kind = 'missing_at_bank' AND EXISTS (
            SELECT 1 FROM statement_lines l
             WHERE l.bank = d.bank AND NOT l.uploaded
               AND l.bank_ref = (SELECT p.bank_ref FROM payments p
                                  WHERE p.id = d.payment_id AND p.bank = d.bank)
            OFFSET 0))
    OR (d.kind = 'unconfirmed' AND EXISTS (
            SELECT 1 FROM statement_lines l
             WHERE l.bank = d.bank AND NOT l.uploaded
               AND l.bank_ref = (SELECT c.bank_ref FROM statement_lines c
                                  WHERE c.id = d.statement_line_id AND c.bank = d.bank)
            OFFSET 0))
    OR (d.kind = 'in_doubt_too_long' AND EXISTS (
            SELECT 1 FROM payments p
             WHERE p.id = d.payment_id AND p.status NOT IN ('initiated', 'verifying')
            OFFSET 0))
    OR (d.kind = 'duplicate' AND EXISTS (
            SELECT 1 FROM payments q
             WHERE q.bank = d.bank AND q.status = 'refunded'
               AND q.bank_ref = (SELECT l.bank_ref FROM statement_lines l
                                  WHERE l.id = d.statement_line_id AND l.bank = d.bank)
            OFFSET 0)))
"""


async def auto_resolve(conn: AsyncConnection, bank: str, now: datetime) -> int:
    """Close what resolved itself: a missing debit that arrived, a payment no
    longer in doubt, a duplicate refunded automatically."""
    result = await conn.execute(
        text(AUTO_RESOLVE_SQL), {"bank": bank, "now": now, "actor": SYSTEM_ACTOR}
    )
    return int(result.rowcount or 0)


def missing_window(run: Run, now: datetime, policy: MatchPolicy) -> tuple[datetime, datetime]:
    """The debits a statement should hold: its day, up to the grace period."""
    day_start = business_day_start(run.statement_date)
    day_end = day_start + timedelta(days=1)
    return day_start, min(day_end, now - timedelta(seconds=policy.missing_grace_seconds))


async def missing_at_bank(
    conn: AsyncConnection,
    run: Run,
    now: datetime,
    policy: MatchPolicy,
    *,
    staged: str | None = None,
    unstaged: Sequence[UUID] | None = None,
) -> int:
    """Open a discrepancy for each payment of the statement's day the bank
    has no line for (``staged``: the table of the statement just staged;
    ``unstaged``: the payments the split path's decision left)."""
    day_start, cutoff = missing_window(run, now, policy)
    if cutoff <= day_start:
        return 0
    if unstaged is not None:
        sql = _MISSING_UNSTAGED_SQL
    elif staged:
        not_staged = Sql(fill(_MISSING_NOT_STAGED, table=identifier(staged)))
        sql = fill(_MISSING_AT_BANK_TEMPLATE, not_staged=not_staged, per_row=_PER_ROW)
    else:
        sql = _MISSING_ANY_SQL
    result = await conn.execute(
        text(sql),
        {
            "rid": run.id,
            "bank": run.bank,
            "statement_date": run.statement_date,
            "now": now,
            "day_start": day_start,
            "cutoff": cutoff,
            "unstaged": list(unstaged or ()),
        },
    )
    return int(result.rowcount or 0)


async def in_doubt(conn: AsyncConnection, run: Run, now: datetime, policy: MatchPolicy) -> int:
    """Open a discrepancy for each payment in doubt for too long (after the
    statement's lines are written: a line that heals one is its answer)."""
    in_doubt = await conn.execute(
        text(_IN_DOUBT_SQL),
        {
            "rid": run.id,
            "bank": run.bank,
            "statement_date": run.statement_date,
            "now": now,
            "before": now - timedelta(seconds=policy.in_doubt_seconds),
        },
    )
    return int(in_doubt.rowcount or 0)
