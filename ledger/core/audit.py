"""The audit log: append-only and hash-chained.

Every money movement and every manual decision appends one row, in the
transaction of the action it records (so both commit or neither does). Each
row's ``hash`` is SHA-256 over a canonical serialisation of its id, time,
actor, action, subject, detail and the previous row's hash; the one-row
``audit_head`` holds the last id and hash. Appends lock the head row, so they
are strictly ordered under concurrency and ids have no gaps.

The database refuses UPDATE, DELETE and TRUNCATE on the log and any insert
that does not continue the chain at the head. ``verify_audit_chain``
recomputes the chain and names every row that was changed, deleted or moved
by someone who got around those triggers. The chain is plain SHA-256, which
whoever can write the database can recompute after a rewrite: the worker
therefore anchors the head with a keyed MAC (``ledger.core.audit_anchor``),
the key never being in the database.

Lock order: the head is a global lock held until commit, so append last in a
transaction (after every other row lock it takes); a transaction that takes
row locks after its first append can deadlock with one that appends while
holding those rows.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t
from ledger.core.rows import columns, row_mapper

GENESIS_HASH: Final = "0" * 64
HASH_VERSION: Final = 1
DETAIL_BYTES_MAX: Final = 16 * 1024
DETAIL_DEPTH_MAX: Final = 8
PAGE_SIZE_DEFAULT: Final = 1_000
PAGE_SIZE_MAX: Final = 10_000
PROBLEMS_MAX: Final = 1_000
# Rows one ``append_audit_many`` appends at most (a batch of bookings).
APPEND_MANY_MAX: Final = 1_000
_PAST_HEAD_LISTED_MAX: Final = 100
ACTOR_CHARS_MAX: Final = 200
SUBJECT_ID_CHARS_MAX: Final = 200
_ACTION_RE: Final = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*")
_SUBJECT_TYPE_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,39}")

SYSTEM_SAGA: Final = "system:saga"


@dataclass(frozen=True)
class AuditEntry:
    """An ``audit_log`` row."""

    id: int
    at: datetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    detail: dict[str, Any]
    prev_hash: str
    hash: str


_COLUMNS: Final = columns(AuditEntry, t.audit_log)
_entry: Final = row_mapper(AuditEntry)


def check_json_value(value: object, where: str = "detail", depth: int = 0) -> None:
    """Only values that survive a jsonb round trip unchanged, so the hash of
    what was written equals the hash of what is read back: no floats (money
    is int), no NUL characters (jsonb refuses them), string keys only."""
    if depth > DETAIL_DEPTH_MAX:
        raise ValueError(f"{where} is nested deeper than {DETAIL_DEPTH_MAX}")
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where} contains a NUL character")
        return
    if isinstance(value, list | tuple):
        for i, item in enumerate(value):
            check_json_value(item, f"{where}[{i}]", depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str) or "\x00" in key:
                raise ValueError(f"{where} has a key that is not a plain string")
            check_json_value(item, f"{where}.{key}", depth + 1)
        return
    raise ValueError(f"{where} is a {type(value).__name__}; use str, int, bool")


def canonical_time(at: datetime) -> str:
    """UTC, always with microseconds (PostgreSQL keeps exactly that)."""
    if at.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_hash(
    entry_id: int,
    at: datetime,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    detail: dict[str, Any],
    prev_hash: str,
) -> str:
    """SHA-256 (hex) over the canonical JSON of every field of a row but its
    own hash. The same function writes and verifies."""
    body = _canonical(
        [
            HASH_VERSION,
            entry_id,
            canonical_time(at),
            actor,
            action,
            subject_type,
            subject_id,
            detail,
            prev_hash,
        ]
    )
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def hash_of(entry: AuditEntry) -> str:
    """``entry_hash`` of a row's fields (its own ``hash`` aside)."""
    return entry_hash(
        entry.id,
        entry.at,
        entry.actor,
        entry.action,
        entry.subject_type,
        entry.subject_id,
        entry.detail,
        entry.prev_hash,
    )


def _validate(actor: str, action: str, subject_type: str, subject_id: str) -> None:
    if not 1 <= len(actor) <= ACTOR_CHARS_MAX:
        raise ValueError(f"audit actor must be 1..{ACTOR_CHARS_MAX} characters")
    if len(action) > 100 or not _ACTION_RE.fullmatch(action):
        raise ValueError(f"audit action {action!r} must look like 'payment.settled'")
    if not _SUBJECT_TYPE_RE.fullmatch(subject_type):
        raise ValueError(f"audit subject_type {subject_type!r} must look like 'payment'")
    if not 1 <= len(subject_id) <= SUBJECT_ID_CHARS_MAX:
        raise ValueError(f"audit subject_id must be 1..{SUBJECT_ID_CHARS_MAX} characters")


