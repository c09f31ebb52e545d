"""The hash-chained audit log on real PostgreSQL: appends, the triggers that
keep it append-only, and ``verify_audit_chain`` finding every kind of
tampering (done here with the triggers disabled, as an intruder with the
database owner's rights would)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core.audit import (
    APPEND_MANY_MAX,
    BROKEN_LINK,
    CHANGED,
    GENESIS_HASH,
    HEAD,
    MISSING,
    REORDERED,
    AuditDraft,
    AuditReport,
    append_audit,
    append_audit_many,
    audit_trail,
    verify_audit_chain,
)

T0 = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)


async def _append_n(engine: AsyncEngine, n: int) -> None:
    async with engine.begin() as conn:
        for i in range(n):
            await append_audit(
                conn,
                actor=f"user-{i % 3}",
                action="test.step",
                subject_type="thing",
                subject_id=str(i),
                now=T0 + timedelta(seconds=i, microseconds=123_457),
                detail={"n": i, "text": "Nguyễn Văn A", "nested": {"b": [1, True, None]}},
            )


async def _verify(engine: AsyncEngine, page_size: int = 1000) -> AuditReport:
    async with engine.connect() as conn:
        return await verify_audit_chain(conn, page_size=page_size)


async def _tamper(engine: AsyncEngine, *statements: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        await conn.execute(text("ALTER TABLE audit_head DISABLE TRIGGER USER"))
        for statement in statements:
            await conn.execute(text(statement))
        await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
        await conn.execute(text("ALTER TABLE audit_head ENABLE TRIGGER USER"))


def _found(report: AuditReport) -> set[tuple[str, int]]:
    return {(p.kind, p.row_id) for p in report.problems}


async def test_appends_chain_and_verify(engine: AsyncEngine) -> None:
    report = await _verify(engine)
    assert report.ok
    assert (report.rows_checked, report.head_id, report.head_hash) == (0, 0, GENESIS_HASH)
    await _append_n(engine, 7)
    report = await _verify(engine, page_size=3)
    assert report.ok, report.problems
    assert report.rows_checked == 7
    assert report.head_id == 7
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT id, prev_hash, hash FROM audit_log ORDER BY id"))
        chain = rows.all()
        trail = await audit_trail(conn, [("thing", "2"), ("thing", "5")])
    assert [r.id for r in chain] == list(range(1, 8))
    assert chain[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    assert [e.subject_id for e in trail] == ["2", "5"]
    assert trail[0].detail["text"] == "Nguyễn Văn A"


async def test_a_rolled_back_append_leaves_no_gap(engine: AsyncEngine) -> None:
    await _append_n(engine, 2)
    with pytest.raises(RuntimeError):
        async with engine.begin() as conn:
            await append_audit(
                conn, actor="x", action="test.lost", subject_type="thing", subject_id="9", now=T0
            )
            raise RuntimeError("the action failed")
    await _append_n(engine, 1)
    report = await _verify(engine)
    assert report.ok
    assert report.head_id == 3


APPEND_ONLY = "is not allowed: the ledger is append-only"
HEAD_GUARD = "the audit head moves only by appending to audit_log"


@pytest.mark.parametrize(
    ("statement", "refusal"),
    [
        (
            "UPDATE audit_log SET actor = 'mallory' WHERE id = 1",
            f"UPDATE on audit_log {APPEND_ONLY}",
        ),
        ("DELETE FROM audit_log WHERE id = 1", f"DELETE on audit_log {APPEND_ONLY}"),
        ("TRUNCATE audit_log", f"TRUNCATE on audit_log {APPEND_ONLY}"),
        ("UPDATE audit_head SET last_id = 0", HEAD_GUARD),
        ("DELETE FROM audit_head", HEAD_GUARD),
        (
            "INSERT INTO audit_log (id, at, actor, action, subject_type, subject_id, detail, "
            f"prev_hash, hash) VALUES (9, now(), 'm', 'x.y', 'thing', '1', '{{}}', "
            f"'{GENESIS_HASH}', '{GENESIS_HASH}')",
            "audit row 9 does not continue the chain at 2",
        ),
    ],
)
async def test_the_database_refuses_changes(
    engine: AsyncEngine, owner_engine: AsyncEngine, statement: str, refusal: str
) -> None:
    """The triggers hold even for the owner (the app's role has no such
    privilege at all: tests/integration/ledger/test_app_role.py); each
    refusal is the trigger's, not some other error of the statement."""
    await _append_n(engine, 2)
    with pytest.raises(DBAPIError, match=refusal):
        async with owner_engine.begin() as conn:
            await conn.execute(text(statement))
    assert (await _verify(engine)).ok


async def test_changed_detail_is_found(engine: AsyncEngine, owner_engine: AsyncEngine) -> None:
    await _append_n(engine, 6)
    await _tamper(
        owner_engine,
        """UPDATE audit_log SET detail = jsonb_set(detail, '{n}', '99') WHERE id = 3""",
    )
    report = await _verify(engine, page_size=2)
    assert not report.ok
    assert _found(report) == {(CHANGED, 3)}
    assert "row 3" in report.problems[0].message


