"""A disputing citizen's contact is erased once the dispute has been over
for the retention period, on real PostgreSQL: only ended disputes past it,
each audited once (naming the kinds, never the contact), the chain intact,
and never twice when two workers erase at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger import disputes as ds
from ledger.core.audit import verify_audit_chain
from tests.support.ledger import make_fine

NOW = datetime(2026, 9, 1, 3, 0, tzinfo=UTC)
KEPT = timedelta(days=90)
PHONE = "0912345678"
EMAIL = "an@example.vn"


async def _dispute(
    engine: AsyncEngine,
    ref: str,
    *,
    opened: datetime,
    rejected: datetime | None,
    phone: str | None = PHONE,
    email: str | None = EMAIL,
) -> int:
    complaint = ds.DisputeInput(
        decision_number="01234/QĐ-XPHC",
        bank="sgbank",
        amount_vnd=800_000,
        occurred_at=opened - timedelta(hours=1),
        description="debited, no receipt",
        bank_ref=ref,
        contact_phone=phone,
        contact_email=email,
    )
    async with engine.begin() as conn:
        dispute = await ds.open_dispute(conn, complaint, "fin.an", opened)
        if rejected is not None:
            await ds.reject_dispute(conn, dispute.id, "no debit at the bank", "fin.binh", rejected)
    return dispute.id


async def _contacts(engine: AsyncEngine) -> dict[int, tuple[str | None, str | None]]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT id, contact_phone, contact_email FROM disputes"))
        return {int(r.id): (r.contact_phone, r.contact_email) for r in rows}


async def _erasures(engine: AsyncEngine) -> list[tuple[str, str, str]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT subject_id, actor, detail::text FROM audit_log"
                " WHERE action = 'dispute.contact_erased' ORDER BY id"
            )
        )
        return [(r.subject_id, r.actor, r.detail) for r in rows]


async def test_only_ended_disputes_past_retention_lose_their_contact(
    engine: AsyncEngine,
) -> None:
    await make_fine(engine)
    long_ago = NOW - KEPT - timedelta(days=10)
    old = await _dispute(engine, "FT1", opened=long_ago, rejected=long_ago)
    phone_only = await _dispute(engine, "FT2", opened=long_ago, rejected=long_ago, email=None)
    recent = await _dispute(engine, "FT3", opened=long_ago, rejected=NOW - timedelta(days=10))
    still_open = await _dispute(engine, "FT4", opened=long_ago - timedelta(days=400), rejected=None)
    silent = await _dispute(
        engine, "FT5", opened=long_ago, rejected=long_ago, phone=None, email=None
    )

    assert await ds.erase_expired_contacts(engine, NOW - KEPT, NOW) == 2

    contacts = await _contacts(engine)
    assert contacts[old] == (None, None)
    # The row says it changed, for whoever syncs disputes by updated_at.
    async with engine.connect() as conn:
        updated = (
            await conn.execute(text("SELECT updated_at FROM disputes WHERE id = :i"), {"i": old})
        ).scalar_one()
    assert updated == NOW
    assert contacts[phone_only] == (None, None)
    assert contacts[recent] == (PHONE, EMAIL)
    assert contacts[still_open] == (PHONE, EMAIL)
    assert contacts[silent] == (None, None)
    erasures = await _erasures(engine)
    assert [(subject, actor) for subject, actor, _ in erasures] == [
        (str(old), "system:retention"),
        (str(phone_only), "system:retention"),
    ]
    assert '"erased": ["phone", "email"]' in erasures[0][2]
    assert '"erased": ["phone"]' in erasures[1][2]
    async with engine.connect() as conn:
        everything = " ".join(
            (await conn.execute(text("SELECT detail::text FROM audit_log"))).scalars()
        )
        assert (await verify_audit_chain(conn)).ok
    assert PHONE not in everything
    assert EMAIL not in everything
    # A second pass finds nothing to do and writes nothing.
    assert await ds.erase_expired_contacts(engine, NOW - KEPT, NOW) == 0
    assert len(await _erasures(engine)) == 2


async def test_batches_are_bounded_and_two_workers_never_erase_one_twice(
    engine: AsyncEngine,
) -> None:
    await make_fine(engine)
    long_ago = NOW - KEPT - timedelta(days=1)
    for i in range(7):
        await _dispute(engine, f"FT{i}", opened=long_ago, rejected=long_ago)
    assert await ds.erase_contacts_once(engine, NOW - KEPT, NOW, limit=2) == 2
    with pytest.raises(ValueError, match=r"erase 1\.\.200 "):
        await ds.erase_contacts_once(engine, NOW - KEPT, NOW, limit=0)
    with pytest.raises(ValueError, match=r"erase 1\.\.200 "):
        await ds.erase_contacts_once(engine, NOW - KEPT, NOW, limit=201)
    # Two workers' passes at once: five left, five erased between them.
    done = await asyncio.gather(
        *(ds.erase_expired_contacts(engine, NOW - KEPT, NOW) for _ in range(2))
    )
    assert sum(done) == 5, done
    erasures = await _erasures(engine)
    subjects = [subject for subject, _, _ in erasures]
    assert len(subjects) == len(set(subjects)) == 7
    assert set((await _contacts(engine)).values()) == {(None, None)}
    async with engine.connect() as conn:
        assert (await verify_audit_chain(conn)).ok
