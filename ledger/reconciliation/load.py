"""Statement reconciliation in the books: imports, runs, loading with COPY,
set-based matching and classification, suspense postings and discrepancies.

A statement is loaded with binary ``COPY`` into a temporary staging table;
lines already known (by bank reference) are dropped, so re-importing changes
nothing. The rest is matched and classified by a few SQL statements over the
whole statement (hash joins, per-line index lookups only where few lines need
them; no loop per line), and every line is written to ``statement_lines``
once, already classified. Lines that book a payment we already settled (most
of a statement) are written first, straight from one join, by the statement
that sets the other lines aside; only those go through the other steps.

How a line is identified (``recon_match_rules``: which rules run, in which
order, with which amount tolerance, per bank):

* ``bank_ref``: a payment already booked with this bank reference (webhook,
  status check, earlier run), or an external debit recorded for it;
* ``end_to_end``: our idempotency key echoed by the bank (camt.053);
* ``payment_reference``: our ``TF…`` reference found in the content (VietQR);
* ``decision_number``: a registered decision number in the content,
  compared as upper-case letters and digits (diacritics and punctuation
  stripped), also when the bank cut it short at the end (at least
  ``truncated_chars_min`` characters), the fine's amount breaking ties;
* ``refund_ref`` (money out): one of our refunds.

What it is (exactly one class per line):

* ``matched``: a payment booked with this bank reference that settles its
  fine (or, money out, our refund) for the same amount;
* ``healed``: the bank has the money and we have no succeeded payment for the
  fine: a saga step books it and issues the receipt (``action``: signal the
  payment's workflow, or start an external-debit workflow);
* ``duplicate``: another debit for a fine that is (or is being) paid: an exact
  one is recorded and refunded by the external-debit workflow, anything else
  goes to finance;
* ``amount_mismatch``: identified, but the amount differs beyond tolerance;
* ``unknown``: nothing identifies it.

Every line that is neither matched nor healed opens one discrepancy. Money the
ledger has not booked and no saga step will book (unknown, mismatched,
non-exact duplicates) is marked ``in_suspense`` and booked to the suspense
account by ``post_suspense_batch`` (one entry per bank reference, in small
transactions after the load), so the bank clearing account moves with the
statement. Payments the statement date should have and the bank has no line
for open ``missing_at_bank``; payments in doubt too long ``in_doubt_too_long``.

``load_and_match`` runs in the caller's transaction (the caller commits),
under a per-bank advisory lock so two runs for one bank never interleave.
For a big statement (``PARALLEL_LINES_MIN``) only the lines' keys are staged;
one statement decides which lines are plain booked payments, the caller's
connection writes those by COPY, and a second connection from the same
engine classifies and writes the others, in its own transaction, committed
before the caller's; a re-run completes an import whose main transaction
failed after that (``_DROP_KNOWN_SQL``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import struct
import time as time_module
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final, Protocol
from uuid import UUID

from psycopg import pq
from psycopg._copy_base import format_row_binary
from psycopg.abc import Transformer as TransformerLike
from psycopg.adapt import Transformer
from psycopg.errors import UniqueViolation
from psycopg.rows import namedtuple_row
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from domain.business_time import VIETNAM_TZ, business_day_start
from domain.content import REFERENCE_PREFIX, content_key, first_payment_reference
from ledger.core.errors import ConflictError, NotFoundError, ValidationError
from ledger.core.postings import bank_clearing_account, ensure_account

LINE_CLASSES: Final = ("matched", "healed", "duplicate", "amount_mismatch", "unknown")
DISCREPANCY_KINDS: Final = (
    "duplicate",
    "missing_at_bank",
    "amount_mismatch",
    "unknown",
    "in_doubt_too_long",
)
RULES: Final = ("bank_ref", "end_to_end", "payment_reference", "decision_number", "refund_ref")
RUN_STATUSES: Final = ("running", "completed", "failed")
SOURCES: Final = ("fetch", "upload")
TRIGGERS: Final = ("schedule", "api", "cli", "upload")
FORMATS: Final = ("camt053", "mt940", "csv")
SUSPENSE_ACCOUNT: Final = "suspense"
DECISION_WINDOW_CHARS: Final = 6  # the index fines_decision_anchor is on left(.., 6)
TEMP_BUFFERS: Final = "256MB"
ERROR_CHARS_MAX: Final = 2_000
LINES_PER_STATEMENT_MAX: Final = 1_000_000
SYSTEM_ACTOR: Final = "system:reconciliation"

# --- statement lines as the loader takes them -------------------------------


class LineLike(Protocol):
    """What the loader reads of a statement line (``bank_adapters.types.
    StatementLine`` fits; the ledger does not import it)."""

    @property
    def bank_ref(self) -> str: ...
    @property
    def booked_at(self) -> datetime: ...
    @property
    def amount_vnd(self) -> int: ...
    @property
    def direction(self) -> str: ...  # "credit" (money in) | "debit"
    @property
    def counterparty(self) -> str: ...
    @property
    def content(self) -> str: ...
    @property
    def raw(self) -> str: ...
    @property
    def end_to_end_ref(self) -> str | None: ...
    @property
    def source_line(self) -> int: ...


def _text(value: str) -> str:
    """A text value PostgreSQL can hold (NUL it cannot, so it is replaced)."""
    return value.replace("\x00", "\ufffd") if "\x00" in value else value


# Binary COPY: psycopg packs a tuple per line in C, with no escaping or
# number formatting in Python (the text format cost twice as much per line).
STAGING_TYPES: Final = (
    "int4",  # pos
    "text",  # bank_ref
    "timestamptz",  # booked_at
    "int8",  # amount_vnd
    "bool",  # credit
    "text",  # counterparty
    "text",  # content
    "text",  # content_key
    "text",  # content_ref
    "text",  # end_to_end_ref
    "text",  # raw
    "int4",  # source_line
)


def own_values(line: LineLike) -> tuple[Any, ...]:
    """A line's own stored values (``OWN_TYPES``), with the content's match
    keys and no NUL."""
    bank_ref, counterparty, content, raw = line.bank_ref, line.counterparty, line.content, line.raw
    e2e = line.end_to_end_ref or None
    # One test for the usual line (a call per field costs more than the rest).
    if "\x00" in f"{bank_ref}{counterparty}{content}{raw}{e2e}":
        bank_ref, counterparty, content, raw = map(_text, (bank_ref, counterparty, content, raw))
        e2e = _text(e2e) if e2e else None
    key = content_key(content)
    return (
        bank_ref,
        line.booked_at,
        line.amount_vnd,
        counterparty,
        content,
        key,
        first_payment_reference(key) if REFERENCE_PREFIX in key else None,
        e2e,
        raw,
        line.source_line,
    )


def staging_row(pos: int, line: LineLike) -> tuple[Any, ...]:
    """One staging row (``STAGING_TYPES``), with the content's match keys."""
    v = own_values(line)
    return (pos, *v[:3], line.direction == "credit", *v[3:])


_STAGING_DDL: Final = """
CREATE TEMP TABLE recon_staging (
    pos             integer NOT NULL,
    bank_ref        text NOT NULL,
    booked_at       timestamptz NOT NULL,
    amount_vnd      bigint NOT NULL,
    credit          boolean NOT NULL,
    counterparty    text NOT NULL,
    content         text NOT NULL,
    content_key     text NOT NULL,
    content_ref     text,
    end_to_end_ref  text,
    raw             text NOT NULL,
    source_line     integer NOT NULL
) ON COMMIT DROP
"""
STAGING_COLUMNS: Final = (
    "pos, bank_ref, booked_at, amount_vnd, credit, counterparty, content, content_key,"
    " content_ref, end_to_end_ref, raw, source_line"
)
_COPY_SQL: Final = f"COPY recon_staging ({STAGING_COLUMNS}) FROM STDIN (FORMAT binary)"


async def _copy_into_staging(conn: AsyncConnection, lines: Sequence[LineLike]) -> int:
    """COPY the lines into the session's staging table; returns their count."""
    _check_lines(lines)
    # Temporary tables live in the session's own buffers (8 MB unless set
    # before the session's first temporary table): a big statement would
    # spill them to disk at every step.
    await conn.execute(text(f"SET LOCAL temp_buffers = '{TEMP_BUFFERS}'"))
    await conn.execute(text(_STAGING_DDL))
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection  # psycopg.AsyncConnection, same transaction
    async with driver.cursor() as cursor, cursor.copy(_COPY_SQL) as copy:
        copy.set_types(STAGING_TYPES)
        for pos, line in enumerate(lines):
            # Sends only when psycopg's buffer fills, so PostgreSQL reads
            # the rows while the next ones are packed.
            await copy.write_row(staging_row(pos, line))
    await conn.execute(text("ANALYZE recon_staging"))
    return len(lines)


def _check_lines(lines: Sequence[LineLike]) -> None:
    """Refuse a statement too long, or with a bank reference twice (parsers
    refuse such files; a second booking under one reference would be lost,
    so never load one silently)."""
    if len(lines) > LINES_PER_STATEMENT_MAX:
        raise ValidationError("statement", f"more than {LINES_PER_STATEMENT_MAX} lines")
    seen: set[str] = set()
    for line in lines:
        if line.bank_ref in seen:
            raise ValidationError("statement", f"bank reference {line.bank_ref!r} appears twice")
        seen.add(line.bank_ref)


# --- rules --------------------------------------------------------------------


@dataclass(frozen=True)
class MatchRule:
    rule: str
    bank: str  # "*" or the bank whose row overrides it
    priority: int
    enabled: bool
    amount_tolerance_vnd: int
    truncated_chars_min: int
    description: str


