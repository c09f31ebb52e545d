"""The app's database role (revision 0011): DML only. Whoever steals its
password (or takes over the API) can neither change the schema nor turn the
append-only guards off, nor rewrite the audit chain, the journal or a receipt.
The whole suite runs the app as this role (``tests/conftest.py``); here the
attacks are tried one by one, each refused with nothing changed."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.core.audit import append_audit, verify_audit_chain
from ledger.core.postings import EntryRequest, Posting, SystemAccount, post_entry
from ledger.migrations import DEFAULT_APP_ROLE, scram_sha256_verifier, set_role_password
from ledger.receipts.signing import ReceiptSigner
from tests.support.ledger import ensure_bank_accounts
from tests.support.receipts import NOW, issue, paid_fine


async def _some_history(engine: AsyncEngine) -> None:
    """An audit row, a journal entry and a receipt to attack."""
    await ensure_bank_accounts(engine, "sgbank")
    async with engine.begin() as conn:
        await post_entry(
            conn,
            EntryRequest(
                idempotency_key="pay-1",
                kind="fine_payment",
                postings=(
                    Posting("bank:sgbank:clearing", 500_000),
                    Posting(SystemAccount.FINES_REVENUE, -500_000),
                ),
            ),
        )
        await append_audit(
            conn, actor="fin", action="test.step", subject_type="thing", subject_id="1", now=NOW
        )
    await issue(engine, await paid_fine(engine), ReceiptSigner.generate())


async def _snapshot(engine: AsyncEngine) -> list[object]:
    rows: list[object] = []
    async with engine.connect() as conn:
        for query in (
            "SELECT * FROM audit_log ORDER BY id",
            "SELECT * FROM journal_entries ORDER BY id",
            "SELECT * FROM postings ORDER BY id",
            "SELECT id, signature, payload_canonical FROM receipts ORDER BY id",
        ):
            rows.append((await conn.execute(text(query))).all())
    return rows


async def test_the_suite_runs_the_app_as_its_own_role(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT current_user, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls "
                    "FROM pg_roles WHERE rolname = current_user"
                )
            )
        ).one()
    assert tuple(row) == (DEFAULT_APP_ROLE, False, False, False, False)


@pytest.mark.parametrize(
    ("attack", "refusal"),
    [
        ("ALTER TABLE audit_log DISABLE TRIGGER USER", "must be owner"),
        ("ALTER TABLE journal_entries DISABLE TRIGGER ALL", "must be owner"),
        ("ALTER TABLE receipts DISABLE TRIGGER receipts_immutable", "must be owner"),
        ("ALTER TABLE fines ADD COLUMN note text", "must be owner"),
        ("DROP TABLE audit_anchors", "must be owner"),
        ("CREATE TABLE loot (x text)", "permission denied for schema public"),
        ("CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "permission denied"),
        ("SET session_replication_role = replica", "permission denied"),
        ("UPDATE audit_log SET actor = 'mallory'", "permission denied"),
        ("DELETE FROM audit_log", "permission denied"),
        ("TRUNCATE audit_log", "permission denied"),
        ("UPDATE audit_anchors SET mac = repeat('0', 64)", "permission denied"),
        ("UPDATE journal_entries SET description = 'x'", "permission denied"),
        ("DELETE FROM postings", "permission denied"),
        ("UPDATE postings SET amount_vnd = 1", "permission denied"),
        ("UPDATE receipts SET signature = 'forged'", "permission denied"),
        ("DELETE FROM receipts", "permission denied"),
        ("DELETE FROM payments", "permission denied"),
        ("UPDATE alembic_version SET version_num = '0001'", "permission denied"),
        (f"ALTER ROLE {DEFAULT_APP_ROLE} SUPERUSER", "permission denied"),
    ],
)
async def test_the_app_role_cannot(engine: AsyncEngine, attack: str, refusal: str) -> None:
    await _some_history(engine)
    before = await _snapshot(engine)
    with pytest.raises(DBAPIError, match=refusal):
        async with engine.begin() as conn:
            await conn.execute(text(attack))
    assert await _snapshot(engine) == before
    async with engine.connect() as conn:
        assert (await verify_audit_chain(conn)).ok


async def test_the_app_role_may_count_a_receipts_copy(engine: AsyncEngine) -> None:
    """The one change a receipt allows, and only that column."""
    await _some_history(engine)
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE receipts SET copies = copies + 1, last_copy_at = now()"))
        copies = (await conn.execute(text("SELECT copies FROM receipts"))).scalar_one()
    assert copies == 2


async def test_the_password_is_sent_as_a_scram_verifier(owner_engine: AsyncEngine) -> None:
    """What we compute is what the server computes from the same password
    (recomputed with the server's own salt), so the app can log in with it."""
    password = "s3cret-Pa55word-of-at-least-32-bytes!"
    async with owner_engine.begin() as conn:
        await conn.execute(text("SET password_encryption = 'scram-sha-256'"))
        await conn.execute(text(f"ALTER ROLE {DEFAULT_APP_ROLE} PASSWORD '{password}'"))
        stored = (
            await conn.execute(
                text("SELECT rolpassword FROM pg_authid WHERE rolname = :r"),
                {"r": DEFAULT_APP_ROLE},
            )
        ).scalar_one()
    salt = base64.b64decode(stored.split("$")[1].split(":")[1])
    assert scram_sha256_verifier(password, salt) == stored
    with pytest.raises(ValueError, match="printable ASCII"):
        scram_sha256_verifier("mật khẩu")


def test_migrate_sets_the_password_and_refuses_odd_role_names(owner_db_url: str) -> None:
    set_role_password(owner_db_url, DEFAULT_APP_ROLE, "another-password-of-32-bytes-or-more")
    engine = create_engine(owner_db_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                text("SELECT rolpassword FROM pg_authid WHERE rolname = :r"),
                {"r": DEFAULT_APP_ROLE},
            ).scalar_one()
    finally:
        engine.dispose()
    assert stored.startswith("SCRAM-SHA-256$4096:")
    with pytest.raises(ValueError, match="plain lower-case name"):
        set_role_password(owner_db_url, "app; DROP TABLE fines", "x" * 32)