# Built once: every money movement appends, and building a Core statement
# per call costs more CPU than running it.
_HEAD_FOR_UPDATE = (
    select(t.audit_head.c.last_id, t.audit_head.c.last_hash)
    .where(t.audit_head.c.singleton)
    .with_for_update()
)
_INSERT_ENTRY = t.audit_log.insert()


@dataclass(frozen=True)
class AuditDraft:
    """A row still to append (``append_audit_many``): what ``append_audit``
    takes as arguments."""

    actor: str
    action: str
    subject_type: str
    subject_id: str
    now: datetime
    detail: dict[str, Any] = field(default_factory=dict)


def _checked(draft: AuditDraft) -> AuditDraft:
    """``draft`` with a copy of its detail, or ``ValueError``."""
    detail = dict(draft.detail)
    _validate(draft.actor, draft.action, draft.subject_type, draft.subject_id)
    check_json_value(detail, "detail")
    if len(_canonical(detail).encode()) > DETAIL_BYTES_MAX:
        raise ValueError(f"audit detail of {draft.action} is larger than {DETAIL_BYTES_MAX} bytes")
    return replace(draft, detail=detail)


async def append_audit(
    conn: AsyncConnection,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one row in the caller's transaction (it commits or rolls back
    with the action it records). Holds the chain's head lock until commit:
    call it after the transaction's other row locks."""
    draft = AuditDraft(actor, action, subject_type, subject_id, now, detail or {})
    (entry,) = await append_audit_many(conn, [draft])
    return entry


async def append_audit_many(
    conn: AsyncConnection, drafts: Sequence[AuditDraft]
) -> list[AuditEntry]:
    """Append ``drafts`` in order, chained one to the next, with one head
    lock and one INSERT: the appends of a batch of bookings
    (``ledger.payments.settle_batch``). Every draft is checked before the
    head is locked, so a bad one appends nothing. Same rules as
    ``append_audit``: the caller's transaction, the head lock held until
    commit, called after every other row lock."""
    if not 1 <= len(drafts) <= APPEND_MANY_MAX:
        raise ValueError(f"append 1..{APPEND_MANY_MAX} audit rows at once, not {len(drafts)}")
    checked = [_checked(draft) for draft in drafts]
    head = (await conn.execute(_HEAD_FOR_UPDATE)).one()
    entry_id, prev_hash = int(head.last_id), str(head.last_hash)
    entries: list[AuditEntry] = []
    for draft in checked:
        entry_id += 1
        unhashed = AuditEntry(
            entry_id,
            draft.now.astimezone(UTC),
            draft.actor,
            draft.action,
            draft.subject_type,
            draft.subject_id,
            draft.detail,
            prev_hash,
            hash="",
        )
        entries.append(replace(unhashed, hash=hash_of(unhashed)))
        prev_hash = entries[-1].hash
    # In id order: the table's trigger checks that each row continues the
    # head it moved for the row before. (An entry's fields are the row's
    # columns, by name.)
    rows = [vars(e) for e in entries]
    await conn.execute(_INSERT_ENTRY, rows[0] if len(rows) == 1 else rows)
    return entries


async def audit_trail(
    conn: AsyncConnection,
    subjects: list[tuple[str, str]],
    limit: int = 500,
) -> list[AuditEntry]:
    """The rows about any of ``subjects`` ((type, id) pairs), oldest first."""
    assert 1 <= limit <= PAGE_SIZE_MAX, limit
    if not subjects:
        return []
    log = t.audit_log
    conditions = [
        (log.c.subject_type == kind) & (log.c.subject_id == sid) for kind, sid in subjects
    ]
    query = select(*_COLUMNS).where(or_(*conditions))
    rows = (await conn.execute(query.order_by(log.c.id).limit(limit))).all()
    return [_entry(r) for r in rows]


# --- verification ------------------------------------------------------------

CHANGED: Final = "changed"  # the row's content does not match its hash
MISSING: Final = "missing"  # ids are missing: rows were deleted
REORDERED: Final = "reordered"  # the row's predecessor in the chain is another row
BROKEN_LINK: Final = "broken_link"  # the row points at a hash no row has
HEAD: Final = "head"  # the head does not match the last row, or rows lie past it


@dataclass(frozen=True)
class AuditProblem:
    row_id: int
    kind: str
    message: str


@dataclass(frozen=True)
class AuditReport:
    rows_checked: int
    head_id: int
    head_hash: str
    problems: tuple[AuditProblem, ...]
    problems_total: int  # more than ``len(problems)`` when the list was capped

    @property
    def ok(self) -> bool:
        return self.problems_total == 0


class _Problems:
    def __init__(self) -> None:
        self.items: list[AuditProblem] = []
        self.total = 0

    def add(self, row_id: int, kind: str, message: str) -> None:
        self.total += 1
        if len(self.items) < PROBLEMS_MAX:
            self.items.append(AuditProblem(row_id, kind, message))


