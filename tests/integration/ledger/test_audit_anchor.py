"""The audit chain's head sealed with a keyed MAC. The attack: someone with
the owner's rights rewrites a row and recomputes the plain SHA-256 chain, so
that ``verify_audit_chain`` passes again; the anchors, made with a key that
is not in the database, report the rewrite."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core.audit import append_audit, entry_hash, verify_audit_chain
from ledger.core.audit_anchor import (
    AnchorError,
    AnchorReport,
    anchor_head,
    anchor_mac,
    audit_key_id,
    verify_anchors,
)
from reconciler.audit_anchoring import anchor_audit_head
from reconciler.cli.main import main

KEY = secrets.token_bytes(32)
OTHER_KEY = secrets.token_bytes(32)
T0 = datetime(2026, 3, 1, 2, 30, tzinfo=UTC)


async def _append(engine: AsyncEngine, n: int, start: int = 0) -> None:
    async with engine.begin() as conn:
        for i in range(start, start + n):
            await append_audit(
                conn,
                actor="fin",
                action="refund.approved",
                subject_type="dispute",
                subject_id=str(i),
                now=T0 + timedelta(seconds=i),
                detail={"amount_vnd": 100_000 + i},
            )


async def _anchor(engine: AsyncEngine, key: bytes = KEY) -> int | None:
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            anchor = await anchor_head(conn, key, T0 + timedelta(hours=1))
    return None if anchor is None else anchor.row_id


async def _verify(
    engine: AsyncEngine,
    key: bytes = KEY,
    now: datetime = T0 + timedelta(hours=1),
    expected: tuple[int, str] | None = None,
) -> tuple[bool, AnchorReport]:
    async with engine.connect() as conn:
        chain = await verify_audit_chain(conn)
        anchors = await verify_anchors(conn, key, chain, now, expected=expected)
    return chain.ok, anchors


async def _rewrite_and_rehash(owner: AsyncEngine, row_id: int, amount_vnd: int) -> None:
    """The attacker: change a row's amount, then recompute every later hash
    and the head, so the plain chain is consistent again."""
    async with owner.begin() as conn:
        await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        await conn.execute(text("ALTER TABLE audit_head DISABLE TRIGGER USER"))
        rows = (
            await conn.execute(
                text("SELECT * FROM audit_log WHERE id >= :id ORDER BY id"), {"id": row_id}
            )
        ).all()
        prev_hash = rows[0].prev_hash
        for row in rows:
            detail = {"amount_vnd": amount_vnd} if row.id == row_id else row.detail
            fields = (row.id, row.at, row.actor, row.action, row.subject_type, row.subject_id)
            digest = entry_hash(*fields, detail, prev_hash)
            await conn.execute(
                text(
                    "UPDATE audit_log SET detail = CAST(:d AS jsonb), prev_hash = :p, hash = :h "
                    "WHERE id = :id"
                ),
                {"d": json.dumps(detail), "p": prev_hash, "h": digest, "id": row.id},
            )
            prev_hash = digest
        await conn.execute(
            text("UPDATE audit_head SET last_id = :id, last_hash = :h"),
            {"id": rows[-1].id, "h": prev_hash},
        )
        await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
        await conn.execute(text("ALTER TABLE audit_head ENABLE TRIGGER USER"))


async def test_an_honest_chain_with_its_anchors_verifies(engine: AsyncEngine) -> None:
    await _append(engine, 3)
    assert await _anchor(engine) == 3
    assert await _anchor(engine) is None  # the head has not moved
    await _append(engine, 2, start=3)
    assert await _anchor(engine) == 5
    chain_ok, anchors = await _verify(engine)
    assert chain_ok
    assert anchors.ok, anchors.problems
    assert (anchors.anchors_checked, anchors.last_row_id, anchors.unanchored_rows) == (2, 5, 0)


async def test_a_rewritten_and_rehashed_row_is_found(
    engine: AsyncEngine, owner_engine: AsyncEngine
) -> None:
    await _append(engine, 6)
    await _anchor(engine)
    await _rewrite_and_rehash(owner_engine, 2, amount_vnd=1)
    chain_ok, anchors = await _verify(engine)
    assert chain_ok  # the plain chain alone is fooled
    assert not anchors.ok
    assert "row 6 no longer has the hash anchor" in anchors.problems[0].message
    # And the worker refuses to seal the forged chain.
    with pytest.raises(AnchorError, match="changed since it was anchored"):
        await _anchor(engine)


async def test_the_worker_never_seals_a_chain_tampered_with_since_the_last_anchor(
    engine: AsyncEngine, owner_engine: AsyncEngine
) -> None:
    await _append(engine, 3)
    await _anchor(engine)
    await _append(engine, 3, start=3)
    async with owner_engine.begin() as conn:  # rows 4.. changed before being anchored
        await conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER USER"))
        await conn.execute(text("UPDATE audit_log SET actor = 'mallory' WHERE id = 5"))
        await conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER USER"))
    with pytest.raises(AnchorError, match="since row 3 is broken"):
        await _anchor(engine)
    await anchor_audit_head(engine, KEY)  # the worker's loop: logs, seals nothing
    async with engine.connect() as conn:
        anchors = (await conn.execute(text("SELECT row_id FROM audit_anchors"))).scalars().all()
    assert anchors == [3]


async def test_forged_and_foreign_anchors_are_reported(
    engine: AsyncEngine, owner_engine: AsyncEngine
) -> None:
    await _append(engine, 2)
    await _anchor(engine, OTHER_KEY)
    async with owner_engine.begin() as conn:
        row_hash = (await conn.execute(text("SELECT hash FROM audit_log WHERE id = 2"))).scalar()
        await conn.execute(
            text(
                "INSERT INTO audit_anchors (row_id, row_hash, key_id, mac, anchored_at) "
                "VALUES (2, :h, :k, :m, now())"
            ),
            {"h": row_hash, "k": audit_key_id(KEY), "m": secrets.token_hex(32)},
        )
    _, anchors = await _verify(engine)
    messages = [p.message for p in anchors.problems]
    assert any("made with another key" in m for m in messages)
    assert any("is forged" in m for m in messages)


async def test_deleted_anchors_leave_old_rows_unanchored(
    engine: AsyncEngine, owner_engine: AsyncEngine
) -> None:
    await _append(engine, 4)
    async with engine.connect() as conn:
        row_hash = (await conn.execute(text("SELECT hash FROM audit_log WHERE id = 4"))).scalar()
    recorded = (4, anchor_mac(KEY, 4, str(row_hash)))  # what the worker's log keeps
    await _anchor(engine)
    assert (await _verify(engine, expected=recorded))[1].ok
    async with owner_engine.begin() as conn:
        await conn.execute(text("ALTER TABLE audit_anchors DISABLE TRIGGER USER"))
        await conn.execute(text("DELETE FROM audit_anchors"))
        await conn.execute(text("ALTER TABLE audit_anchors ENABLE TRIGGER USER"))
    # Fresh rows may wait for the next anchoring; hour-old ones may not.
    assert (await _verify(engine, now=T0 + timedelta(seconds=30)))[1].ok
    _, late = await _verify(engine, now=T0 + timedelta(hours=2))
    assert "rows 1..4 are not anchored" in late.problems[0].message
    # An anchor recorded outside catches a rewrite even with no anchor left.
    await _rewrite_and_rehash(owner_engine, 1, amount_vnd=1)
    _, rewritten = await _verify(engine, now=T0 + timedelta(seconds=30), expected=recorded)
    assert "the recorded anchor of row 4 no longer matches" in rewritten.problems[0].message


async def test_the_app_role_cannot_touch_anchors(engine: AsyncEngine) -> None:
    await _append(engine, 1)
    await _anchor(engine)
    for attack in ("UPDATE audit_anchors SET row_id = 1", "DELETE FROM audit_anchors"):
        with pytest.raises(DBAPIError, match="permission denied"):
            async with engine.begin() as conn:
                await conn.execute(text(attack))


def _cli(args: list[str], db_url: str, tmp_path: Path, **env: str) -> Result:
    values = {
        "RECONCILER_DATABASE_URL": db_url,
        "RECONCILER_DATA_DIR": str(tmp_path),
        "RECONCILER_LOG_LEVEL": "warning",
        **env,
    }
    return CliRunner().invoke(main, args, env=values)


async def test_cli_verify_reports_the_rewrite(
    engine: AsyncEngine, owner_engine: AsyncEngine, db_url: str, tmp_path: Path
) -> None:
    key = secrets.token_urlsafe(32)
    await _append(engine, 3)
    anchored = await asyncio.to_thread(
        _cli, ["audit", "anchor"], db_url, tmp_path, RECONCILER_AUDIT_KEY=key
    )
    assert anchored.exit_code == 0, anchored.output
    assert "anchored row 3" in anchored.output
    args = ["audit", "verify", "--unanchored-max-seconds", str(30 * 86400)]
    intact = await asyncio.to_thread(_cli, args, db_url, tmp_path, RECONCILER_AUDIT_KEY=key)
    assert intact.exit_code == 0, intact.output
    assert "seals row 3" in intact.output
    # Production refuses to check without the key (a rehashed log would pass).
    keyless = await asyncio.to_thread(_cli, ["audit", "verify"], db_url, tmp_path)
    assert keyless.exit_code == 1
    assert "RECONCILER_AUDIT_KEY is not set" in keyless.output
    await _rewrite_and_rehash(owner_engine, 1, amount_vnd=1)
    broken = await asyncio.to_thread(_cli, args, db_url, tmp_path, RECONCILER_AUDIT_KEY=key)
    assert broken.exit_code == 1
    assert "BROKEN row 3 [anchor]" in broken.output
