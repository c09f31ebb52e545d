"""The matching statements: steps 1 to 6 of a load, set-based SQL over the
statement's lines (the small path runs them all on one connection; the
split path, ``bulk_load``, runs steps 3 to 6 for the lines that are not
plain booked payments), and the builder that turns the rules in force into
the rule-dependent statements. The statements are kept together, in step
order, because each one's plan depends on what the one before leaves (the
comments say which, and what was measured); they are tuned as a whole."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from domain.formats import ACCOUNT_SQL_REGEX
from domain.keys import external_debit_key_sql
from ledger.reconciliation.rules import RULES, MatchRule
from ledger.reconciliation.runs import Run
from ledger.reconciliation.sql_template import EMPTY, Sql, fill, identifier, literal
from ledger.reconciliation.tuning import (
    WORK_MEM,
    LoadPoint,
    Probe,
    Stopwatch,
    set_local,
)

LINE_CLASSES: Final = (
    "matched",
    "healed",
    "duplicate",
    "amount_mismatch",
    "unknown",
    # An uploaded line that would act or hold money (``claims``).
    "unconfirmed",
)
DECISION_WINDOW_CHARS: Final = 6  # the index fines_decision_anchor is on left(.., 6)

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
# Later rules look a line up only if no earlier rule linked it: ``unlinked`` is
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
# it is counted in this load's summary. ``table`` holds the statement's
# lines (or keys), ``near`` narrows the look (to some statement dates in
# ``bulk_load``; to the bank's own lines for a statement the bank gave us, so
# that a line a person uploaded under the same reference, a claim, never
# hides the bank's own: the partial unique index on (bank, bank_ref) of the
# bank's lines has the same predicate, so the lookup is the one it was).
DROP_KNOWN_TEMPLATE: Final = """
WITH dropped AS (
    DELETE FROM {table} s
     USING statement_lines x
     WHERE x.bank = :bank AND x.bank_ref = s.bank_ref{near}
    RETURNING x.import_id, x.class, x.direction, x.amount_vnd, x.in_suspense
)
SELECT class AS class_, direction, count(*) AS lines, sum(amount_vnd) AS amount_vnd, in_suspense
  FROM dropped
 WHERE NOT EXISTS (SELECT 1 FROM statement_imports i
                    WHERE i.id = dropped.import_id AND i.loaded_at IS NOT NULL)
 GROUP BY class, direction, in_suspense
"""
BANKS_OWN: Final = Sql("\n       AND NOT x.uploaded")
_DROP_KNOWN_SQL: Final = fill(
    DROP_KNOWN_TEMPLATE, table=identifier("recon_staging"), near=BANKS_OWN
)
# An uploaded file: a line known in any way (the bank's, or uploaded before)
# is not loaded again.
_DROP_ANY_KNOWN_SQL: Final = fill(
    DROP_KNOWN_TEMPLATE, table=identifier("recon_staging"), near=EMPTY
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
# The columns a load writes of a line (steps 2 and 6).
_LINE_COLUMNS: Final = Sql("""
        import_id, reconciliation_id, bank, bank_ref, statement_date, booked_at, amount_vnd,
        direction, counterparty, content, content_key, content_ref, end_to_end_ref, raw,
        source_line, rule, payment_id, fine_id, class, decided_at, in_suspense, action""")
FAST: Final = Sql(
    ":fast AND s.credit AND pr.settles_fine AND abs(s.amount_vnd - pr.amount_vnd) <= :tol_bank_ref"
)
_SPLIT_TEMPLATE: Final = """
WITH rest AS (
    INSERT INTO recon_rest
    SELECT s.*, pr.id
      FROM recon_staging s
      LEFT JOIN payments pr ON pr.bank = :bank AND pr.bank_ref = s.bank_ref
     WHERE NOT coalesce({fast}, false)
    RETURNING 1
), fast AS (
    INSERT INTO statement_lines ({line_columns})
    SELECT :import_id, :rid, :bank, s.bank_ref, :statement_date, s.booked_at, s.amount_vnd,
           'credit', s.counterparty, s.content, s.content_key, s.content_ref,
           s.end_to_end_ref, s.raw, s.source_line, 'bank_ref', pr.id, pr.fine_id,
           'matched', :now, false, NULL
      FROM recon_staging s
      JOIN payments pr ON pr.bank = :bank AND pr.bank_ref = s.bank_ref
     WHERE {fast}
    RETURNING amount_vnd
)
SELECT f.lines, f.amount_vnd, (SELECT count(*) FROM rest) AS rest_lines
  FROM (SELECT count(*) AS lines, coalesce(sum(amount_vnd), 0) AS amount_vnd FROM fast) AS f