class _RecentHashes:
    """Stored hashes of the last rows seen, to tell a moved row (its
    predecessor is elsewhere nearby) from a forged link; bounded."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._ids: OrderedDict[str, int] = OrderedDict()

    def add(self, digest: str, row_id: int) -> None:
        self._ids[digest] = row_id
        self._ids.move_to_end(digest)
        while len(self._ids) > self._size:
            self._ids.popitem(last=False)

    def get(self, digest: str) -> int | None:
        return self._ids.get(digest)


async def _read_head(conn: AsyncConnection) -> tuple[int, str]:
    row = (
        await conn.execute(
            select(t.audit_head.c.last_id, t.audit_head.c.last_hash).where(t.audit_head.c.singleton)
        )
    ).one_or_none()
    if row is None:
        return -1, ""
    return int(row.last_id), str(row.last_hash)


async def verify_audit_chain(
    conn: AsyncConnection,
    *,
    page_size: int = PAGE_SIZE_DEFAULT,
    after: tuple[int, str] = (0, GENESIS_HASH),
) -> AuditReport:
    """Recompute the chain from the first row to the head, in pages (memory
    is bounded by the page size). Finds rows whose content was changed,
    deleted rows (id gaps, a missing tail), rows moved out of order, and a
    head that does not match the last row. Rows appended while this runs are
    left for the next run.

    ``after``: start past this row (id, hash) instead of the genesis, for a
    check of only the rows since a trusted point (an anchor, see
    ``ledger.core.audit_anchor``)."""
    assert 1 <= page_size <= PAGE_SIZE_MAX, page_size
    problems = _Problems()
    head_id, head_hash = await _read_head(conn)
    if head_id < 0:
        problems.add(0, HEAD, "the audit head row is missing")
    recent = _RecentHashes(2 * page_size)
    (prev_id, prev_hash), checked = after, 0
    while True:
        rows = [
            _entry(r)
            for r in (
                await conn.execute(
                    select(*_COLUMNS)
                    .where(t.audit_log.c.id > prev_id, t.audit_log.c.id <= max(head_id, 0))
                    .order_by(t.audit_log.c.id)
                    .limit(page_size)
                )
            ).all()
        ]
        if not rows:
            break
        ahead = {row.hash: row.id for row in rows}
        for row in rows:
            _check_row(row, prev_id, prev_hash, recent, ahead, problems)
            recent.add(row.hash, row.id)
            prev_id, prev_hash = row.id, row.hash
            checked += 1
    if head_id >= 0:
        _check_head(head_id, head_hash, prev_id, prev_hash, problems)
        await _check_past_head(conn, head_id, problems)
    return AuditReport(checked, head_id, head_hash, tuple(problems.items), problems.total)


def _check_row(
    row: AuditEntry,
    prev_id: int,
    prev_hash: str,
    recent: _RecentHashes,
    ahead: dict[str, int],
    problems: _Problems,
) -> None:
    if hash_of(row) != row.hash:
        problems.add(row.id, CHANGED, f"row {row.id} ({row.action}) does not match its hash")
    if row.id != prev_id + 1:
        first, last = prev_id + 1, row.id - 1
        span = f"row {first} is" if first == last else f"rows {first}..{last} are"
        problems.add(first, MISSING, f"{span} missing (deleted)")
        return
    if row.prev_hash == prev_hash:
        return
    moved_from = recent.get(row.prev_hash) or ahead.get(row.prev_hash)
    if moved_from is not None and moved_from != row.id:
        problems.add(
            row.id,
            REORDERED,
            f"row {row.id} was chained after the row now at id {moved_from}, "
            f"not after row {prev_id}: rows were reordered",
        )
    else:
        problems.add(
            row.id,
            BROKEN_LINK,
            f"row {row.id} does not continue row {prev_id}'s hash: "
            "an earlier row was replaced or rehashed",
        )


def _check_head(
    head_id: int, head_hash: str, last_id: int, last_hash: str, problems: _Problems
) -> None:
    if last_id < head_id:
        first = last_id + 1
        span = f"row {first} is" if first == head_id else f"rows {first}..{head_id} are"
        problems.add(first, MISSING, f"{span} missing at the end of the log (deleted)")
    elif last_hash != head_hash:
        problems.add(
            head_id,
            HEAD,
            f"the head records hash {head_hash[:12]}… for row {head_id}, "
            f"but the row's hash is {last_hash[:12]}…",
        )


async def _check_past_head(conn: AsyncConnection, head_id: int, problems: _Problems) -> None:
    """Rows past the head: an append commits its row and the head together,
    so a row past the head read *after* it was inserted behind the log's back."""
    ids = (
        (
            await conn.execute(
                select(t.audit_log.c.id)
                .where(t.audit_log.c.id > head_id)
                .order_by(t.audit_log.c.id)
                .limit(_PAST_HEAD_LISTED_MAX)
            )
        )
        .scalars()
        .all()
    )
    if not ids:
        return
    head_now, _ = await _read_head(conn)
    for row_id in ids:
        if row_id > head_now:
            problems.add(int(row_id), HEAD, f"row {row_id} lies past the head (not appended)")
