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
For a big statement (``tuning.PARALLEL_LINES_MIN``) only the lines' keys are
staged; one statement decides which lines are plain booked payments, the
caller's connection writes those by COPY, and a second connection from the
same engine classifies and writes the others, in its own transaction,
committed before the caller's; a re-run completes an import whose main
transaction failed after that (``matching.DROP_KNOWN_SQL``).

This module holds only the order of the steps; each step has a module of
its own, as each is tuned on its own (their comments hold the reasons and
the measurements):

* ``lines``: statement lines as the loader takes them, the small path's
  staging COPY;
* ``rules``: the match rules in force for a bank;
* ``matching``: the matching statements (steps 1-6) and the rule → SQL
  builder;
* ``bulk_load`` and ``copy_binary``: the split path of a big statement (two
  connections, binary COPY of rows formatted in Python);
* ``payment_checks``: payments missing at the bank or in doubt too long, and
  what resolved itself;
* ``suspense``: the suspense entries of unidentified money, after the load;
* ``runs``: runs and statement imports;
* ``tuning``: session settings, thresholds and the stopwatch.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from psycopg.errors import UniqueViolation
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core.postings import bank_clearing_account, ensure_account
from ledger.reconciliation.bulk_load import KNOWN_LINE_CONSTRAINT, load_big
from ledger.reconciliation.lines import (
    LineLike,
    copy_into_staging,
)
from ledger.reconciliation.matching import (
    Written,
    match_and_insert,
    match_statements,
    write_params,
)
from ledger.reconciliation.payment_checks import (
    MatchPolicy,
    auto_resolve,
    in_doubt,
    missing_at_bank,
    missing_window,
)
from ledger.reconciliation.rules import load_rules
from ledger.reconciliation.runs import Run, StatementImport
from ledger.reconciliation.tuning import (
    PARALLEL_LINES_MIN,
    STATEMENT_TIMEOUT,
    Stopwatch,
    set_local,
)

DEFAULT_POLICY: Final = MatchPolicy()


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
    policy: MatchPolicy = DEFAULT_POLICY,
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
    await set_local(conn, "statement_timeout", STATEMENT_TIMEOUT)
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
        statements = match_statements(await load_rules(conn, bank))
        write = write_params(run, statement_import.id, now)
        if len(lines) >= PARALLEL_LINES_MIN and statements.params["fast"]:

            async def split_load(known_near_only: bool) -> Written:
                return await load_big(
                    conn,
                    statements,
                    write,
                    missing_window(run, now, policy),
                    watch,
                    lines,
                    lambda on, unstaged: missing_at_bank(on, run, now, policy, unstaged=unstaged),
                    known_near_only=known_near_only,
                )

            try:
                async with conn.begin_nested():
                    written = await split_load(True)
            except Exception as error:
                if not _is_known_line_conflict(error):
                    raise
                watch.lap("known_elsewhere")
                written = await split_load(False)
            missing = written.missing_at_bank
        else:
            staged = "recon_staging"
            await copy_into_staging(conn, lines)
            watch.lap("copy")
            written = await match_and_insert(conn, statements, write, watch)
        summary = await _record_load(conn, statement_import.id, len(lines), written, now)
    if missing is None:
        missing = await missing_at_bank(conn, run, now, policy, staged=staged)
    doubtful = await in_doubt(conn, run, now, policy)
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
        in_doubt_opened=doubtful,
        auto_resolved=resolved,
        already_loaded=summary.already_loaded,
    )


async def _record_load(
    conn: AsyncConnection, import_id: int, lines_in_file: int, written: Written, now: datetime
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
