"""The split path of a big statement (2b): its keys staged, one decision
over them, the plain booked lines written by COPY on the caller's
connection while a second connection from the same engine classifies the
others, in its own transaction, committed before the caller's. Its own
module as it is the one part of the load that runs two connections at
once: the ordering between them (who writes the plain lines left, who looks
for the payments missing at the bank) lives here and nowhere else."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from uuid import UUID

from psycopg.rows import namedtuple_row
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core.errors import ConflictError
from ledger.reconciliation.copy_binary import (
    COPY_NULL,
    OwnFields,
    binary_fields,
    copy_binary,
    format_own_fields,
)
from ledger.reconciliation.lines import (
    OWN_TYPES,
    STAGING_TEMPLATE,
    LineLike,
    check_lines,
    clean_text,
)
from ledger.reconciliation.matching import (
    BANKS_OWN,
    DROP_KNOWN_TEMPLATE,
    FAST,
    Group,
    MatchJob,
    Written,
    classify_rest,
    group_of,
)
from ledger.reconciliation.sql_template import Sql, fill, identifier
from ledger.reconciliation.tuning import (
    TEMP_BUFFERS,
    WORK_MEM,
    LoadPoint,
    LoadTuning,
    Stopwatch,
    set_local,
)

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
# Only the bank's own statements take this path (an uploaded file is loaded
# by the small one), so only the bank's own lines count as known.
_DROP_KNOWN_KEYS_SQL: Final = fill(
    DROP_KNOWN_TEMPLATE, table=identifier("recon_keys"), near=BANKS_OWN
)
_DROP_KNOWN_NEAR_SQL: Final = fill(
    DROP_KNOWN_TEMPLATE,
    table=identifier("recon_keys"),
    near=Sql(f"{BANKS_OWN.text}\n       AND x.statement_date BETWEEN :known_from AND :known_to"),
)

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
_DECIDE_TEMPLATE: Final = """
SELECT string_agg(int4send(pos) || '\\x00000010'::bytea || uuid_send(id)
                  || '\\x00000008'::bytea || int8send(fine_id), ''::bytea)
           FILTER (WHERE fast) AS plain,
       count(*) FILTER (WHERE fast) AS plain_lines,
       coalesce(sum(amount_vnd) FILTER (WHERE fast), 0) AS plain_amount,
       string_agg(int4send(pos) || CASE WHEN id IS NULL THEN '\\x00'::bytea
                                        ELSE '\\x01'::bytea || uuid_send(id) END, ''::bytea)
           FILTER (WHERE pos IS NOT NULL AND NOT fast) AS rest,
       coalesce(array_agg(id) FILTER (WHERE unstaged), '{}') AS unstaged
  FROM (SELECT s.pos, s.amount_vnd, pr.id, pr.fine_id, coalesce({fast}, false) AS fast,
               s.pos IS NULL AND pr.status IN ('succeeded', 'refunded')
                   AND pr.debited_at >= :day_start AND pr.debited_at < :cutoff AS unstaged
          FROM recon_keys s
          FULL JOIN (SELECT * FROM payments WHERE bank = :bank) AS pr
            ON pr.bank_ref = s.bank_ref) AS j
