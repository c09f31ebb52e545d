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
* ``unknown``: nothing identifies it;
* ``unconfirmed``: a line of a file a person uploaded that would be any of
  the above but ``matched``: a claim, which acts on nothing and holds no
  money until the bank confirms it (``claims``).

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
* ``claims``: an uploaded file's lines that would move or hold money, made
  claims waiting for the bank's word (an upload's own step, after its lines
  are written; the bank's statements never take it);
* ``suspense``: the suspense entries of unidentified money, after the load;
* ``runs``: runs and statement imports;
* ``tuning``: session settings, thresholds and the stopwatch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final
from uuid import UUID

from psycopg.errors import UniqueViolation
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core.postings import bank_clearing_account, ensure_account
from ledger.reconciliation.bulk_load import KNOWN_LINE_CONSTRAINT, SplitLoad, load_big
from ledger.reconciliation.claims import Claims, claim_upload, reclassify
from ledger.reconciliation.lines import (
    LineLike,
    copy_into_staging,
)
from ledger.reconciliation.matching import (
    MatchJob,
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
    DEFAULT_TUNING,
    LoadPoint,
    LoadTuning,
    Probe,
    Stopwatch,
    no_probe,
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
    *,
    tuning: LoadTuning = DEFAULT_TUNING,
    probe: Probe = no_probe,
) -> MatchSummary:
    """Load the statement's lines (``None``: the import was loaded before)
    and classify the new ones; open discrepancies, post suspense entries,
    look for payments missing at the bank or in doubt too long, and close what
    resolved itself. Idempotent: a second call with the same lines writes
    nothing. ``timings`` receives seconds per stage; ``probe`` is called at
    every ``LoadPoint``. Every statement of the load (and of the rest of the
    caller's transaction) is cut off after ``tuning.statement_timeout``."""
    watch = Stopwatch(timings)
    bank = run.bank
    await set_local(conn, "statement_timeout", tuning.statement_timeout)
    await lock_bank(conn, bank)
    clearing = bank_clearing_account(bank)
    await ensure_account(conn, clearing, f"Clearing at {bank}", "asset")
    fresh = (
        await conn.execute(
            text("SELECT loaded_at IS NULL FROM statement_imports WHERE id = :id FOR UPDATE"),
            {"id": statement_import.id},
        )
    ).scalar_one()
    look = _MissingLook(run, now, policy, probe)
    loaded = _Loaded(
        MatchSummary(lines_in_file=statement_import.lines, new_lines=0, already_loaded=True)
    )
    if fresh and lines is not None:
        lines = lines if isinstance(lines, Sequence) else list(lines)
        watch.lap("prepare")
        job = MatchJob(
            match_statements(await load_rules(conn, bank)),
            write_params(run, statement_import.id, now),
            probe,
            uploaded=statement_import.source == "upload",
        )
        loaded = await _load_lines(conn, job, lines, look, tuning, watch)
    missing = loaded.missing_at_bank
    if missing is None:
        missing = await look(conn, staged=loaded.staged)
    doubtful = await in_doubt(conn, run, now, policy)
    watch.lap("payment_checks")
    await probe(LoadPoint.AUTO_RESOLVE, conn)
    resolved = await auto_resolve(conn, bank, now)
    watch.lap("auto_resolve")
    return replace(
        loaded.summary,
        missing_at_bank_opened=missing,
        in_doubt_opened=doubtful,
        auto_resolved=resolved,
    )


@dataclass(frozen=True)
class _MissingLook:
    """Looks for the payments missing at the bank (``missing_at_bank``),
    with the probe called around it."""

    run: Run
    now: datetime
    policy: MatchPolicy
    probe: Probe

    async def __call__(
        self,
        conn: AsyncConnection,
        *,
        staged: str | None = None,
        unstaged: Sequence[UUID] | None = None,
    ) -> int:
        await self.probe(LoadPoint.MISSING_AT_BANK, conn)
        found = await missing_at_bank(
            conn, self.run, self.now, self.policy, staged=staged, unstaged=unstaged
        )
        await self.probe(LoadPoint.MISSING_AT_BANK_DONE, conn)
        return found


@dataclass(frozen=True)
class _Loaded:
    summary: MatchSummary
    # Payments missing at the bank opened while loading (None: not looked for)
    missing_at_bank: int | None = None
    # The table that holds the statement's bank references, if staged whole
    staged: str | None = None


async def _load_lines(
    conn: AsyncConnection,
    job: MatchJob,
    lines: Sequence[LineLike],
    look: _MissingLook,
    tuning: LoadTuning,
    watch: Stopwatch,
) -> _Loaded:
    """Write the statement's new lines, classified, by the path its size
    takes, and mark the import loaded. An uploaded file always takes the
    one-connection path: its lines are made claims (``claims``) before
    anything else can see them."""
    small = len(lines) < tuning.parallel_lines_min or not job.statements.params["fast"]
    if small or job.uploaded:
        await copy_into_staging(conn, lines, tuning.lines_per_statement_max)
        watch.lap("copy")
        written = await match_and_insert(conn, job, watch)
        claims = await claim_upload(conn, job.write) if job.uploaded else None
        summary = await _record_load(conn, job.write, len(lines), written, claims)
        return _Loaded(summary, staged="recon_staging")
    split = SplitLoad(
        conn,
        lines,
        job,
        missing_window(look.run, look.now, look.policy),
        lambda on, unstaged: look(on, unstaged=unstaged),
        tuning,
        watch,
    )
    try:
        async with conn.begin_nested():
            written = await load_big(split, known_near_only=True)
    except Exception as error:
        if not _is_known_line_conflict(error):
            raise
        watch.lap("known_elsewhere")
        written = await load_big(split, known_near_only=False)
    summary = await _record_load(conn, job.write, len(lines), written)
    return _Loaded(summary, missing_at_bank=written.missing_at_bank)


async def _record_load(
    conn: AsyncConnection,
    write: Mapping[str, Any],
    lines_in_file: int,
    written: Written,
    claims: Claims | None = None,
) -> MatchSummary:
    """The import marked loaded, and what the load wrote (an upload's
    claimed lines as ``unconfirmed``, nothing of it in suspense)."""
    classes: dict[str, int] = {}
    amounts: dict[str, int] = {}
    for line_class, direction, count, amount_vnd, _in_suspense in written.groups:
        classes[line_class] = classes.get(line_class, 0) + count
        key = f"{line_class}:{direction}"
        amounts[key] = amounts.get(key, 0) + amount_vnd
    if claims is not None:
        classes, amounts = reclassify(classes, amounts, claims)
    new_lines = sum(classes.values())
    await conn.execute(
        text(
            "UPDATE statement_imports SET loaded_at = :now, new_lines = :new, lines = :lines"
            " WHERE id = :id"
        ),
        {"id": write["import_id"], "now": write["now"], "new": new_lines, "lines": lines_in_file},
    )
    return MatchSummary(
        lines_in_file=lines_in_file,
        new_lines=new_lines,
        classes=classes,
        amounts_vnd=amounts,
        suspense_lines=0 if claims is not None else sum(g[2] for g in written.groups if g[4]),
        discrepancies_opened=written.discrepancies_opened + (claims.opened if claims else 0),
    )