async def load_rules(conn: AsyncConnection, bank: str) -> dict[str, MatchRule]:
    """The rules in force for ``bank``: its own rows over the ``*`` rows."""
    rows = (
        await conn.execute(
            text(
                "SELECT DISTINCT ON (rule) * FROM recon_match_rules WHERE bank IN ('*', :bank)"
                " ORDER BY rule, bank = '*'"
            ),
            {"bank": bank},
        )
    ).all()
    rules = {
        r.rule: MatchRule(
            rule=r.rule,
            bank=r.bank,
            priority=int(r.priority),
            enabled=bool(r.enabled),
            amount_tolerance_vnd=int(r.amount_tolerance_vnd),
            truncated_chars_min=int(r.truncated_chars_min),
            description=r.description,
        )
        for r in rows
    }
    assert set(rules) <= set(RULES), rules
    return rules


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


async def set_rule(
    conn: AsyncConnection,
    bank: str,
    rule: str,
    *,
    priority: int | None = None,
    enabled: bool | None = None,
    amount_tolerance_vnd: int | None = None,
    truncated_chars_min: int | None = None,
) -> MatchRule:
    """Create or change a bank's override of a rule (unset fields copy the
    ``*`` row)."""
    if rule not in RULES:
        raise ValidationError("rule", f"must be one of {', '.join(RULES)}")
    base = (await load_rules(conn, bank)).get(rule)
    if base is None:
        raise NotFoundError(f"no rule {rule!r}")
    await conn.execute(
        text(
            "INSERT INTO recon_match_rules AS r (bank, rule, priority, enabled,"
            " amount_tolerance_vnd, truncated_chars_min, description)"
            " VALUES (:bank, :rule, :priority, :enabled, :tol, :trunc, :description)"
            " ON CONFLICT (bank, rule) DO UPDATE SET priority = EXCLUDED.priority,"
            " enabled = EXCLUDED.enabled, amount_tolerance_vnd = EXCLUDED.amount_tolerance_vnd,"
            " truncated_chars_min = EXCLUDED.truncated_chars_min, updated_at = now()"
        ),
        {
            "bank": bank,
            "rule": rule,
            "priority": base.priority if priority is None else priority,
            "enabled": base.enabled if enabled is None else enabled,
            "tol": _or(amount_tolerance_vnd, base.amount_tolerance_vnd),
            "trunc": _or(truncated_chars_min, base.truncated_chars_min),
            "description": base.description,
        },
    )
    return (await load_rules(conn, bank))[rule]


# --- the matching statements -------------------------------------------------
#
# A pipeline of temporary tables, each analysed, so the planner sees true
# sizes at every step: a 50-line intraday statement takes index lookups, a
# million-line one hash joins. All of it is set-based.
#
# Most lines of a statement are debits we booked already (webhook, polling):
# their bank reference finds a payment that settles its fine, for the same
# amount. When ``bank_ref`` is the first rule, those lines are written
# straight from the staging table and one join ("fast"); only the others are
# copied out of it (a tenth of a typical statement), and the other rules, the
# decision numbers and the classification read that small table, never the
# whole statement again.

# Per credit rule: the payment it links a line to (over the joins below).
_CREDIT_LINK: Final = {
    "bank_ref": "coalesce(s.ref_payment, px.id)",
    "end_to_end": "pe.id",
    "payment_reference": "pp.id",
}
# Later rules look a line up only if no earlier rule linked it: {unlinked} is
# the condition, so a line already linked costs nothing more. ``OFFSET 0``
# keeps each a per-line index lookup (the planner would otherwise hash every
# payment of the bank for the few lines that need it).
_LATERAL: Final = {
    "end_to_end": (
        "LEFT JOIN LATERAL (SELECT pe.id FROM payments pe WHERE {unlinked}"
        " AND s.end_to_end_ref IS NOT NULL AND pe.debit_key = s.end_to_end_ref"
        " AND pe.bank = :bank OFFSET 0) AS pe ON s.credit"
    ),
    "payment_reference": (
        "LEFT JOIN LATERAL (SELECT pp.id FROM payments pp WHERE {unlinked}"
        " AND s.content_ref IS NOT NULL AND pp.payment_ref = s.content_ref"
        " AND pp.bank = :bank LIMIT 1 OFFSET 0) AS pp ON s.credit"
    ),
}
# Money out: one of our refunds, by the bank's refund reference (booked by
# mark_refunded) or by our refund key echoed back (rf-<payment id>); or a
# refund booked without a payment (a discrepancy's or a dispute's), by its
# entry.
_REFUND_LINK: Final = """CASE WHEN NOT s.credit THEN coalesce(
    (SELECT (rj.metadata ->> 'payment_id')::uuid FROM journal_entries rj
      WHERE rj.kind = 'refund' AND rj.metadata ->> 'refund_ref' = s.bank_ref LIMIT 1),
    (SELECT rk.id FROM payments rk
      WHERE s.end_to_end_ref ~ '^rf-[0-9a-f]{32}$'
        AND rk.id = substr(s.end_to_end_ref, 4)::uuid AND rk.bank = :bank)) END"""
_REFUND_ENTRY: Final = """CASE WHEN NOT s.credit THEN
    (SELECT re.id FROM journal_entries re
      WHERE re.kind = 'refund' AND re.metadata ->> 'refund_ref' = s.bank_ref LIMIT 1) END"""

# 1. Lines already loaded (by bank reference) are not loaded again. A line
# whose import is not marked loaded (this one, or one rolled back) was
# committed by a helper connection whose main transaction then failed (the
# main one marks the import loaded): it is this load's line all the same, so
# it is counted in this load's summary.
_DROP_KNOWN_SQL: Final = """
WITH dropped AS (
    DELETE FROM recon_staging s
     USING statement_lines x
     WHERE x.bank = :bank AND x.bank_ref = s.bank_ref
    RETURNING x.import_id, x.class, x.direction, x.amount_vnd, x.in_suspense
)
SELECT class AS class_, direction, count(*) AS lines, sum(amount_vnd) AS amount_vnd, in_suspense
  FROM dropped
 WHERE NOT EXISTS (SELECT 1 FROM statement_imports i
                    WHERE i.id = dropped.import_id AND i.loaded_at IS NOT NULL)
 GROUP BY class, direction, in_suspense
"""
_DROP_KNOWN_KEYS_SQL: Final = _DROP_KNOWN_SQL.replace("recon_staging", "recon_keys")
# The split path (2b) first looks only among the lines of statements dated
# within a day of this one (the BRIN index on statement_date): a re-import,
# or the end-of-day statement after the intraday ones. Its cost then stays
# that of a day's lines, however many the bank had before (a hash of every
# line the bank ever had cost 3.5 s at five million). A line loaded under
# another date (a bank that books one reference on two days) collides with
# the unique (bank, bank_ref) index; the load then starts again from its
# savepoint and looks among all of the bank's lines (``load_and_match``).
KNOWN_NEAR_DAYS: Final = 1
KNOWN_LINE_CONSTRAINT: Final = "statement_lines_bank_bank_ref_key"
_DROP_KNOWN_NEAR_SQL: Final = _DROP_KNOWN_KEYS_SQL.replace(
    "WHERE x.bank = :bank AND x.bank_ref = s.bank_ref",
    "WHERE x.bank = :bank AND x.bank_ref = s.bank_ref\n"
    "       AND x.statement_date BETWEEN :known_from AND :known_to",
)

# 2. Every line joined to the payment booked with its bank reference. A
# credit that books a payment settling its fine, for the same amount (within
# the rule's tolerance), is "fast": written at once, matched, when
# ``bank_ref`` is the first rule (:fast). Every other line goes to recon_rest,
# with that payment, for the steps below. One statement, so one snapshot
# decides which lines are fast (two would lose or double a line whose payment
# settles in between); two hash joins, as materialising the joined statement
# once for both costs as much and holds it all in memory.
_REST_DDL: Final = """
CREATE TEMP TABLE recon_rest ON COMMIT DROP AS
SELECT *, NULL::uuid AS ref_payment FROM recon_staging WITH NO DATA
"""
_FAST: Final = (
    ":fast AND s.credit AND pr.settles_fine AND abs(s.amount_vnd - pr.amount_vnd) <= :tol_bank_ref"
)
_SPLIT_SQL: Final = f"""
WITH rest AS (
    INSERT INTO recon_rest
    SELECT s.*, pr.id
      FROM recon_staging s
      LEFT JOIN payments pr ON pr.bank = :bank AND pr.bank_ref = s.bank_ref
     WHERE NOT coalesce({_FAST}, false)
    RETURNING 1
), fast AS (
    INSERT INTO statement_lines (
        import_id, reconciliation_id, bank, bank_ref, statement_date, booked_at, amount_vnd,
        direction, counterparty, content, content_key, content_ref, end_to_end_ref, raw,
        source_line, rule, payment_id, fine_id, class, decided_at, in_suspense, action)
    SELECT :import_id, :rid, :bank, s.bank_ref, :statement_date, s.booked_at, s.amount_vnd,
           'credit', s.counterparty, s.content, s.content_key, s.content_ref,
           s.end_to_end_ref, s.raw, s.source_line, 'bank_ref', pr.id, pr.fine_id,
           'matched', :now, false, NULL
      FROM recon_staging s
      JOIN payments pr ON pr.bank = :bank AND pr.bank_ref = s.bank_ref
     WHERE {_FAST}
    RETURNING amount_vnd
)
SELECT f.lines, f.amount_vnd, (SELECT count(*) FROM rest) AS rest_lines
  FROM (SELECT count(*) AS lines, coalesce(sum(amount_vnd), 0) AS amount_vnd FROM fast) AS f
"""  # noqa: S608 (constants only)