async def test_changed_and_rehashed_row_breaks_the_next_link(
    engine: AsyncEngine, owner_engine: AsyncEngine
) -> None:
    await _append_n(engine, 5)
    await _tamper(owner_engine, "UPDATE audit_log SET hash = repeat('a', 64) WHERE id = 2")
    report = await _verify(engine)
    assert (CHANGED, 2) in _found(report)
    assert (BROKEN_LINK, 3) in _found(report)


@pytest.mark.parametrize(("deleted", "expected"), [(1, 1), (4, 4), (6, 6)])
async def test_deleted_row_is_found(
    engine: AsyncEngine, owner_engine: AsyncEngine, deleted: int, expected: int
) -> None:
    await _append_n(engine, 6)
    await _tamper(owner_engine, f"DELETE FROM audit_log WHERE id = {deleted}")
    report = await _verify(engine, page_size=2)
    assert _found(report) == {(MISSING, expected)}
    assert "missing" in report.problems[0].message


async def test_swapped_rows_are_found(engine: AsyncEngine, owner_engine: AsyncEngine) -> None:
    await _append_n(engine, 6)
    await _tamper(
        owner_engine,
        "UPDATE audit_log SET id = id + 1000 WHERE id IN (3, 4)",
        "UPDATE audit_log SET id = CASE id WHEN 1003 THEN 4 ELSE 3 END WHERE id > 1000",
    )
    report = await _verify(engine, page_size=2)
    found = _found(report)
    assert {(CHANGED, 3), (CHANGED, 4), (REORDERED, 3), (REORDERED, 4)} <= found
    assert {row for _kind, row in found} <= {3, 4, 5}


async def test_head_mismatch_and_rows_past_the_head_are_found(
    engine: AsyncEngine, owner_engine: AsyncEngine
) -> None:
    await _append_n(engine, 3)
    await _tamper(owner_engine, "UPDATE audit_head SET last_hash = repeat('b', 64)")
    assert _found(await _verify(engine)) == {(HEAD, 3)}

    await _tamper(
        owner_engine,
        "UPDATE audit_head SET last_hash = (SELECT hash FROM audit_log WHERE id = 3)",
        "INSERT INTO audit_log SELECT 4, at, actor, action, subject_type, subject_id, detail, "
        "hash, hash FROM audit_log WHERE id = 3",
    )
    assert _found(await _verify(engine)) == {(HEAD, 4)}


async def test_concurrent_appends_make_one_valid_chain(engine: AsyncEngine) -> None:
    writers, each = 8, 5

    async def writer(w: int) -> None:
        for i in range(each):
            async with engine.begin() as conn:
                await append_audit(
                    conn,
                    actor=f"writer-{w}",
                    action="test.concurrent",
                    subject_type="thing",
                    subject_id=f"{w}-{i}",
                    now=datetime.now(UTC),
                    detail={"w": w, "i": i},
                )

    await asyncio.gather(*(writer(w) for w in range(writers)))
    report = await _verify(engine, page_size=7)
    assert report.ok, report.problems
    assert report.rows_checked == report.head_id == writers * each


async def test_detail_must_round_trip(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        for bad in ({"amount": 1.5}, {"text": "a\x00b"}, {1: "x"}):
            with pytest.raises(ValueError, match="detail"):
                await append_audit(
                    conn,
                    actor="x",
                    action="test.bad",
                    subject_type="thing",
                    subject_id="1",
                    now=T0,
                    detail=bad,  # type: ignore[arg-type]
                )


def _drafts(n: int, first: int = 0) -> list[AuditDraft]:
    return [
        AuditDraft(
            actor="system:saga",
            action="test.batch",
            subject_type="thing",
            subject_id=str(first + i),
            now=T0 + timedelta(seconds=i),
            detail={"n": first + i},
        )
        for i in range(n)
    ]


async def test_many_appended_at_once_chain_like_one_by_one(engine: AsyncEngine) -> None:
    await _append_n(engine, 3)
    async with engine.begin() as conn:
        entries = await append_audit_many(conn, _drafts(50))
    await _append_n(engine, 2)
    report = await _verify(engine)
    assert report.ok, report.problems
    assert report.rows_checked == 55
    assert [e.id for e in entries] == list(range(4, 54))
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    async with engine.connect() as conn:
        trail = await audit_trail(conn, [("thing", "17")])
    assert [(e.action, e.detail) for e in trail] == [("test.batch", {"n": 17})]


async def test_a_bad_draft_appends_none_of_the_batch(engine: AsyncEngine) -> None:
    await _append_n(engine, 2)
    bad = [*_drafts(3), AuditDraft("system:saga", "Not An Action", "thing", "x", T0)]
    with pytest.raises(ValueError, match="Not An Action"):
        async with engine.begin() as conn:
            await append_audit_many(conn, bad)
    with pytest.raises(ValueError, match="not 0"):
        async with engine.begin() as conn:
            await append_audit_many(conn, [])
    with pytest.raises(ValueError, match=f"not {APPEND_MANY_MAX + 1}"):
        async with engine.begin() as conn:
            await append_audit_many(conn, _drafts(APPEND_MANY_MAX + 1))
    report = await _verify(engine)
    assert report.ok
    assert report.rows_checked == 2
