"""Money nobody booked, posted to the suspense account: one entry per bank
reference, in small batches after the load, each its own transaction. Not
part of the load's transaction (see the comment on the batch), so not part
of its modules' flow either."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.keys import suspense_key_sql
from ledger.core.postings import bank_clearing_account
from ledger.reconciliation.sql_template import Sql, fill

# Money nobody booked goes to suspense, one entry per bank reference (the key
# ``suspense:<bank>:<bank_ref>`` is shared with disputes, so whoever books it
# first books it once). Posted in small batches, each its own transaction,
# after the lines are written: every entry updates the clearing and suspense
# balance rows, and thousands of updates of one row in one transaction slow
# down with each other (and would hold the bank's clearing balance locked
# against payments settling meanwhile).
_SUSPENSE_BATCH_TEMPLATE: Final = """
WITH todo AS (
    SELECT l.id, l.bank_ref, l.direction,
           CASE WHEN l.direction = 'credit' THEN l.amount_vnd ELSE -l.amount_vnd END AS clearing_vnd
      FROM statement_lines l
     WHERE l.bank = :bank AND l.in_suspense AND l.suspense_entry_id IS NULL
     ORDER BY l.id
     LIMIT :limit
       FOR UPDATE SKIP LOCKED
), entries AS (
    INSERT INTO journal_entries (idempotency_key, kind, description, content_hash, metadata)
    SELECT {suspense_key}, 'suspense',
           'unidentified ' || t.direction || ' ' || t.bank_ref || ' on the ' || :bank
               || ' statement',
           {content_hash},
           jsonb_build_object('statement_line_id', t.id, 'bank', :bank, 'bank_ref', t.bank_ref)
      FROM todo t
     ORDER BY t.id
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, idempotency_key
), posted AS (
    INSERT INTO postings (entry_id, account_id, amount_vnd)
    SELECT e.id, a.id, v.amount_vnd
      FROM entries e
      JOIN todo t ON e.idempotency_key = {suspense_key}
      CROSS JOIN LATERAL (VALUES (CAST(:clearing AS text), t.clearing_vnd),
                                 ('suspense', -t.clearing_vnd)) AS v(code, amount_vnd)
      JOIN accounts a ON a.code = v.code
     ORDER BY a.id
    RETURNING entry_id
), marked AS (
    -- An entry booked before (by a dispute) is the line's entry too.
    UPDATE statement_lines l SET suspense_entry_id = k.entry_id
      FROM (SELECT t.id,
                   coalesce(e.id, (SELECT je.id FROM journal_entries je
                                    WHERE je.idempotency_key
                                          = {suspense_key}))
                       AS entry_id
              FROM todo t
              LEFT JOIN entries e
                     ON e.idempotency_key = {suspense_key}) AS k
     WHERE l.id = k.id AND k.entry_id IS NOT NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM todo) AS lines, (SELECT count(DISTINCT entry_id) FROM posted)
       AS entries, (SELECT count(*) FROM marked) AS marked
"""


def suspense_entry_hash_sql(clearing: str, clearing_vnd: str) -> str:
    """``EntryRequest.content_hash()`` (``ledger.core.postings``) of the
    suspense entry of a line, as a SQL expression over two bind parameters
    or columns: the clearing account's code and the amount it is debited.

    The entry's postings are that amount on the clearing account and its
    opposite on ``suspense``; the Python hash sorts postings by account code,
    and a clearing account's code (``bank:<bank>:clearing``) sorts before
    ``suspense``, so the order here is fixed. ``"\\:null"``: a literal colon
    for SQLAlchemy's ``text()``, not a bind parameter. Tested against the
    Python hash by ``tests/integration/ledger/test_content_hash_sql.py``."""
    _operands(clearing, clearing_vnd)
    return (
        "encode(sha256(convert_to(format(\n"
        """    '{"kind":"suspense","postings":[[%s,%s],["suspense",%s]],"""
        """"reverses"\\:null}',\n"""
        # bigint: a bound -32768 arrives as a smallint, whose negation overflows.
        f"    to_json(CAST({clearing} AS text))::text, CAST({clearing_vnd} AS bigint),"
        f" -CAST({clearing_vnd} AS bigint)),\n"
        "    'UTF8')), 'hex')"
    )


# What ``suspense_entry_hash_sql`` accepts: a bind parameter or a column.
_OPERAND: Final = re.compile(r":[a-z_][a-z0-9_]*|[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?")


def _operands(*sql: str) -> None:
    for operand in sql:
        assert _OPERAND.fullmatch(operand), f"not a bind parameter or column: {operand!r}"


_SUSPENSE_BATCH_SQL: Final = fill(
    _SUSPENSE_BATCH_TEMPLATE,
    suspense_key=Sql(suspense_key_sql(":bank", "t.bank_ref")),
    content_hash=Sql(suspense_entry_hash_sql(":clearing", "t.clearing_vnd")),
)
SUSPENSE_BATCH_MAX: Final = 1_000


@dataclass(frozen=True)
class SuspenseBatch:
    lines: int  # lines taken
    entries: int  # entries posted now (the others were booked before)


async def post_suspense_batch(conn: AsyncConnection, bank: str, limit: int = 500) -> SuspenseBatch:
    """Post the suspense entries of up to ``limit`` lines of ``bank`` waiting
    for theirs; call in a loop (one transaction each) until ``lines`` is 0."""
    assert 1 <= limit <= SUSPENSE_BATCH_MAX
    row = (
        await conn.execute(
            text(_SUSPENSE_BATCH_SQL),
            {"bank": bank, "clearing": bank_clearing_account(bank), "limit": limit},
        )
    ).one()
    return SuspenseBatch(lines=int(row.lines), entries=int(row.entries))