# 2b. A big statement (at least PARALLEL_LINES_MIN lines) is split before
# its rows are built: only its keys are staged (position, bank reference,
# amount, direction), and one statement decides, in one snapshot, which
# lines are plain booked payments. For those it returns the payment and the
# fine, packed in one value (position, payment id, fine id: 28 bytes a line;
# a million rows would cost the client more than the rest of the load), and
# their rows are written once, by COPY, straight into statement_lines: never
# staged whole, joined twice or inserted row by row. The other lines are
# returned with the payment their bank reference found, for a second
# connection to classify meanwhile.
_KEYS_DDL: Final = """
CREATE TEMP TABLE recon_keys (
    pos         integer NOT NULL,
    bank_ref    text NOT NULL,
    amount_vnd  bigint NOT NULL,
    credit      boolean NOT NULL
) ON COMMIT DROP
"""
KEY_TYPES: Final = ("int4", "text", "int8", "bool")
_KEYS_COPY: Final = "COPY recon_keys (pos, bank_ref, amount_vnd, credit) FROM STDIN (FORMAT binary)"
# A plain line's record: its position, then its payment id and fine id as
# the last two fields of a binary COPY row (length, value; length, value).
PLAIN_RECORD: Final = struct.Struct(">i32s")
# The same join, made full, also finds the bank's payments of the day that
# no staged line booked (``unstaged``): the payments missing at the bank are
# looked for among those, with no second pass over the payments.
_DECIDE_SQL: Final = f"""
SELECT string_agg(int4send(pos) || '\\x00000010'::bytea || uuid_send(id)
                  || '\\x00000008'::bytea || int8send(fine_id), ''::bytea)
           FILTER (WHERE fast) AS plain,
       count(*) FILTER (WHERE fast) AS plain_lines,
       coalesce(sum(amount_vnd) FILTER (WHERE fast), 0) AS plain_amount,
       string_agg(int4send(pos) || CASE WHEN id IS NULL THEN '\\x00'::bytea
                                        ELSE '\\x01'::bytea || uuid_send(id) END, ''::bytea)
           FILTER (WHERE pos IS NOT NULL AND NOT fast) AS rest,
       coalesce(array_agg(id) FILTER (WHERE unstaged), '{{}}') AS unstaged
  FROM (SELECT s.pos, s.amount_vnd, pr.id, pr.fine_id, coalesce({_FAST}, false) AS fast,
               s.pos IS NULL AND pr.status IN ('succeeded', 'refunded')
                   AND pr.debited_at >= :day_start AND pr.debited_at < :cutoff AS unstaged
          FROM recon_keys s
          FULL JOIN (SELECT * FROM payments WHERE bank = :bank) AS pr
            ON pr.bank_ref = s.bank_ref) AS j
"""  # noqa: S608 (constants only)
# The plain booked lines, written matched, by COPY in binary format: each row
# is the statement's constant fields, then the line's own fields (formatted
# while the decision runs, as the client is idle then), then the payment and
# fine fields exactly as the decision packed them.
_PLAIN_CONSTANT: Final = (
    "import_id, reconciliation_id, bank, statement_date, direction, rule, class, decided_at,"
    " in_suspense, action"
)
CONSTANT_TYPES: Final = (
    "int8", "int8", "text", "date", "text", "text", "text", "timestamptz", "bool", "text",
)  # fmt: skip
_PLAIN_OWN: Final = (
    "bank_ref, booked_at, amount_vnd, counterparty, content, content_key, content_ref,"
    " end_to_end_ref, raw, source_line"
)
OWN_TYPES: Final = (
    "text", "timestamptz", "int8", "text", "text", "text", "text", "text", "text", "int4",
)  # fmt: skip
_PLAIN_COPY: Final = (
    f"COPY statement_lines ({_PLAIN_CONSTANT}, {_PLAIN_OWN}, payment_id, fine_id)"
    " FROM STDIN (FORMAT binary)"
)
_PLAIN_FIELDS: Final = len(CONSTANT_TYPES) + len(OWN_TYPES) + 2
# The binary COPY format (PostgreSQL documentation, COPY, "Binary Format").
COPY_SIGNATURE: Final = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # flags 0, no header extension
COPY_TRAILER: Final = b"\xff\xff"
COPY_CHUNK_BYTES: Final = 1 << 20
# The helper's copy of the other lines (a temporary table of its own
# session), by binary COPY from the fields already formatted for the plain
# lines: their own fields, then position, direction and the payment their
# bank reference found (no row is formatted twice).
_HELPER_REST_DDL: Final = _STAGING_DDL.replace("recon_staging", "recon_rest").replace(
    "source_line     integer NOT NULL", "source_line     integer NOT NULL,\n    ref_payment uuid"
)
_HELPER_REST_COPY: Final = (
    f"COPY recon_rest ({_PLAIN_OWN}, pos, credit, ref_payment) FROM STDIN (FORMAT binary)"
)
_REST_FIELDS: Final = len(OWN_TYPES) + 3
REST_POS_CREDIT: Final = struct.Struct(">iii?")  # (4, pos), (1, credit)
REST_PAYMENT: Final = struct.Struct(">i16s")  # (16, uuid)
COPY_NULL: Final = b"\xff\xff\xff\xff"  # a field's length -1

# 3. The other lines linked to payments by the enabled rules, in priority
# order. Only what the next steps read is kept: the last step writes each
# line's own fields from recon_rest, by position.
_LINK_TEMPLATE: Final = """
CREATE TEMP TABLE recon_linked ON COMMIT DROP AS
SELECT s.pos, s.bank_ref, s.booked_at, s.credit, s.amount_vnd, s.content_key, s.ref_payment,
       s.counterparty ~ '^[A-Za-z0-9]{{1,34}}$' AS payer_known,
       px.id AS ext_payment,
       CASE WHEN s.credit THEN {credit_link} ELSE {debit_link} END AS link_payment,
       CASE WHEN s.credit THEN {credit_rule} ELSE {debit_rule} END AS link_rule,
       {refund_entry} AS refund_entry
  FROM recon_rest s
  LEFT JOIN LATERAL (
      SELECT px.id FROM payments px
       WHERE s.ref_payment IS NULL
         AND px.debit_key = left('ext-' || :bank || '-' || s.bank_ref, 200)
      OFFSET 0
  ) AS px ON s.credit
  {joins}
"""

# 4. Unlinked money in: find a registered decision number in the content. The
# content is cut into 6-character windows, each looked up against the start
# of every decision key (index fines_decision_anchor); a hit counts if the
# whole key follows, or if the content ends inside the key (the bank cut it)
# after at least :truncated_min characters. The longest hit wins, the fine's
# amount first; a tie is ambiguous and left to finance.
_DECISION_SQL: Final = """
CREATE TEMP TABLE recon_decisions ON COMMIT DROP AS
WITH cand AS (
    SELECT l.pos, f.id AS fine_id,
           abs(l.amount_vnd - f.amount_vnd) <= :tol_decision_number AS amount_ok,
           max(CASE WHEN starts_with(substr(l.content_key, w.at), f.decision_alnum)
                    THEN length(f.decision_alnum)
                    ELSE length(l.content_key) - w.at + 1 END) AS score
      FROM recon_linked l
      CROSS JOIN LATERAL generate_series(1, length(l.content_key) - 5) AS w(at)
      JOIN fines f ON left(f.decision_alnum, 6) = substr(l.content_key, w.at, 6)
     WHERE :decision_enabled AND l.link_payment IS NULL AND l.credit
       AND length(l.content_key) >= 6
       AND (starts_with(substr(l.content_key, w.at), f.decision_alnum)
            OR (starts_with(f.decision_alnum, substr(l.content_key, w.at))
                AND length(l.content_key) - w.at + 1 >= :truncated_min))
     GROUP BY l.pos, f.id, f.amount_vnd, l.amount_vnd
), ranked AS (
    SELECT pos, fine_id,
           rank() OVER (PARTITION BY pos ORDER BY amount_ok DESC, score DESC) AS r
      FROM cand
)
SELECT pos, min(fine_id) AS fine_id FROM ranked WHERE r = 1 GROUP BY pos HAVING count(*) = 1
"""

