"""Point-in-time restore on a throwaway embedded PostgreSQL cluster that
archives its WAL (never the session's shared one): base backup, pay, note
the time, pay more, restore to the noted time — exactly the payments before
it are there, and the receipts and the audit chain verify. Then what must be
refused, each leaving nothing behind: a target beyond the archive, before the
backup, a changed backup, an existing directory, a server that archives
nothing. Through the real commands and the wheel's pg_basebackup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from uuid import UUID

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from ledger.core.audit import verify_audit_chain
from ledger.migrations import DEFAULT_APP_ROLE, upgrade_to_head
from ledger.receipts.issue import verify_receipts
from ledger.receipts.signing import ReceiptSigner
from reconciler.cli.main import main
from reconciler.devstack.postgres import EmbeddedPostgres, PostgresInfo
from tests.support.receipts import issue, paid_fine
from tests.support.wal import archive_current_segment


@dataclass
class Cluster:
    server: EmbeddedPostgres
    archive: Path
    base: Path
    root: Path


def _cli(url: str, *args: str) -> Result:
    env = {"RECONCILER_ENV": "dev", "RECONCILER_DATABASE_URL": url}
    return CliRunner().invoke(main, list(args), env=env)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("pitr")
    archive = root / "wal-archive"
    server = EmbeddedPostgres(
        root / "live", root / "live.log", database="reconciler", durable=False, wal_archive=archive
    )
    server.start()
    try:
        upgrade_to_head(server.info.libpq_url())
        base = root / "base"
        made = _cli(server.info.url(), "backup", "--base", "--out", str(base))
        assert made.exit_code == 0, made.output
        yield Cluster(server, archive, base, root)
    finally:
        server.stop()


@pytest.fixture
async def engine(cluster: Cluster) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(cluster.server.info.url())
    yield engine
    await engine.dispose()


async def _pay(engine: AsyncEngine, signer: ReceiptSigner, n: int) -> set[UUID]:
    paid = set()
    for _ in range(n):
        payment = await paid_fine(engine)
        await issue(engine, payment, signer)
        paid.add(payment)
    return paid


async def _server_now(engine: AsyncEngine) -> datetime:
    async with engine.connect() as conn:
        now: datetime = (await conn.execute(text("SELECT clock_timestamp()"))).scalar_one()
    return now


async def _payments_in(data_dir: Path, signer: ReceiptSigner) -> set[UUID]:
    """The restored cluster's payments, once its receipts and audit chain verify."""
    server = EmbeddedPostgres(
        data_dir, data_dir.with_name("check.log"), database="reconciler", durable=False
    )
    await asyncio.to_thread(server.start)
    engine = create_async_engine(server.info.url())
    try:
        async with engine.connect() as conn:
            receipts = await verify_receipts(conn, signer.verifier())
            assert receipts.all_ok, receipts
            assert receipts.checked > 0
            audit = await verify_audit_chain(conn)
            assert audit.ok, audit.problems
            rows = (await conn.execute(text("SELECT id FROM payments"))).scalars()
            return set(rows)
    finally:
        await engine.dispose()
        await asyncio.to_thread(server.stop)