"""
_DECIDE_SQL: Final = fill(_DECIDE_TEMPLATE, fast=FAST)
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
_PLAIN_COPY: Final = (
    f"COPY statement_lines ({_PLAIN_CONSTANT}, {_PLAIN_OWN}, payment_id, fine_id)"
    " FROM STDIN (FORMAT binary)"
)
_PLAIN_FIELDS: Final = len(CONSTANT_TYPES) + len(OWN_TYPES) + 2

# The helper's copy of the other lines (a temporary table of its own
# session), by binary COPY from the fields already formatted for the plain
# lines: their own fields, then position, direction and the payment their
# bank reference found (no row is formatted twice).
_HELPER_REST_DDL: Final = fill(
    STAGING_TEMPLATE,
    table=identifier("recon_rest"),
    more_columns=Sql(",\n    ref_payment uuid"),
)
_HELPER_REST_COPY: Final = (
    f"COPY recon_rest ({_PLAIN_OWN}, pos, credit, ref_payment) FROM STDIN (FORMAT binary)"
)
_REST_FIELDS: Final = len(OWN_TYPES) + 3
REST_POS_CREDIT: Final = struct.Struct(">iii?")  # (4, pos), (1, credit)
REST_PAYMENT: Final = struct.Struct(">i16s")  # (16, uuid)


# What the helper does after its own lines, on its connection and before it
# commits (the payments missing at the bank unless the main connection looked
# for them first, then a share of the plain lines); returns how many payments
# missing at the bank it opened, None if it did not look for them.
HelperTail = Callable[[AsyncConnection, Stopwatch], Awaitable[int | None]]


@dataclass(frozen=True)
class SplitLoad:
    """What the split path needs of the load that takes it."""

    conn: AsyncConnection  # the caller's, in its transaction
    lines: Sequence[LineLike]
    job: MatchJob
    # The payments of the statement's day the bank should have (from, to).
    window: tuple[datetime, datetime]
    # Opens a discrepancy for each of these payments the bank has no line
    # for, on the given connection; returns how many.
    missing_at_bank: Callable[[AsyncConnection, Sequence[UUID]], Awaitable[int]]
    tuning: LoadTuning
    watch: Stopwatch


@dataclass(frozen=True)
class _Decision:
    """What the decision returned: the plain booked lines (``PLAIN_RECORD``
    records), the other lines with the payment their bank reference found,
    and the payments of the day no line booked."""

    plain: bytes
    plain_lines: int
    plain_amount: int
    rest: list[tuple[int, UUID | None]]
    unstaged: list[UUID]


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


async def _copy_keys(conn: AsyncConnection, lines: Sequence[LineLike], lines_max: int) -> None:
    """Stage the lines' keys only (2b). Not analysed: the two statements
    that read the table join it whole, and its size (which the planner reads
    off its pages) is all they need."""
    check_lines(lines, lines_max)
    await set_local(conn, "temp_buffers", TEMP_BUFFERS)
    await conn.execute(text(_KEYS_DDL))
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    async with driver.cursor() as cursor, cursor.copy(_KEYS_COPY) as copy:
        copy.set_types(KEY_TYPES)
        for pos, line in enumerate(lines):
            ref = clean_text(line.bank_ref)
            await copy.write_row((pos, ref, line.amount_vnd, line.direction == "credit"))


async def _copy_rest(
    conn: AsyncConnection,
    own: OwnFields,
    lines: Sequence[LineLike],
    rest: Sequence[tuple[int, UUID | None]],
) -> None:
    """The other lines, whole, into this connection's ``recon_rest``."""
    await set_local(conn, "temp_buffers", TEMP_BUFFERS)
    await set_local(conn, "work_mem", WORK_MEM)
    await conn.execute(text(_HELPER_REST_DDL))
    head = struct.pack(">h", _REST_FIELDS)
    await copy_binary(
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


async def _copy_plain(
    conn: AsyncConnection, own: OwnFields, share: _PlainShare, job: MatchJob
) -> None:
    """Plain booked lines (``PLAIN_RECORD`` records), written matched: slices
    taken from ``share`` until none is left, in one COPY."""
    await job.probe(LoadPoint.COPY_PLAIN, conn)
    raw = await conn.get_raw_connection()
    driver: Any = raw.driver_connection
    write = job.write
    constant = (
        write["import_id"], write["rid"], write["bank"], write["statement_date"], "credit",
        "bank_ref", "matched", write["now"], False, None,
    )  # fmt: skip
    head = struct.pack(">h", _PLAIN_FIELDS)
    head += await binary_fields(driver, CONSTANT_TYPES, constant)

    def rows() -> Iterator[bytes]:
        while (piece := share.take()) is not None:
            for pos, tail in PLAIN_RECORD.iter_unpack(piece):
                yield head + own[pos] + tail

    await copy_binary(conn, _PLAIN_COPY, rows())


async def _run_helper(
    split: SplitLoad, own: OwnFields, rest: Sequence[tuple[int, UUID | None]], tail: HelperTail
) -> Written | None:
    """A second connection classifies the other lines (as the main
    connection decided), writes them with their discrepancies, then does
    ``tail`` (the payments missing at the bank, and the plain lines the main
    connection has not taken yet), in its own transaction, committed; None
    if it cannot see the run (created in the caller's transaction, still
    uncommitted: the discrepancies refer to it). If the main transaction
    then fails, the import is not marked loaded: the re-run finds these
    lines known, counts them as its own (``matching.DROP_KNOWN_TEMPLATE``)
    and does the rest (a payment missing at the bank opens one discrepancy
    however often it is found)."""
    watch = Stopwatch(split.watch.sink, prefix="helper_")
    helper = await split.conn.engine.connect()
    try:
        await helper.begin()
        # The helper's statements are cut off as the main connection's are.
        await set_local(helper, "statement_timeout", split.tuning.statement_timeout)
        visible = await helper.execute(
            text("SELECT 1 FROM reconciliations WHERE id = :rid"), {"rid": split.job.write["rid"]}
        )
        if visible.first() is None:
            return None
        await _copy_rest(helper, own, split.lines, rest)
        watch.lap("copy_rest")
        written = await classify_rest(helper, split.job, watch, [])
        missing = await tail(helper, watch)
        await helper.commit()
        return Written(written.groups, written.discrepancies_opened, missing)
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


async def _decide(split: SplitLoad) -> _Decision:
    """One statement, one snapshot: which lines are plain booked payments,
    and the payments of the day no line booked."""
    await split.job.probe(LoadPoint.DECIDE, split.conn)
    day_start, cutoff = split.window
    params = {**split.job.write, **split.job.statements.params}
    decided = await _one_binary(
        split.conn, _DECIDE_SQL, {**params, "day_start": day_start, "cutoff": cutoff}
    )
    decision = _Decision(
        plain=decided.plain or b"",
        plain_lines=int(decided.plain_lines),
        plain_amount=int(decided.plain_amount),
        rest=_unpack_rest(decided.rest or b""),
        unstaged=list(decided.unstaged),
    )
    if len(decision.plain) != decision.plain_lines * PLAIN_RECORD.size:
        # A NULL in a packed record (never, as the columns are NOT NULL).
        raise ConflictError("a booked payment changed during the statement load; retry")
    return decision


class _Tail:
    """What is left once a connection is done with its own lines: the
    payments missing at the bank, looked for once, by the connection free
    first; then the plain lines not yet written (both connections' tasks run
    on one event loop, so nothing is claimed twice)."""

    def __init__(
        self, split: SplitLoad, own: OwnFields, share: _PlainShare, unstaged: Sequence[UUID]
    ) -> None:
        self._split, self._own, self._share = split, own, share
        self._unstaged = unstaged
        self._missing_claimed = False

    async def find_missing(self, conn: AsyncConnection, watch: Stopwatch) -> int | None:
        """How many payments missing at the bank this call opened; None if
        another connection looks for them."""
        if self._missing_claimed:
            return None
        self._missing_claimed = True
        found = await self._split.missing_at_bank(conn, self._unstaged)
        watch.lap("missing_at_bank")
        return found

    async def run(self, conn: AsyncConnection, watch: Stopwatch) -> int | None:
        """The helper's tail (``HelperTail``)."""
        missing = await self.find_missing(conn, watch)
        if self._share.left:
            await _copy_plain(conn, self._own, self._share, self._split.job)
            watch.lap("copy_plain")
        return missing


async def load_big(split: SplitLoad, *, known_near_only: bool) -> Written:
    """The split path (2b): keys staged, one decision (which also leaves the
    payments no line booked, for ``missing_at_bank``), the other lines and
    those payments to a helper connection, the plain lines by COPY
    meanwhile."""
    conn, watch = split.conn, split.watch
    await _copy_keys(conn, split.lines, split.tuning.lines_per_statement_max)
    watch.lap("copy_keys")
    day = split.job.write["statement_date"]
    near = timedelta(days=KNOWN_NEAR_DAYS)
    known = {**split.job.write, "known_from": day - near, "known_to": day + near}
    drop_known = _DROP_KNOWN_NEAR_SQL if known_near_only else _DROP_KNOWN_KEYS_SQL
    await set_local(conn, "work_mem", WORK_MEM)
    groups = [group_of(row) for row in (await conn.execute(text(drop_known), known)).all()]
    watch.lap("drop_known")
    raw = await conn.get_raw_connection()
    tasks: list[asyncio.Task[Any]] = [
        asyncio.create_task(format_own_fields(raw.driver_connection, split.lines))
    ]
    try:
        decision = await _decide(split)
        watch.lap("decide")
        own: OwnFields = await tasks[0]
        watch.lap("format_rows")
        return await _write_both(split, decision, own, groups, tasks)
    except BaseException:
        for task in tasks:
            task.cancel()  # the helper's transaction rolls back
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        raise


async def _write_both(
    split: SplitLoad,
    decision: _Decision,
    own: OwnFields,
    groups: list[Group],
    tasks: list[asyncio.Task[Any]],
) -> Written:
    """The plain lines by COPY on this connection while the helper, started
    at once (its lines are few, its steps many; then it looks for the
    payments missing at the bank, and shares what is left of the plain
    lines), classifies the others. The helper's task joins ``tasks``, which
    the caller cancels if anything fails."""
    conn, watch = split.conn, split.watch
    share = _PlainShare(decision.plain, split.tuning.plain_slice_lines)
    tail = _Tail(split, own, share, decision.unstaged)
    helper = asyncio.create_task(_run_helper(split, own, decision.rest, tail.run))
    tasks.append(helper)
    await _copy_plain(conn, own, share, split.job)
    watch.lap("copy_plain")
    if decision.plain_lines:
        groups.append(("matched", "credit", decision.plain_lines, decision.plain_amount, False))
    # Done with the plain lines while the helper is still busy with its
    # own: this connection looks for the payments missing at the bank.
    missing = None if helper.done() else await tail.find_missing(conn, watch)
    by_helper = await helper
    if by_helper is None:  # the run is not committed yet: this connection does it
        await _copy_rest(conn, own, split.lines, decision.rest)
        written = await classify_rest(conn, split.job, watch, groups)
        if missing is None:
            missing = await tail.find_missing(conn, watch)
        return Written(written.groups, written.discrepancies_opened, missing)
    watch.lap("wait_for_helper")
    return Written(
        groups + by_helper.groups,
        by_helper.discrepancies_opened,
        by_helper.missing_at_bank if missing is None else missing,
    )