# 5. What each other line is, before ranking the lines that would heal one fine.
_STAGE_TEMPLATE: Final = """
CREATE TEMP TABLE recon_staged ON COMMIT DROP AS
WITH fined AS (
    SELECT l.*,
           coalesce(l.link_rule,
                    CASE WHEN d.fine_id IS NOT NULL THEN 'decision_number' END) AS rule,
           p.status AS p_status, p.bank_ref AS p_bank_ref, p.settles_fine AS p_settles,
           p.amount_vnd AS p_amount, p.channel AS p_channel, p.debit_key AS p_debit_key,
           f.id AS f_id, f.amount_vnd AS f_amount, paid.paid IS NOT NULL AS f_paid
      FROM recon_linked l
      LEFT JOIN recon_decisions d ON d.pos = l.pos
      LEFT JOIN LATERAL (SELECT * FROM payments p WHERE p.id = l.link_payment OFFSET 0) AS p
           ON true
      LEFT JOIN LATERAL (
          SELECT f.id, f.amount_vnd FROM fines f
           WHERE f.id = coalesce(p.fine_id, d.fine_id) OFFSET 0) AS f ON true
      -- Paid: a settling payment (payments_one_settling_per_fine, index only).
      LEFT JOIN LATERAL (
          SELECT true AS paid FROM payments paid
           WHERE paid.fine_id = f.id AND paid.settles_fine OFFSET 0) AS paid ON true
), tolerated AS (
    SELECT fd.*, {tolerance} AS tol FROM fined fd
)
SELECT t.pos, t.bank_ref, t.booked_at, t.credit, t.amount_vnd, t.payer_known, t.ref_payment,
       t.ext_payment, t.link_payment, t.refund_entry, t.rule, t.f_id, t.f_amount, t.f_paid,
    CASE
      WHEN NOT t.credit THEN
        CASE WHEN t.link_payment IS NULL AND t.refund_entry IS NOT NULL THEN 'matched'
             WHEN t.link_payment IS NULL THEN 'unknown'
             WHEN abs(t.amount_vnd - t.p_amount) > t.tol THEN 'amount_mismatch'
             WHEN t.p_status = 'refunded' OR (t.p_status = 'succeeded' AND NOT t.p_settles)
                  THEN 'matched'
             ELSE 'unknown' END
      WHEN t.link_payment IS NOT NULL AND abs(t.amount_vnd - t.p_amount) > t.tol
           THEN 'amount_mismatch'
      WHEN t.link_payment IS NOT NULL AND t.p_status IN ('succeeded', 'refunded')
           AND t.p_bank_ref = t.bank_ref
           THEN CASE WHEN t.p_settles THEN 'matched' ELSE 'booked_duplicate' END
      WHEN t.link_payment IS NOT NULL AND t.p_status IN ('initiated', 'verifying')
           AND t.p_debit_key = left('ext-' || :bank || '-' || t.bank_ref, 200)
           THEN 'external_running'
      WHEN t.link_payment IS NOT NULL AND t.p_status IN ('initiated', 'verifying')
           AND t.p_channel IN ('portal', 'counter') AND t.amount_vnd = t.p_amount
           THEN 'signal'
      WHEN t.f_id IS NULL THEN 'unknown'
      WHEN abs(t.amount_vnd - t.f_amount) > t.tol THEN 'amount_mismatch'
      WHEN t.amount_vnd <> t.f_amount THEN 'inexact'
      ELSE 'external'
    END AS stage
  FROM tolerated t
"""

# 6. Of the lines that would pay one unpaid fine, the first heals it (a debit
# already being recorded first, then our own payment, then by booking time);
# the others are duplicates. Then every line is written once, classified, and
# every line that is neither matched nor healed opens its discrepancy in the
# same statement (from the rows just written: no second pass over the table;
# and no ON CONFLICT, as no discrepancy can name a line written just now).
_INSERT_SQL: Final = """
WITH heal AS (
    SELECT pos,
           row_number() OVER (
               PARTITION BY f_id
               ORDER BY stage = 'external_running' DESC, stage = 'signal' DESC,
                        booked_at, bank_ref) AS heal_rank
      FROM recon_staged
     WHERE stage IN ('external_running', 'signal', 'external') AND NOT f_paid
), decided AS (
    SELECT st.*,
        CASE
          WHEN st.stage IN ('matched', 'unknown', 'amount_mismatch') THEN st.stage
          WHEN st.stage = 'inexact'
               THEN CASE WHEN st.f_paid THEN 'duplicate' ELSE 'amount_mismatch' END
          WHEN st.stage = 'booked_duplicate' THEN 'duplicate'
          WHEN h.heal_rank = 1 THEN 'healed'
          ELSE 'duplicate'
        END AS class,
        CASE
          WHEN st.stage = 'signal' THEN 'signal'
          WHEN st.stage = 'external_running' THEN 'external_debit'
          WHEN st.stage = 'external' AND (h.heal_rank = 1 OR st.payer_known)
               THEN 'external_debit'
        END AS action
      FROM recon_staged st
      LEFT JOIN heal h ON h.pos = st.pos
), inserted AS (
    INSERT INTO statement_lines (
        import_id, reconciliation_id, bank, bank_ref, statement_date, booked_at, amount_vnd,
        direction, counterparty, content, content_key, content_ref, end_to_end_ref, raw,
        source_line, rule, payment_id, fine_id, class, decided_at, in_suspense, action)
    SELECT :import_id, :rid, :bank, d.bank_ref, :statement_date, d.booked_at, d.amount_vnd,
           CASE WHEN d.credit THEN 'credit' ELSE 'debit' END, s.counterparty, s.content,
           s.content_key, s.content_ref, s.end_to_end_ref, s.raw, s.source_line,
           CASE WHEN d.link_payment IS NOT NULL OR d.f_id IS NOT NULL
                     OR d.refund_entry IS NOT NULL THEN d.rule END,
           d.link_payment, d.f_id, d.class, :now,
           d.action IS NULL AND d.class <> 'matched'
               AND d.ref_payment IS NULL AND d.ext_payment IS NULL
               AND (d.credit OR d.link_payment IS NULL),
           d.action
      FROM decided d
      JOIN recon_rest s ON s.pos = d.pos
    RETURNING id, bank, statement_date, bank_ref, booked_at, amount_vnd, direction,
              counterparty, content, rule, payment_id, fine_id, class, in_suspense, action
), opened AS (
    INSERT INTO discrepancies (reconciliation_id, bank, statement_date, kind,
                               statement_line_id, payment_id, fine_id, amount_vnd, detail,
                               created_at, updated_at)
    SELECT :rid, l.bank, l.statement_date, l.class, l.id, l.payment_id, l.fine_id,
           l.amount_vnd,
           jsonb_build_object(
               'bank_ref', l.bank_ref, 'direction', l.direction, 'rule', l.rule,
               'booked_at', l.booked_at, 'counterparty', l.counterparty,
               'content', l.content, 'in_suspense', l.in_suspense,
               'automatic_action', l.action),
           :now, :now
      FROM inserted l
     WHERE l.class IN ('duplicate', 'amount_mismatch', 'unknown')
    RETURNING 1
)
SELECT class AS class_, direction, count(*) AS lines, sum(amount_vnd) AS amount_vnd,
       in_suspense, (SELECT count(*) FROM opened) AS opened
  FROM inserted GROUP BY class, direction, in_suspense
"""


@dataclass(frozen=True)
class _MatchStatements:
    link: str
    stage: str
    params: dict[str, Any]


def _match_statements(rules: Mapping[str, MatchRule]) -> _MatchStatements:
    """The rule-dependent statements and their parameters. Only rule names
    from ``RULES`` reach the SQL text (no user input)."""
    enabled = sorted((r for r in rules.values() if r.enabled), key=lambda r: r.priority)
    credit = [r.rule for r in enabled if r.rule in _CREDIT_LINK]
    refunds = any(r.rule == "refund_ref" for r in enabled)
    joins: list[str] = []
    for index, rule in enumerate(credit):
        if rule in _LATERAL:
            earlier = [f"{_CREDIT_LINK[r]} IS NULL" for r in credit[:index]]
            joins.append(_LATERAL[rule].format(unlinked=" AND ".join(earlier) or "true"))
    if credit:
        credit_link = f"coalesce({', '.join(_CREDIT_LINK[r] for r in credit)}, NULL)"
        whens = " ".join(f"WHEN {_CREDIT_LINK[r]} IS NOT NULL THEN '{r}'" for r in credit)
        credit_rule = f"CASE {whens} END"
    else:
        credit_link, credit_rule = "NULL::uuid", "NULL"
    if refunds:
        debit_link, refund_entry = _REFUND_LINK, _REFUND_ENTRY
        debit_rule = (
            f"CASE WHEN {_REFUND_LINK} IS NOT NULL OR {_REFUND_ENTRY} IS NOT NULL"
            " THEN 'refund_ref' END"
        )
    else:
        debit_link, debit_rule, refund_entry = "NULL::uuid", "NULL", "NULL::bigint"
    fast = credit[:1] == ["bank_ref"]
    link = _LINK_TEMPLATE.format(
        credit_link=credit_link,
        credit_rule=credit_rule,
        debit_link=debit_link,
        debit_rule=debit_rule,
        refund_entry=refund_entry,
        joins=" ".join(joins),
    )
    cases = " ".join(f"WHEN '{r.rule}' THEN :tol_{r.rule}" for r in enabled)
    stage = _STAGE_TEMPLATE.format(tolerance=f"CASE fd.rule {cases} ELSE 0 END" if cases else "0")
    decision = rules.get("decision_number")
    params: dict[str, Any] = {f"tol_{r.rule}": r.amount_tolerance_vnd for r in enabled}
    params.setdefault("tol_decision_number", 0)
    params.setdefault("tol_bank_ref", 0)
    params["decision_enabled"] = decision is not None and decision.enabled
    params["fast"] = fast
    params["truncated_min"] = (
        decision.truncated_chars_min if decision is not None else DECISION_WINDOW_CHARS
    )
    return _MatchStatements(link=link, stage=stage, params=params)


# Hash joins over a million payments want more than the default 4 MB.
WORK_MEM: Final = "256MB"
# No statement of a load runs longer than this (a million lines take seconds
# in all): a plan gone wrong fails the load, which the workflow retries,
# instead of holding the bank's lock for as long as it runs.
STATEMENT_TIMEOUT: Final = "5min"


class Stopwatch:
    """Seconds per stage of a load, for benchmarks (``None``: not kept)."""

    def __init__(self, sink: dict[str, float] | None, prefix: str = "") -> None:
        self._sink = sink
        self._prefix = prefix  # "helper_": a second connection's stages, meanwhile
        self._last = time_module.perf_counter()

    @property
    def sink(self) -> dict[str, float] | None:
        return self._sink

    def lap(self, stage: str) -> None:
        now = time_module.perf_counter()
        if self._sink is not None:
            stage = self._prefix + stage
            self._sink[stage] = self._sink.get(stage, 0.0) + now - self._last
        self._last = now