"""
_SPLIT_SQL: Final = fill(_SPLIT_TEMPLATE, fast=FAST, line_columns=_LINE_COLUMNS)

# 3. The other lines linked to payments by the enabled rules, in priority
# order. Only what the next steps read is kept: the last step writes each
# line's own fields from recon_rest, by position.
_LINK_TEMPLATE: Final = """
CREATE TEMP TABLE recon_linked ON COMMIT DROP AS
SELECT s.pos, s.bank_ref, s.booked_at, s.credit, s.amount_vnd, s.content_key, s.ref_payment,
       s.counterparty ~ {account_regex} AS payer_known,
       px.id AS ext_payment,
       CASE WHEN s.credit THEN {credit_link} ELSE {debit_link} END AS link_payment,
       CASE WHEN s.credit THEN {credit_rule} ELSE {debit_rule} END AS link_rule,
       {refund_entry} AS refund_entry
  FROM recon_rest s
  LEFT JOIN LATERAL (
      SELECT px.id FROM payments px
       WHERE s.ref_payment IS NULL
         AND px.debit_key = {external_debit_key}
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
           AND t.p_debit_key = {external_debit_key}
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
_INSERT_TEMPLATE: Final = """
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
    INSERT INTO statement_lines ({line_columns})
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
_INSERT_SQL: Final = fill(_INSERT_TEMPLATE, line_columns=_LINE_COLUMNS)


@dataclass(frozen=True)
class MatchStatements:
    link: str
    stage: str
    params: dict[str, Any]


def match_statements(rules: Mapping[str, MatchRule]) -> MatchStatements:
    """The rule-dependent statements and their parameters. Only rule names
    from ``RULES`` reach the SQL text (no user input)."""
    assert set(rules) <= set(RULES), rules
    enabled = sorted((r for r in rules.values() if r.enabled), key=lambda r: r.priority)
    credit = [r.rule for r in enabled if r.rule in _CREDIT_LINK]
    refunds = any(r.rule == "refund_ref" for r in enabled)
    link = fill(
        _LINK_TEMPLATE,
        **_credit_sql(credit),
        **_debit_sql(refunds),
        account_regex=literal(ACCOUNT_SQL_REGEX),
        external_debit_key=Sql(external_debit_key_sql(":bank", "s.bank_ref")),
    )
    cases = " ".join(f"WHEN '{r.rule}' THEN :tol_{r.rule}" for r in enabled)
    stage = fill(
        _STAGE_TEMPLATE,
        tolerance=Sql(f"CASE fd.rule {cases} ELSE 0 END" if cases else "0"),
        external_debit_key=Sql(external_debit_key_sql(":bank", "t.bank_ref")),
    )
    decision = rules.get("decision_number")
    params: dict[str, Any] = {f"tol_{r.rule}": r.amount_tolerance_vnd for r in enabled}
    params.setdefault("tol_decision_number", 0)
    params.setdefault("tol_bank_ref", 0)
    params["decision_enabled"] = decision is not None and decision.enabled
    params["fast"] = credit[:1] == ["bank_ref"]
    params["truncated_min"] = (
        decision.truncated_chars_min if decision is not None else DECISION_WINDOW_CHARS
    )
    return MatchStatements(link=link, stage=stage, params=params)


def _credit_sql(credit: Sequence[str]) -> dict[str, Sql]:
    """The credit rules' links, in priority order: the payment, the rule
    that found it, and the lookups of the rules after the first."""
    joins: list[str] = []
    for index, rule in enumerate(credit):
        if rule in _LATERAL:
            earlier = [f"{_CREDIT_LINK[r]} IS NULL" for r in credit[:index]]
            unlinked = Sql(" AND ".join(earlier) or "true")
            joins.append(fill(_LATERAL[rule], unlinked=unlinked))
    if not credit:
        return {"credit_link": Sql("NULL::uuid"), "credit_rule": Sql("NULL"), "joins": EMPTY}
    whens = " ".join(f"WHEN {_CREDIT_LINK[r]} IS NOT NULL THEN '{r}'" for r in credit)
    return {
        "credit_link": Sql(f"coalesce({', '.join(_CREDIT_LINK[r] for r in credit)}, NULL)"),
        "credit_rule": Sql(f"CASE {whens} END"),
        "joins": Sql(" ".join(joins)),
    }


def _debit_sql(refunds: bool) -> dict[str, Sql]:
    """Money out: linked to one of our refunds, if that rule is on."""
    if not refunds:
        return {
            "debit_link": Sql("NULL::uuid"),
            "debit_rule": Sql("NULL"),
            "refund_entry": Sql("NULL::bigint"),
        }
    return {
        "debit_link": Sql(_REFUND_LINK),
        "debit_rule": Sql(
            f"CASE WHEN {_REFUND_LINK} IS NOT NULL OR {_REFUND_ENTRY} IS NOT NULL"
            " THEN 'refund_ref' END"
        ),
        "refund_entry": Sql(_REFUND_ENTRY),
    }


# (class, direction, lines, amount_vnd, in_suspense) of lines written
Group = tuple[str, str, int, int, bool]


def group_of(row: Any) -> Group:
    """A row of a statement that counts the lines it wrote (or dropped)."""
    return (row.class_, row.direction, int(row.lines), int(row.amount_vnd), bool(row.in_suspense))


@dataclass(frozen=True)
class Written:
    groups: list[Group]
    discrepancies_opened: int
    # Payments missing at the bank opened meanwhile (None: not looked for yet)
    missing_at_bank: int | None = None


def write_params(run: Run, import_id: int, now: datetime) -> dict[str, Any]:
    return {
        "bank": run.bank,
        "rid": run.id,
        "import_id": import_id,
        "statement_date": run.statement_date,
        "now": now,
    }


@dataclass(frozen=True)
class MatchJob:
    """What the matching steps need, on whichever connection runs them."""

    statements: MatchStatements
    write: dict[str, Any]  # the statement's fields of every line (``write_params``)
    probe: Probe
    # A file a person uploaded, not the bank's own statement (``claims``).
    uploaded: bool = False


async def match_and_insert(conn: AsyncConnection, job: MatchJob, watch: Stopwatch) -> Written:
    """Steps 1-6 over the staging table, on this connection: every new line
    written, classified, with its discrepancy."""
    await set_local(conn, "work_mem", WORK_MEM)
    drop_known = _DROP_ANY_KNOWN_SQL if job.uploaded else _DROP_KNOWN_SQL
    result = await conn.execute(text(drop_known), job.write)
    groups = [group_of(row) for row in result.all()]
    watch.lap("drop_known")
    await conn.execute(text(_REST_DDL))
    split = (await conn.execute(text(_SPLIT_SQL), {**job.write, **job.statements.params})).one()
    if split.lines:
        groups.append(("matched", "credit", int(split.lines), int(split.amount_vnd), False))
    watch.lap("insert_fast")
    return await classify_rest(conn, job, watch, groups)


async def classify_rest(
    conn: AsyncConnection, job: MatchJob, watch: Stopwatch, groups: list[Group]
) -> Written:
    """Steps 3-6 over recon_rest, on ``conn`` (main or helper connection).

    The temporary tables are not analysed: the planner then sizes them from
    their pages, and reads the lines in position order, looking each one's
    payment and fine up by index. With statistics it hashed them and
    memoised the lookups instead; for 110,000 lines that took twice as long,
    and the four ANALYZE runs cost another 0.35 s (bench/recon.py)."""
    await job.probe(LoadPoint.CLASSIFY, conn)
    statements = job.statements
    bank = {"bank": job.write["bank"]}
    await conn.execute(text(statements.link), {**bank, **statements.params})
    watch.lap("link")
    await conn.execute(text(_DECISION_SQL), statements.params)
    watch.lap("decision_numbers")
    await conn.execute(text(statements.stage), {**bank, **statements.params})
    watch.lap("classify")
    opened = 0
    for row in (await conn.execute(text(_INSERT_SQL), job.write)).all():
        groups.append(group_of(row))
        opened = int(row.opened)
    watch.lap("insert")
    return Written(groups=groups, discrepancies_opened=opened)