async def test_restore_to_a_time_keeps_exactly_what_was_committed_before_it(
    cluster: Cluster, engine: AsyncEngine
) -> None:
    signer = ReceiptSigner.generate()
    before = await _pay(engine, signer, 2)
    noted = await _server_now(engine)
    after = await _pay(engine, signer, 2)
    await asyncio.to_thread(
        archive_current_segment, cluster.server.info.libpq_url(), cluster.archive
    )

    into = cluster.root / "restored"
    url = cluster.server.info.url()
    args = ["restore", "--base", str(cluster.base), "--archive", str(cluster.archive)]
    done = await asyncio.to_thread(
        _cli, url, *args, "--to-time", noted.isoformat(), "--into", str(into)
    )
    assert done.exit_code == 0, done.output
    assert not into.with_name("restored.partial").exists()
    assert await _payments_in(into, signer) == before
    # The new timeline is in the archive: a later restore takes the next one.
    assert (cluster.archive / "00000002.history").is_file()

    # The live cluster was never touched: every payment is still there.
    async with engine.connect() as conn:
        live = set((await conn.execute(text("SELECT id FROM payments"))).scalars())
    assert live >= before | after

    # Written but not yet archived: a target after it is beyond the archive.
    late = await _pay(engine, signer, 1)
    unreachable = await _server_now(engine)
    beyond = cluster.root / "beyond"
    refused = await asyncio.to_thread(
        _cli, url, *args, "--to-time", unreachable.isoformat(), "--into", str(beyond)
    )
    assert refused.exit_code != 0
    assert "beyond the end of the WAL archive" in refused.output
    assert not beyond.exists()
    assert not beyond.with_name("beyond.partial").exists()

    # The archive's newest timeline is now the restored one, which ends at
    # the noted time; the base backup's own (current) has everything.
    await asyncio.to_thread(
        archive_current_segment, cluster.server.info.libpq_url(), cluster.archive
    )
    whole = cluster.root / "whole"
    done = await asyncio.to_thread(
        _cli, url, *args, "--to-latest", "--timeline", "current", "--into", str(whole)
    )
    assert done.exit_code == 0, done.output
    assert await _payments_in(whole, signer) == before | after | late


def _restore(cluster: Cluster, into: Path, *target: str) -> Result:
    return _cli(
        cluster.server.info.url(),
        "restore",
        "--base",
        str(cluster.base),
        "--archive",
        str(cluster.archive),
        "--into",
        str(into),
        *target,
    )


def test_a_target_before_the_backup_or_in_the_future_is_refused(cluster: Cluster) -> None:
    into = cluster.root / "never"
    for target, says in [
        ("2020-01-01T00:00:00+07:00", "before the base backup's end"),
        ("2999-01-01T00:00:00+07:00", "in the future"),
        ("2026-12-04T03:00:00", "no offset"),
    ]:
        result = _restore(cluster, into, "--to-time", target)
        assert result.exit_code != 0
        assert says in result.output
    result = _restore(cluster, into, "--to-lsn", "0/1")
    assert "before the base backup's end" in result.output
    assert not into.exists()


def test_a_changed_backup_is_refused_and_nothing_is_built(cluster: Cluster) -> None:
    into = cluster.root / "never"
    tar = cluster.base / "base.tar"
    original = tar.read_bytes()
    changed = bytearray(original)
    changed[len(changed) // 2] ^= 0xFF
    stray = cluster.base / "extra"
    try:
        tar.write_bytes(bytes(changed))
        result = _restore(cluster, into, "--to-latest")
        assert "does not match its manifest" in result.output
        tar.write_bytes(original)
        stray.write_text("not from pg_basebackup")
        result = _restore(cluster, into, "--to-latest")
        assert "does not match its manifest" in result.output
    finally:
        tar.write_bytes(original)
        stray.unlink(missing_ok=True)
    assert not into.exists()


def test_nothing_is_overwritten(cluster: Cluster) -> None:
    into = cluster.root / "occupied"
    into.mkdir()
    (into / "keep").write_text("mine")
    result = _restore(cluster, into, "--to-latest")
    assert "exists" in result.output
    assert (into / "keep").read_text() == "mine"
    again = _cli(cluster.server.info.url(), "backup", "--base", "--out", str(cluster.base))
    assert again.exit_code != 0
    assert "exists" in again.output


def test_a_server_that_archives_nothing_gets_no_base_backup(
    pg_server: PostgresInfo, tmp_path: Path
) -> None:
    out = tmp_path / "base"
    result = _cli(pg_server.url(), "backup", "--base", "--out", str(out))
    assert result.exit_code != 0
    assert "archive_mode=off" in result.output
    assert not out.exists()
    assert not out.with_name("base.partial").exists()


def test_the_apps_own_role_cannot_take_a_base_backup(cluster: Cluster) -> None:
    """The services' role (rows only) cannot copy the whole cluster."""
    out = cluster.root / "by-app"
    app_url = cluster.server.info.as_user(DEFAULT_APP_ROLE).url()
    result = _cli(app_url, "backup", "--base", "--out", str(out))
    assert result.exit_code != 0
    assert "pg_basebackup failed" in result.output
    assert not out.exists()
    assert not out.with_name("by-app.partial").exists()
    assert not out.with_name("by-app.json").exists()