# A statement of at least this many lines is loaded by the split path (2b):
# its keys staged first, its plain booked lines written by COPY, its other
# lines classified by a second connection meanwhile (a smaller one is not
# worth a second connection and commit). Tests lower it.
PARALLEL_LINES_MIN: Final = 50_000

Group = tuple[str, str, int, int, bool]
# What the helper does after its own lines, on its connection and before it
# commits (the payments missing at the bank unless the main connection looked
# for them first, then a share of the plain lines); returns how many payments
# missing at the bank it opened, None if it did not look for them.
HelperTail = Callable[[AsyncConnection, "Stopwatch"], Awaitable[int | None]]
# The plain lines are handed out this many at a time to whichever connection
# asks first: the main one from the start, the helper once its own lines are
# written (so neither waits for the other at the end).
PLAIN_SLICE_LINES: Final = 20_000


class _PlainShare:
    """The decision's plain-line records (``PLAIN_RECORD``), a slice at a
    time. Both connections' tasks run on one event loop, so a slice is never
    handed out twice."""

    def __init__(self, plain: bytes, lines_per_slice: int) -> None:
        self._plain = memoryview(plain)
        self._step = lines_per_slice * PLAIN_RECORD.size
        self._at = 0

    @property
    def left(self) -> bool:
        return self._at < len(self._plain)

    def take(self) -> memoryview | None:
        if not self.left:
            return None
        piece = self._plain[self._at : self._at + self._step]
        self._at += self._step
        return piece


@dataclass(frozen=True)
class _Written:
    # (class, direction, lines, amount_vnd, in_suspense) of the lines written
    groups: list[Group]
    discrepancies_opened: int
    # Payments missing at the bank opened meanwhile (None: not looked for yet)
    missing_at_bank: int | None = None


def _write_params(run: Run, import_id: int, now: datetime) -> dict[str, Any]:
    return {
        "bank": run.bank,
        "rid": run.id,
        "import_id": import_id,
        "statement_date": run.statement_date,
        "now": now,
    }


async def _match_and_insert(
    conn: AsyncConnection,
    statements: _MatchStatements,
    write: dict[str, Any],
    watch: Stopwatch,
) -> _Written:
    """Steps 1-6 over the staging table, on this connection: every new line
    written, classified, with its discrepancy."""
    await conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    groups: list[Group] = [
        (r.class_, r.direction, int(r.lines), int(r.amount_vnd), bool(r.in_suspense))
        for r in (await conn.execute(text(_DROP_KNOWN_SQL), write)).all()
    ]
    watch.lap("drop_known")
    await conn.execute(text(_REST_DDL))
    split = (await conn.execute(text(_SPLIT_SQL), {**write, **statements.params})).one()
    if split.lines:
        groups.append(("matched", "credit", int(split.lines), int(split.amount_vnd), False))
    watch.lap("insert_fast")
    return await _classify_rest(conn, statements, write, watch, groups)


async def _copy_keys(conn: AsyncConnection, lines: Sequence[LineLike]) -> None:
    """Stage the lines' keys only (2b). Not analysed: the two statements
    that read the table join it whole, and its size (which the planner reads
    off its pages) is all they need."""
    _check_lines(lines)
    await conn.execute(text(f"SET LOCAL temp_buffers = '{TEMP_BUFFERS}'"))
    await conn.execute(text(_KEYS_DDL))
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    async with driver.cursor() as cursor, cursor.copy(_KEYS_COPY) as copy:
        copy.set_types(KEY_TYPES)
        for pos, line in enumerate(lines):
            ref = line.bank_ref
            await copy.write_row((pos, _text(ref), line.amount_vnd, line.direction == "credit"))


async def _copy_rest(
    conn: AsyncConnection,
    own: OwnFields,
    lines: Sequence[LineLike],
    rest: Sequence[tuple[int, UUID | None]],
) -> None:
    """The other lines, whole, into this connection's ``recon_rest``."""
    await conn.execute(text(f"SET LOCAL temp_buffers = '{TEMP_BUFFERS}'"))
    await conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    await conn.execute(text(_HELPER_REST_DDL))
    head = struct.pack(">h", _REST_FIELDS)
    await _copy_binary(
        conn,
        _HELPER_REST_COPY,
        (
            head
            + own[pos]
            + REST_POS_CREDIT.pack(4, pos, 1, lines[pos].direction == "credit")
            + (COPY_NULL if ref_payment is None else REST_PAYMENT.pack(16, ref_payment.bytes))
            for pos, ref_payment in rest
        ),
    )


async def _copy_binary(conn: AsyncConnection, sql: str, rows: Iterable[bytes]) -> None:
    """COPY ``sql`` in binary format from rows already encoded (field count,
    then each field's length and value), sent a chunk at a time."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    async with driver.cursor() as cursor, cursor.copy(sql) as copy:
        buffer = bytearray(COPY_SIGNATURE)
        for row in rows:
            buffer += row
            if len(buffer) >= COPY_CHUNK_BYTES:
                await copy.write(buffer)
                buffer = bytearray()
        buffer += COPY_TRAILER
        await copy.write(buffer)


def _dumper(driver: Any, types: Sequence[str]) -> TransformerLike:
    """A psycopg transformer dumping ``types`` in binary, as COPY's would."""
    tx = Transformer(driver)
    registry = driver.adapters.types
    tx.set_dumper_types([registry.get_oid(t) for t in types], pq.Format.BINARY)
    return tx


def _fields(tx: TransformerLike, values: Sequence[Any]) -> bytes:
    """``values`` as binary COPY fields (a row's data after its field count)."""
    out = bytearray()
    format_row_binary(values, tx, out)
    return bytes(out[2:])


async def _copy_plain(
    conn: AsyncConnection, own: OwnFields, share: _PlainShare, write: Mapping[str, Any]
) -> None:
    """Plain booked lines (``PLAIN_RECORD`` records), written matched: slices
    taken from ``share`` until none is left, in one COPY."""
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    constant = (
        write["import_id"], write["rid"], write["bank"], write["statement_date"], "credit",
        "bank_ref", "matched", write["now"], False, None,
    )  # fmt: skip
    head = struct.pack(">h", _PLAIN_FIELDS) + _fields(_dumper(driver, CONSTANT_TYPES), constant)

    def rows() -> Iterator[bytes]:
        while (piece := share.take()) is not None:
            for pos, tail in PLAIN_RECORD.iter_unpack(piece):
                yield head + own[pos] + tail

    await _copy_binary(conn, _PLAIN_COPY, rows())


async def _classify_on_helper(
    helper: AsyncConnection,
    statements: _MatchStatements,
    write: dict[str, Any],
    timings: dict[str, float] | None,
    tail: HelperTail,
) -> _Written:
    """The helper connection: the lines that are not plain booked ones (as
    the main connection decided), classified and written with their
    discrepancies, then ``tail`` (the payments missing at the bank, and the
    plain lines the main connection has not taken yet), in the helper's own
    transaction, committed. If the main transaction then fails, the
    import is not marked loaded: the re-run finds these lines known, counts
    them as its own (``_DROP_KNOWN_SQL``) and does the rest (a payment
    missing at the bank opens one discrepancy however often it is found)."""
    watch = Stopwatch(timings, prefix="helper_")
    written = await _classify_rest(helper, statements, write, watch, [])
    missing = await tail(helper, watch)
    await helper.commit()
    return _Written(written.groups, written.discrepancies_opened, missing)


