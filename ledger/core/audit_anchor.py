"""Anchors: the audit chain's head sealed with a keyed MAC.

The chain of ``ledger.core.audit`` is plain SHA-256: whoever can write the
database (an owner's password, a stolen backup restored and edited) can
rewrite a row and recompute every later hash, and the chain verifies again.
An anchor is HMAC-SHA256 over a row's id and hash, under a key that is never
in the database (RECONCILER_AUDIT_KEY, held by the worker and by whoever runs
``reconciler audit verify``). Since each hash covers every row before it, a
valid anchor vouches for the whole log up to its row: a rewrite of any
earlier row changes that row's hash, and the anchor no longer matches.

The worker anchors the head every minute or so (``anchor_head``), after
checking that the rows since the last anchor continue it: it never seals a
chain that was tampered with. Each anchor is also logged with its MAC, so a
copy lives outside the database (``verify_anchors``' ``expected``).

What an anchor cannot show: rows appended since the last anchor (minutes),
and a log cut back together with its newest anchors. The first is what the
unanchored-row age limit of ``verify_anchors`` is for; the second is caught
by comparing with an anchor recorded outside (the worker's log).

Why not a MAC on every row: every process that appends (the internet-facing
API included) would then hold the key, and one stolen key would forge it all.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from ledger.core import tables as t
from ledger.core.audit import GENESIS_HASH, AuditReport, verify_audit_chain

ANCHOR_VERSION: Final = 1
KEY_BYTES_MIN: Final = 32
ANCHORS_PAGE: Final = 1_000
PROBLEMS_MAX: Final = 1_000
UNANCHORED_SECONDS_MAX_DEFAULT: Final = 3600.0
ANCHOR: Final = "anchor"  # a problem kind next to those of ledger.core.audit


class AnchorError(Exception):
    """The head cannot be anchored: the chain since the last anchor is broken."""


@dataclass(frozen=True)
class AuditAnchor:
    id: int
    row_id: int
    row_hash: str
    key_id: str
    mac: str
    anchored_at: datetime


@dataclass(frozen=True)
class AnchorProblem:
    row_id: int
    message: str


@dataclass(frozen=True)
class AnchorReport:
    anchors_checked: int
    last_row_id: int  # the newest row a valid anchor vouches for (0: none)
    last_anchored_at: datetime | None
    unanchored_rows: int
    problems: tuple[AnchorProblem, ...]
    problems_total: int

    @property
    def ok(self) -> bool:
        return self.problems_total == 0


def audit_key_id(key: bytes) -> str:
    """Names a key without revealing it: which key made an anchor."""
    return hmac.new(key, b"reconciler audit key id", hashlib.sha256).hexdigest()[:16]


def anchor_mac(key: bytes, row_id: int, row_hash: str) -> str:
    message = f"reconciler audit anchor v{ANCHOR_VERSION}:{row_id}:{row_hash}"
    return hmac.new(key, message.encode("ascii"), hashlib.sha256).hexdigest()


def _check_key(key: bytes) -> None:
    if len(key) < KEY_BYTES_MIN:
        raise ValueError(f"the audit key must have at least {KEY_BYTES_MIN} bytes")


def _valid(key: bytes, anchor: AuditAnchor) -> bool:
    expected = anchor_mac(key, anchor.row_id, anchor.row_hash)
    return hmac.compare_digest(expected, anchor.mac)


_A = t.audit_anchors
# Each anchor with the hash its row has now (NULL: the row is gone).
_ANCHORS_NOW: Final = select(
    _A.c.id,
    _A.c.row_id,
    _A.c.row_hash,
    _A.c.key_id,
    _A.c.mac,
    _A.c.anchored_at,
    t.audit_log.c.hash.label("now_hash"),
).select_from(_A.outerjoin(t.audit_log, t.audit_log.c.id == _A.c.row_id))


def _anchor_of(row: Any) -> AuditAnchor:
    return AuditAnchor(row.id, row.row_id, row.row_hash, row.key_id, row.mac, row.anchored_at)


async def _last_valid_anchor(conn: AsyncConnection, key: bytes) -> tuple[int, str]:
    """(row id, hash) the newest anchor vouches for, or the genesis. A newest
    anchor that does not verify, or whose row changed, stops everything."""
    row = (await conn.execute(_ANCHORS_NOW.order_by(_A.c.id.desc()).limit(1))).one_or_none()
    if row is None:
        return 0, GENESIS_HASH
    anchor = _anchor_of(row)
    if not _valid(key, anchor):
        raise AnchorError(f"the newest anchor (row {anchor.row_id}) does not verify with this key")
    if row.now_hash != anchor.row_hash:
        raise AnchorError(f"audit row {anchor.row_id} changed since it was anchored")
    return anchor.row_id, anchor.row_hash


async def anchor_head(conn: AsyncConnection, key: bytes, now: datetime) -> AuditAnchor | None:
    """Check the rows since the last anchor and anchor the head; None when
    the head has not moved. Raises ``AnchorError`` (and anchors nothing) if
    the rows since the last anchor do not continue it.

    Run it in a REPEATABLE READ transaction, so the rows checked and the head
    anchored are one snapshot; two workers anchoring at once add two anchors
    of the same head, which is harmless."""
    _check_key(key)
    start = await _last_valid_anchor(conn, key)
    report: AuditReport = await verify_audit_chain(conn, after=start)
    if not report.ok:
        first = report.problems[0].message if report.problems else "unknown"
        raise AnchorError(f"the audit chain since row {start[0]} is broken: {first}")
    if report.head_id <= start[0]:
        return None
    anchored_at = now.astimezone(UTC)
    key_id, mac = audit_key_id(key), anchor_mac(key, report.head_id, report.head_hash)
    new = insert(_A).values(
        row_id=report.head_id,
        row_hash=report.head_hash,
        key_id=key_id,
        mac=mac,
        anchored_at=anchored_at,
    )
    anchor_id = (await conn.execute(new.returning(_A.c.id))).scalar_one()
    return AuditAnchor(anchor_id, report.head_id, report.head_hash, key_id, mac, anchored_at)


class _Collected:
    def __init__(self) -> None:
        self.items: list[AnchorProblem] = []
        self.total = 0

    def add(self, row_id: int, message: str) -> None:
        self.total += 1
        if len(self.items) < PROBLEMS_MAX:
            self.items.append(AnchorProblem(row_id, message))


async def verify_anchors(
    conn: AsyncConnection,
    key: bytes,
    head: AuditReport,
    now: datetime,
    *,
    unanchored_seconds_max: float = UNANCHORED_SECONDS_MAX_DEFAULT,
    expected: tuple[int, str] | None = None,
) -> AnchorReport:
    """Every anchor against the log as it is now (after ``verify_audit_chain``
    gave ``head``): each must verify with ``key`` and name its row's current
    hash. Rows no anchor covers must be younger than
    ``unanchored_seconds_max`` (the worker anchors every minute, so older
    ones mean the anchoring stopped, or anchors were deleted). ``expected``:
    an anchor (row id, MAC) recorded outside the database, which must still
    hold."""
    _check_key(key)
    problems = _Collected()
    key_id = audit_key_id(key)
    checked, last_row, last_at, after_id = 0, 0, None, 0
    while True:
        page = _ANCHORS_NOW.where(_A.c.id > after_id).order_by(_A.c.id).limit(ANCHORS_PAGE)
        rows = (await conn.execute(page)).all()
        if not rows:
            break
        after_id = rows[-1].id
        for row in rows:
            checked += 1
            anchor = _anchor_of(row)
            message = _anchor_problem(key, key_id, anchor, row.now_hash)
            if message:
                problems.add(anchor.row_id, message)
            elif anchor.row_id >= last_row:
                last_row, last_at = anchor.row_id, anchor.anchored_at
    if expected is not None:
        _check_expected(key, expected, conn_hash=await _row_hash(conn, expected[0]), into=problems)
    await _check_unanchored(conn, head, last_row, now, unanchored_seconds_max, problems)
    return AnchorReport(
        anchors_checked=checked,
        last_row_id=last_row,
        last_anchored_at=last_at,
        unanchored_rows=max(head.head_id - last_row, 0),
        problems=tuple(problems.items),
        problems_total=problems.total,
    )


def _anchor_problem(key: bytes, key_id: str, anchor: AuditAnchor, now_hash: str | None) -> str:
    if not _valid(key, anchor):
        if anchor.key_id != key_id:
            return f"anchor {anchor.id} of row {anchor.row_id} was made with another key"
        return f"anchor {anchor.id} of row {anchor.row_id} is forged (its MAC does not verify)"
    if now_hash is None:
        return f"row {anchor.row_id}, anchored by anchor {anchor.id}, is missing (deleted)"
    if now_hash != anchor.row_hash:
        return (
            f"row {anchor.row_id} no longer has the hash anchor {anchor.id} sealed: "
            "the log up to it was rewritten and rehashed"
        )
    return ""


async def _row_hash(conn: AsyncConnection, row_id: int) -> str | None:
    query = select(t.audit_log.c.hash).where(t.audit_log.c.id == row_id)
    found: str | None = (await conn.execute(query)).scalar_one_or_none()
    return found


def _check_expected(
    key: bytes, expected: tuple[int, str], *, conn_hash: str | None, into: _Collected
) -> None:
    row_id, mac = expected
    if conn_hash is None:
        into.add(row_id, f"row {row_id} of the recorded anchor is missing (deleted)")
    elif not hmac.compare_digest(anchor_mac(key, row_id, conn_hash), mac.strip().lower()):
        into.add(row_id, f"the recorded anchor of row {row_id} no longer matches the log")


async def _check_unanchored(
    conn: AsyncConnection,
    head: AuditReport,
    last_row: int,
    now: datetime,
    seconds_max: float,
    into: _Collected,
) -> None:
    if head.head_id <= last_row:
        return
    first = last_row + 1
    oldest = (
        await conn.execute(select(t.audit_log.c.at).where(t.audit_log.c.id == first))
    ).scalar_one_or_none()
    if oldest is not None and now - oldest > timedelta(seconds=seconds_max):
        into.add(
            first,
            f"rows {first}..{head.head_id} are not anchored and row {first} is from "
            f"{oldest.isoformat()}: anchoring stopped, or newer anchors were deleted",
        )