async def _run_helper(
    engine: AsyncEngine,
    own: OwnFields,
    lines: Sequence[LineLike],
    rest: Sequence[tuple[int, UUID | None]],
    statements: _MatchStatements,
    write: dict[str, Any],
    timings: dict[str, float] | None,
    tail: HelperTail,
) -> _Written | None:
    """A second connection classifies the other lines, in its own
    transaction; None if it cannot see the run (created in the caller's
    transaction, still uncommitted: the discrepancies refer to it)."""
    watch = Stopwatch(timings, prefix="helper_")
    helper = await engine.connect()
    try:
        await helper.begin()
        # The helper's statements are cut off as the main connection's are.
        await helper.execute(text(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'"))
        visible = await helper.execute(
            text("SELECT 1 FROM reconciliations WHERE id = :rid"), {"rid": write["rid"]}
        )
        if visible.first() is None:
            return None
        await _copy_rest(helper, own, lines, rest)
        watch.lap("copy_rest")
        return await _classify_on_helper(helper, statements, write, timings, tail)
    finally:
        await helper.close()  # after a failure, or with nothing done: rolled back


async def _one_binary(conn: AsyncConnection, sql: str, params: Mapping[str, Any]) -> Any:
    """The one row of ``sql``, its values sent in binary. The decision's
    packed records are tens of megabytes: as text they would be hex-encoded
    by the server and decoded by the client, twice the bytes and a second or
    so of CPU on the way."""
    compiled = text(sql).compile(dialect=conn.dialect)
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    async with driver.cursor(row_factory=namedtuple_row) as cursor:
        await cursor.execute(compiled.string, compiled.construct_params(dict(params)), binary=True)
        row = await cursor.fetchone()
    if row is None:
        raise ConflictError("the statement returned no row")
    return row


def _unpack_rest(packed: bytes) -> list[tuple[int, UUID | None]]:
    """The decision's other lines: position, then 0, or 1 and the payment id
    their bank reference found."""
    rest: list[tuple[int, UUID | None]] = []
    at = 0
    while at < len(packed):
        pos = int.from_bytes(packed[at : at + 4], "big", signed=True)
        if packed[at + 4]:
            rest.append((pos, UUID(bytes=packed[at + 5 : at + 21])))
            at += 21
        else:
            rest.append((pos, None))
            at += 5
    return rest


# Lines formatted per slice while the decision runs (then the event loop
# answers).
BUILD_SLICE_LINES: Final = 5_000


class OwnFields:
    """Every line's own fields as binary COPY data (``OWN_TYPES``), all in
    one buffer: line ``pos`` is ``data[starts[pos] + 2 : starts[pos + 1]]``
    (each row as psycopg formats it, after its 2-byte field count). One
    buffer costs half as much as a ``bytes`` object per line."""

    def __init__(self, data: bytearray, starts: list[int]) -> None:
        self._view = memoryview(data)  # the buffer cannot grow from now on
        self._starts = starts

    def __getitem__(self, pos: int) -> memoryview:
        return self._view[self._starts[pos] + 2 : self._starts[pos + 1]]


async def _format_own_fields(driver: Any, lines: Sequence[LineLike]) -> OwnFields:
    """Every line's own fields, formatted while PostgreSQL decides (the
    client is idle meanwhile), a slice at a time."""
    tx = _dumper(driver, OWN_TYPES)
    data = bytearray()
    starts = [0]
    for start in range(0, len(lines), BUILD_SLICE_LINES):
        for pos in range(start, min(start + BUILD_SLICE_LINES, len(lines))):
            format_row_binary(own_values(lines[pos]), tx, data)
            starts.append(len(data))
        await asyncio.sleep(0)
    return OwnFields(data, starts)


class _Tail:
    """What is left once a connection is done with its own lines: the
    payments missing at the bank, looked for once, by the connection free
    first; then the plain lines not yet written (both connections' tasks run
    on one event loop, so nothing is claimed twice)."""

    def __init__(
        self,
        own: OwnFields,
        share: _PlainShare,
        write: Mapping[str, Any],
        missing_at_bank: Callable[[AsyncConnection], Awaitable[int]],
    ) -> None:
        self._own, self._share, self._write = own, share, write
        self._missing_at_bank = missing_at_bank
        self._missing_claimed = False

    async def find_missing(self, conn: AsyncConnection, watch: Stopwatch) -> int | None:
        """How many payments missing at the bank this call opened; None if
        another connection looks for them."""
        if self._missing_claimed:
            return None
        self._missing_claimed = True
        found = await self._missing_at_bank(conn)
        watch.lap("missing_at_bank")
        return found

    async def run(self, conn: AsyncConnection, watch: Stopwatch) -> int | None:
        """The helper's tail (``HelperTail``)."""
        missing = await self.find_missing(conn, watch)
        if self._share.left:
            await _copy_plain(conn, self._own, self._share, self._write)
            watch.lap("copy_plain")
        return missing


async def _load_big(
    conn: AsyncConnection,
    statements: _MatchStatements,
    write: dict[str, Any],
    window: tuple[datetime, datetime],
    watch: Stopwatch,
    lines: Sequence[LineLike],
    missing_at_bank: Callable[[AsyncConnection, Sequence[UUID]], Awaitable[int]],
    *,
    known_near_only: bool,
) -> _Written:
    """The split path (2b): keys staged, one decision (which also leaves the
    payments no line booked, for ``missing_at_bank``), the other lines and
    those payments to a helper connection, the plain lines by COPY
    meanwhile."""
    await _copy_keys(conn, lines)
    watch.lap("copy_keys")
    day = write["statement_date"]
    near = timedelta(days=KNOWN_NEAR_DAYS)
    known = {**write, "known_from": day - near, "known_to": day + near}
    drop_known = _DROP_KNOWN_NEAR_SQL if known_near_only else _DROP_KNOWN_KEYS_SQL
    await conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
    groups: list[Group] = [
        (r.class_, r.direction, int(r.lines), int(r.amount_vnd), bool(r.in_suspense))
        for r in (await conn.execute(text(drop_known), known)).all()
    ]
    watch.lap("drop_known")
    raw = await conn.get_raw_connection()
    building = asyncio.create_task(_format_own_fields(raw.driver_connection, lines))
    helper: asyncio.Task[_Written | None] | None = None
    try:
        decided = await _one_binary(
            conn,
            _DECIDE_SQL,
            {**write, **statements.params, "day_start": window[0], "cutoff": window[1]},
        )
        watch.lap("decide")
        plain: bytes = decided.plain or b""
        plain_lines, plain_amount = int(decided.plain_lines), int(decided.plain_amount)
        rest = _unpack_rest(decided.rest or b"")
        unstaged: list[UUID] = list(decided.unstaged)
        if len(plain) != plain_lines * PLAIN_RECORD.size:
            # A NULL in a packed record (never, as the columns are NOT NULL).
            raise ConflictError("a booked payment changed during the statement load; retry")
        own = await building
        watch.lap("format_rows")
        share = _PlainShare(plain, PLAIN_SLICE_LINES)
        tail = _Tail(own, share, write, lambda on: missing_at_bank(on, unstaged))
        # The helper starts at once (its lines are few, its steps many; then
        # it looks for the payments missing at the bank, and shares what is
        # left of the plain lines) while this connection writes plain lines.
        helper = asyncio.create_task(
            _run_helper(
                conn.engine,
                own,
                lines,
                rest,
                statements,
                write,
                watch.sink,
                tail.run,
            )
        )
        await _copy_plain(conn, own, share, write)
        watch.lap("copy_plain")
        if plain_lines:
            groups.append(("matched", "credit", plain_lines, plain_amount, False))
        # Done with the plain lines while the helper is still busy with its
        # own: this connection looks for the payments missing at the bank.
        missing = None if helper.done() else await tail.find_missing(conn, watch)
        by_helper = await helper
        if by_helper is None:  # the run is not committed yet: this connection does it
            await _copy_rest(conn, own, lines, rest)
            written = await _classify_rest(conn, statements, write, watch, groups)
            if missing is None:
                missing = await tail.find_missing(conn, watch)
            return _Written(written.groups, written.discrepancies_opened, missing)
    except BaseException:
        for task in (building, helper):
            if task is not None:
                task.cancel()  # the helper's transaction rolls back
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        raise
    watch.lap("wait_for_helper")
    return _Written(
        groups + by_helper.groups,
        by_helper.discrepancies_opened,
        by_helper.missing_at_bank if missing is None else missing,
    )


async def _classify_rest(
    conn: AsyncConnection,
    statements: _MatchStatements,
    write: dict[str, Any],
    watch: Stopwatch,
    groups: list[Group],
) -> _Written:
    """Steps 3-6 over recon_rest, on ``conn`` (main or helper connection).

    The temporary tables are not analysed: the planner then sizes them from
    their pages, and reads the lines in position order, looking each one's
    payment and fine up by index. With statistics it hashed them and
    memoised the lookups instead; for 110,000 lines that took twice as long,
    and the four ANALYZE runs cost another 0.35 s (bench/recon.py)."""
    bank = {"bank": write["bank"]}
    await conn.execute(text(statements.link), {**bank, **statements.params})
    watch.lap("link")
    await conn.execute(text(_DECISION_SQL), statements.params)
    watch.lap("decision_numbers")
    await conn.execute(text(statements.stage), {**bank, **statements.params})
    watch.lap("classify")
    opened = 0
    for row in (await conn.execute(text(_INSERT_SQL), write)).all():
        groups.append(
            (row.class_, row.direction, int(row.lines), int(row.amount_vnd), bool(row.in_suspense))
        )
        opened = int(row.opened)
    watch.lap("insert")
    return _Written(groups=groups, discrepancies_opened=opened)


# --- follow-up of a run's new lines ---------------------------------------------

# Money nobody booked goes to suspense, one entry per bank reference (the key
# ``suspense:<bank>:<bank_ref>`` is shared with disputes, so whoever books it
# first books it once). Posted in small batches, each its own transaction,
# after the lines are written: every entry updates the clearing and suspense
# balance rows, and thousands of updates of one row in one transaction slow
# down with each other (and would hold the bank's clearing balance locked
# against payments settling meanwhile).
# "\:null": a literal colon for SQLAlchemy text(), not a bind parameter.
_SUSPENSE_BATCH_SQL: Final = r"""
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
    SELECT 'suspense:' || :bank || ':' || t.bank_ref, 'suspense',
           'unidentified ' || t.direction || ' ' || t.bank_ref || ' on the ' || :bank
               || ' statement',
           encode(sha256(convert_to(format(
               '{"kind":"suspense","postings":[[%s,%s],["suspense",%s]],"reverses"\:null}',
               to_json(CAST(:clearing AS text))::text, t.clearing_vnd, -t.clearing_vnd),
               'UTF8')), 'hex'),
           jsonb_build_object('statement_line_id', t.id, 'bank', :bank, 'bank_ref', t.bank_ref)
      FROM todo t
     ORDER BY t.id
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id, idempotency_key
), posted AS (
    INSERT INTO postings (entry_id, account_id, amount_vnd)
    SELECT e.id, a.id, v.amount_vnd
      FROM entries e
      JOIN todo t ON e.idempotency_key = 'suspense:' || :bank || ':' || t.bank_ref
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
                                          = 'suspense:' || :bank || ':' || t.bank_ref))
                       AS entry_id
              FROM todo t
              LEFT JOIN entries e
                     ON e.idempotency_key = 'suspense:' || :bank || ':' || t.bank_ref) AS k
     WHERE l.id = k.id AND k.entry_id IS NOT NULL
    RETURNING 1
)
SELECT (SELECT count(*) FROM todo) AS lines, (SELECT count(DISTINCT entry_id) FROM posted)
       AS entries, (SELECT count(*) FROM marked) AS marked
"""

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


_MISSING_AT_BANK_SQL: Final = """
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
        SELECT 1 FROM statement_lines l WHERE l.bank = p.bank AND l.bank_ref = p.bank_ref
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
# After the split path's decision (2b): only the payments it found unstaged
# are looked up among the bank's lines.
_MISSING_UNSTAGED_SQL: Final = _MISSING_AT_BANK_SQL.format(
    not_staged="AND p.id = ANY(CAST(:unstaged AS uuid[])) OFFSET 0", per_row="OFFSET 0"
)


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

# Per open discrepancy, a lookup or two by index: each EXISTS is a subplan of
# its own (``OFFSET 0``), run with the discrepancy's ids as parameters, so the
# planner can only look them up by unique index, whatever the statistics say.
# Not joins: after a VACUUM that ran while a load's rows were still
# uncommitted, the planner believes ``statement_lines`` empty (no tuples over
# its pages) and would scan all its lines, once, as the outer side of a
# nested loop, matching each against every open discrepancy (a million lines
# times twenty thousand discrepancies: hours). Hashed instead, a subplan
# would join every payment of the bank to every line ever loaded.
AUTO_RESOLVE_SQL: Final = """
UPDATE discrepancies d
   SET status = 'resolved', resolved_at = :now, updated_at = :now,
       resolved_by = :actor,
       resolution = CASE d.kind
           WHEN 'missing_at_bank' THEN 'the bank''s statement now has the debit'
           WHEN 'in_doubt_too_long' THEN 'the payment is no longer in doubt'
           ELSE 'the duplicate debit was refunded automatically' END
 WHERE d.bank = :bank AND d.status = 'open' AND (
       (d.kind = 'missing_at_bank' AND EXISTS (
            SELECT 1 FROM payments p
              JOIN statement_lines l ON l.bank = p.bank AND l.bank_ref = p.bank_ref
             WHERE p.id = d.payment_id OFFSET 0))
    OR (d.kind = 'in_doubt_too_long' AND EXISTS (
            SELECT 1 FROM payments p
             WHERE p.id = d.payment_id AND p.status NOT IN ('initiated', 'verifying')
            OFFSET 0))
    OR (d.kind = 'duplicate' AND EXISTS (
            SELECT 1 FROM statement_lines l
              JOIN payments q ON q.bank = l.bank AND q.bank_ref = l.bank_ref
             WHERE l.id = d.statement_line_id AND q.status = 'refunded' OFFSET 0)))
"""


async def auto_resolve(conn: AsyncConnection, bank: str, now: datetime) -> int:
    """Close what resolved itself: a missing debit that arrived, a payment no
    longer in doubt, a duplicate refunded automatically."""
    result = await conn.execute(
        text(AUTO_RESOLVE_SQL), {"bank": bank, "now": now, "actor": SYSTEM_ACTOR}
    )
    return int(result.rowcount or 0)


def vietnam_day_utc(day: date) -> tuple[datetime, datetime]:
    start = business_day_start(day)
    return start, start + timedelta(days=1)


def vietnam_today(now: datetime) -> date:
    return now.astimezone(VIETNAM_TZ).date()


# --- runs and imports -----------------------------------------------------------


@dataclass(frozen=True)
class Run:
    id: int
    bank: str
    statement_date: date
    source: str
    trigger: str
    requested_by: str
    workflow_id: str | None
    import_id: int | None
    status: str
    counts: dict[str, int]
    error: str | None
    started_at: datetime
    finished_at: datetime | None


RUN_COUNT_COLUMNS: Final = (
    "lines",
    "new_lines",
    "matched",
    "healed",
    "duplicates",
    "amount_mismatches",
    "unknown",
    "missing_at_bank",
    "in_doubt_too_long",
    "discrepancies",
    "discrepancies_open",
    "actions_pending",
    "credit_total_vnd",
    "debit_total_vnd",
)


def _run(row: Any) -> Run:
    return Run(
        id=int(row.id),
        bank=row.bank,
        statement_date=row.statement_date,
        source=row.source,
        trigger=row.trigger,
        requested_by=row.requested_by,
        workflow_id=row.workflow_id,
        import_id=row.import_id,
        status=row.status,
        counts={name: int(getattr(row, name)) for name in RUN_COUNT_COLUMNS},
        error=row.error,
        started_at=row.started_at,
        finished_at=row.finished_at,
    )


_GET_RUN: Final = "SELECT * FROM reconciliations WHERE id = :id"
_GET_RUN_FOR_UPDATE: Final = _GET_RUN + " FOR UPDATE"


async def get_run(conn: AsyncConnection, run_id: int, *, for_update: bool = False) -> Run:
    sql = _GET_RUN_FOR_UPDATE if for_update else _GET_RUN
    row = (await conn.execute(text(sql), {"id": run_id})).one_or_none()
    if row is None:
        raise NotFoundError(f"no reconciliation {run_id}")
    return _run(row)


async def list_runs(
    conn: AsyncConnection,
    *,
    bank: str | None = None,
    statement_date: date | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[Run]:
    assert 1 <= limit <= 500
    rows = (
        await conn.execute(
            text(
                "SELECT * FROM reconciliations"
                " WHERE (CAST(:bank AS text) IS NULL OR bank = :bank)"
                " AND (CAST(:day AS date) IS NULL OR statement_date = :day)"
                " AND (CAST(:before AS bigint) IS NULL OR id < :before)"
                " ORDER BY id DESC LIMIT :limit"
            ),
            {"bank": bank, "day": statement_date, "before": before_id, "limit": limit},
        )
    ).all()
    return [_run(r) for r in rows]


def _check_run_fields(bank: str, source: str, trigger: str) -> None:
    if source not in SOURCES:
        raise ValidationError("source", f"must be one of {', '.join(SOURCES)}")
    if trigger not in TRIGGERS:
        raise ValidationError("trigger", f"must be one of {', '.join(TRIGGERS)}")
    if not bank or len(bank) > 32:
        raise ValidationError("bank", "must be a configured bank id")


async def create_run(
    conn: AsyncConnection,
    *,
    bank: str,
    statement_date: date,
    source: str,
    trigger: str,
    requested_by: str,
    now: datetime,
    workflow_id: str | None = None,
    workflow_run_id: str | None = None,
    import_id: int | None = None,
) -> tuple[Run, bool]:
    """A new run, or the running one with the same workflow id (an API call
    while that reconciliation runs joins it), or the one of this workflow run
    (an activity retried). Returns the run and whether it was created."""
    _check_run_fields(bank, source, trigger)
    for _ in range(3):  # the running one may finish between insert and read
        row = (
            await conn.execute(
                text(
                    "INSERT INTO reconciliations (bank, statement_date, source, trigger,"
                    " requested_by, workflow_id, workflow_run_id, import_id, started_at)"
                    " VALUES (:bank, :day, :source, :trigger, :by, :wid, :rid, :import_id, :now)"
                    " ON CONFLICT DO NOTHING RETURNING *"
                ),
                {
                    "bank": bank,
                    "day": statement_date,
                    "source": source,
                    "trigger": trigger,
                    "by": requested_by[:200],
                    "wid": workflow_id,
                    "rid": workflow_run_id,
                    "import_id": import_id,
                    "now": now,
                },
            )
        ).one_or_none()
        if row is not None:
            return _run(row), True
        existing = (
            await conn.execute(
                text(
                    "SELECT * FROM reconciliations WHERE workflow_run_id = :rid"
                    " OR (workflow_id = :wid AND status = 'running') ORDER BY id LIMIT 1"
                ),
                {"rid": workflow_run_id, "wid": workflow_id},
            )
        ).one_or_none()
        if existing is not None:
            return _run(existing), False
    raise ConflictError(f"could not create or join a reconciliation for {workflow_id}")


async def set_workflow(
    conn: AsyncConnection, run_id: int, workflow_id: str, workflow_run_id: str | None = None
) -> None:
    await conn.execute(
        text(
            "UPDATE reconciliations SET workflow_id = :wid,"
            " workflow_run_id = coalesce(workflow_run_id, :rid) WHERE id = :id"
        ),
        {"id": run_id, "wid": workflow_id, "rid": workflow_run_id},
    )


async def attach_import(conn: AsyncConnection, run_id: int, import_id: int) -> None:
    await conn.execute(
        text("UPDATE reconciliations SET import_id = :import_id WHERE id = :id"),
        {"id": run_id, "import_id": import_id},
    )


async def fail_run(conn: AsyncConnection, run_id: int, error: str, now: datetime) -> Run:
    """Mark a run failed (a finished run stays as it is)."""
    await conn.execute(
        text(
            "UPDATE reconciliations SET status = 'failed', error = :error, finished_at = :now"
            " WHERE id = :id AND status = 'running'"
        ),
        {"id": run_id, "error": error[:ERROR_CHARS_MAX], "now": now},
    )
    return await get_run(conn, run_id)


@dataclass(frozen=True)
class StatementImport:
    id: int
    bank: str
    statement_date: date
    source: str
    format: str
    content_sha256: str
    size_bytes: int
    lines: int
    new_lines: int
    loaded_at: datetime | None


def _import(row: Any) -> StatementImport:
    return StatementImport(
        id=int(row.id),
        bank=row.bank,
        statement_date=row.statement_date,
        source=row.source,
        format=row.format,
        content_sha256=row.content_sha256,
        size_bytes=int(row.size_bytes),
        lines=int(row.lines),
        new_lines=int(row.new_lines),
        loaded_at=row.loaded_at,
    )


_IMPORT_COLUMNS: Final = (
    "id, bank, statement_date, source, format, content_sha256, size_bytes, lines, new_lines,"
    " loaded_at"
)


async def register_import(
    conn: AsyncConnection,
    *,
    bank: str,
    statement_date: date,
    source: str,
    fmt: str,
    content_sha256: str,
    lines: int,
    now: datetime,
    data: bytes | None = None,
    uploaded_by: str = "",
) -> tuple[StatementImport, bool]:
    """Record a statement file (the same content for the same bank and date is
    the same import). Returns it and whether it is new."""
    if fmt not in FORMATS:
        raise ValidationError("format", f"must be one of {', '.join(FORMATS)}")
    row = (
        await conn.execute(
            text(
                "INSERT INTO statement_imports (bank, statement_date, source, format,"  # noqa: S608
                " content_sha256, data, size_bytes, lines, uploaded_by, created_at)"
                " VALUES (:bank, :day, :source, :fmt, :sha, :data, :size, :lines, :by, :now)"
                " ON CONFLICT (bank, statement_date, content_sha256) DO NOTHING"
                f" RETURNING {_IMPORT_COLUMNS}"
            ),
            {
                "bank": bank,
                "day": statement_date,
                "source": source,
                "fmt": fmt,
                "sha": content_sha256,
                "data": data,
                "size": len(data) if data is not None else 0,
                "lines": lines,
                "by": uploaded_by[:200],
                "now": now,
            },
        )
    ).one_or_none()
    if row is not None:
        return _import(row), True
    existing = (
        await conn.execute(
            text(
                f"SELECT {_IMPORT_COLUMNS} FROM statement_imports"  # noqa: S608
                " WHERE bank = :bank AND statement_date = :day AND content_sha256 = :sha"
            ),
            {"bank": bank, "day": statement_date, "sha": content_sha256},
        )
    ).one()
    return _import(existing), False


async def get_import(conn: AsyncConnection, import_id: int) -> StatementImport:
    row = (
        await conn.execute(
            text(f"SELECT {_IMPORT_COLUMNS} FROM statement_imports WHERE id = :id"),  # noqa: S608
            {"id": import_id},
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"no statement import {import_id}")
    return _import(row)


async def import_data(conn: AsyncConnection, import_id: int) -> bytes:
    """The uploaded file of an import."""
    data = (
        await conn.execute(
            text("SELECT data FROM statement_imports WHERE id = :id"), {"id": import_id}
        )
    ).scalar_one_or_none()
    if data is None:
        raise NotFoundError(f"statement import {import_id} has no stored file")
    return bytes(data)


def lines_sha256(lines: Iterable[LineLike]) -> str:
    """A digest of a statement's content for a fetched statement (the file
    itself is not kept): the same lines give the same digest."""
    digest = hashlib.sha256()
    for line in lines:
        digest.update(
            json.dumps(
                [
                    line.bank_ref,
                    line.booked_at.isoformat(),
                    line.amount_vnd,
                    str(line.direction),
                    line.counterparty,
                    line.content,
                    line.end_to_end_ref,
                ],
                ensure_ascii=False,
            ).encode()
        )
        digest.update(b"\n")
    return digest.hexdigest()


# --- load and match ------------------------------------------------------------------


@dataclass(frozen=True)
class MatchPolicy:
    """Time-based checks of a run (the rules themselves are data)."""

    # A payment debited at least this long ago with no line is missing at
    # the bank (the bank may book a little later than we do).
    missing_grace_seconds: float = 1800.0
    # A payment still in doubt after this long opens a discrepancy.
    in_doubt_seconds: float = 3600.0


@dataclass(frozen=True)
class MatchSummary:
    """What one load did: new lines by class, and what it opened."""

    lines_in_file: int
    new_lines: int
    classes: dict[str, int] = field(default_factory=dict)
    # "<class>:<direction>" → total amount of the new lines
    amounts_vnd: dict[str, int] = field(default_factory=dict)
    # New lines whose money goes to suspense (``post_suspense_batch`` books it).
    suspense_lines: int = 0
    discrepancies_opened: int = 0
    missing_at_bank_opened: int = 0
    in_doubt_opened: int = 0
    auto_resolved: int = 0
    already_loaded: bool = False


def _is_known_line_conflict(error: BaseException) -> bool:
    """A line already loaded, under a statement date the first look for
    known lines did not cover (as raised by psycopg, or wrapped by
    SQLAlchemy)."""
    cause = error.orig if isinstance(error, DBAPIError) else error
    diag = getattr(cause, "diag", None)
    return (
        isinstance(cause, UniqueViolation)
        and diag is not None
        and diag.constraint_name == KNOWN_LINE_CONSTRAINT
    )


async def lock_bank(conn: AsyncConnection, bank: str) -> None:
    """Runs for one bank queue here until the holder commits."""
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended('reconciliation:' || :bank, 0))"),
        {"bank": bank},
    )


async def load_and_match(
    conn: AsyncConnection,
    run: Run,
    statement_import: StatementImport,
    lines: Iterable[LineLike] | None,
    now: datetime,
    policy: MatchPolicy = MatchPolicy(),
    timings: dict[str, float] | None = None,
) -> MatchSummary:
    """Load the statement's lines (``None``: the import was loaded before)
    and classify the new ones; open discrepancies, post suspense entries,
    look for payments missing at the bank or in doubt too long, and close what
    resolved itself. Idempotent: a second call with the same lines writes
    nothing. ``timings`` receives seconds per stage. Every statement of the
    load (and of the rest of the caller's transaction) is cut off after
    ``STATEMENT_TIMEOUT``."""
    watch = Stopwatch(timings)
    bank = run.bank
    await conn.execute(text(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'"))
    await lock_bank(conn, bank)
    clearing = bank_clearing_account(bank)
    await ensure_account(conn, clearing, f"Clearing at {bank}", "asset")
    summary = MatchSummary(lines_in_file=statement_import.lines, new_lines=0, already_loaded=True)
    fresh = (
        await conn.execute(
            text("SELECT loaded_at IS NULL FROM statement_imports WHERE id = :id FOR UPDATE"),
            {"id": statement_import.id},
        )
    ).scalar_one()
    staged: str | None = None  # the table holding the statement's bank references
    missing: int | None = None
    if fresh and lines is not None:
        lines = lines if isinstance(lines, Sequence) else list(lines)
        watch.lap("prepare")
        statements = _match_statements(await load_rules(conn, bank))
        write = _write_params(run, statement_import.id, now)
        if len(lines) >= PARALLEL_LINES_MIN and statements.params["fast"]:

            async def load_big(known_near_only: bool) -> _Written:
                return await _load_big(
                    conn,
                    statements,
                    write,
                    _missing_window(run, now, policy),
                    watch,
                    lines,
                    lambda on, unstaged: _missing_at_bank(on, run, now, policy, unstaged=unstaged),
                    known_near_only=known_near_only,
                )

            try:
                async with conn.begin_nested():
                    written = await load_big(True)
            except Exception as error:
                if not _is_known_line_conflict(error):
                    raise
                watch.lap("known_elsewhere")
                written = await load_big(False)
            missing = written.missing_at_bank
        else:
            staged = "recon_staging"
            await _copy_into_staging(conn, lines)
            watch.lap("copy")
            written = await _match_and_insert(conn, statements, write, watch)
        summary = await _record_load(conn, statement_import.id, len(lines), written, now)
    if missing is None:
        missing = await _missing_at_bank(conn, run, now, policy, staged=staged)
    in_doubt = await _in_doubt(conn, run, now, policy)
    watch.lap("payment_checks")
    resolved = await auto_resolve(conn, bank, now)
    watch.lap("auto_resolve")
    return MatchSummary(
        lines_in_file=summary.lines_in_file,
        new_lines=summary.new_lines,
        classes=summary.classes,
        amounts_vnd=summary.amounts_vnd,
        suspense_lines=summary.suspense_lines,
        discrepancies_opened=summary.discrepancies_opened,
        missing_at_bank_opened=missing,
        in_doubt_opened=in_doubt,
        auto_resolved=resolved,
        already_loaded=summary.already_loaded,
    )


async def _record_load(
    conn: AsyncConnection, import_id: int, lines_in_file: int, written: _Written, now: datetime
) -> MatchSummary:
    """The import marked loaded, and what the load wrote."""
    classes: dict[str, int] = {}
    amounts: dict[str, int] = {}
    for line_class, direction, count, amount_vnd, _in_suspense in written.groups:
        classes[line_class] = classes.get(line_class, 0) + count
        key = f"{line_class}:{direction}"
        amounts[key] = amounts.get(key, 0) + amount_vnd
    new_lines = sum(classes.values())
    await conn.execute(
        text(
            "UPDATE statement_imports SET loaded_at = :now, new_lines = :new, lines = :lines"
            " WHERE id = :id"
        ),
        {"id": import_id, "now": now, "new": new_lines, "lines": lines_in_file},
    )
    return MatchSummary(
        lines_in_file=lines_in_file,
        new_lines=new_lines,
        classes=classes,
        amounts_vnd=amounts,
        suspense_lines=sum(g[2] for g in written.groups if g[4]),
        discrepancies_opened=written.discrepancies_opened,
    )


def _missing_window(run: Run, now: datetime, policy: MatchPolicy) -> tuple[datetime, datetime]:
    """The debits a statement should hold: its day, up to the grace period."""
    day_start, day_end = vietnam_day_utc(run.statement_date)
    return day_start, min(day_end, now - timedelta(seconds=policy.missing_grace_seconds))


async def _missing_at_bank(
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
    day_start, cutoff = _missing_window(run, now, policy)
    if cutoff <= day_start:
        return 0
    if unstaged is not None:
        sql = _MISSING_UNSTAGED_SQL
    else:
        sql = _MISSING_AT_BANK_SQL.format(
            not_staged=_MISSING_NOT_STAGED.format(table=staged) if staged else "",
            per_row="OFFSET 0" if staged else "",
        )
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


async def _in_doubt(conn: AsyncConnection, run: Run, now: datetime, policy: MatchPolicy) -> int:
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
