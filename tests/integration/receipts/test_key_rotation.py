"""``reconciler keys rotate`` keeps older receipts valid: issue, rotate,
issue, and both verify through the public verify page (an API that holds
public keys only) and ``reconciler receipts verify``; a receipt signed by a
key the keyring never had, or whose signature was altered, is forged."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp.test_utils import TestClient
from click.testing import CliRunner, Result
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.receipts.issue import Receipt, verify_url
from ledger.receipts.keyring import PRIVATE_DIR
from ledger.receipts.signing import ReceiptSigner
from reconciler.cli.main import main
from reconciler.settings import Settings
from reconciler.wiring import load_signer
from tests.support.api import api_client
from tests.support.receipts import issue, paid_fine

GENUINE = "BIÊN LAI HỢP LỆ"  # the page's verdict for a genuine receipt


def _cli(args: list[str], db_url: str, data_dir: Path) -> Result:
    env = {
        "RECONCILER_ENV": "dev",
        "RECONCILER_DATABASE_URL": db_url,
        "RECONCILER_DATA_DIR": str(data_dir),
        "RECONCILER_LOG_LEVEL": "warning",
    }
    return CliRunner().invoke(main, args, env=env)


async def _page(client: TestClient[object, object], receipt: Receipt) -> str:
    url = urlsplit(verify_url("http://x", receipt.series, receipt.number, receipt.signature))
    response = await client.get(f"{url.path}?{url.query}")
    return await response.text()


async def test_rotation_keeps_old_receipts_valid(
    engine: AsyncEngine, owner_engine: AsyncEngine, db_url: str, tmp_path: Path
) -> None:
    settings = Settings(env="dev", database_url=db_url, data_dir=tmp_path)
    first_key = load_signer(settings)
    before = await issue(engine, await paid_fine(engine), first_key)

    rotation = await asyncio.to_thread(_cli, ["keys", "rotate"], db_url, tmp_path)
    assert rotation.exit_code == 0, rotation.output
    assert f"{first_key.key_id} is retired" in rotation.output
    second_key = load_signer(settings)  # the worker, restarted
    assert second_key.key_id != first_key.key_id
    after = await issue(engine, await paid_fine(engine), second_key)
    assert (before.payload["kid"], after.payload["kid"]) == (first_key.key_id, second_key.key_id)

    # The API's host holds no private key at all.
    for pem in (tmp_path / "receipt-keys" / PRIVATE_DIR).iterdir():
        pem.unlink()
    async with api_client(engine, db_url, data_dir=tmp_path) as client:
        for receipt in (before, after):
            assert GENUINE in await _page(client, receipt)
    checked = await asyncio.to_thread(_cli, ["receipts", "verify"], db_url, tmp_path)
    assert checked.exit_code == 0, checked.output
    assert "checked 2 receipts" in checked.output

    # Forged: signed by a key the keyring never had; a signature altered.
    stranger = await issue(engine, await paid_fine(engine), ReceiptSigner.generate())
    async with owner_engine.begin() as conn:  # an intruder with the owner's rights
        await conn.execute(text("ALTER TABLE receipts DISABLE TRIGGER receipts_immutable"))
        await conn.execute(
            text("UPDATE receipts SET signature = :s WHERE number = :n"),
            {"s": first_key.sign(b"something else"), "n": before.number},
        )
        await conn.execute(text("ALTER TABLE receipts ENABLE TRIGGER receipts_immutable"))
    altered = dataclasses.replace(before, signature=first_key.sign(b"something else"))
    async with api_client(engine, db_url, data_dir=tmp_path) as client:
        assert GENUINE in await _page(client, after)
        assert GENUINE not in await _page(client, stranger)
        assert GENUINE not in await _page(client, altered)
    found = await asyncio.to_thread(_cli, ["receipts", "verify"], db_url, tmp_path)
    assert found.exit_code == 1
    assert f"BAD {stranger.series}/{stranger.number}: unknown signing key" in found.output
    assert f"BAD {before.series}/{before.number}: signature does not verify" in found.output


def test_rotating_keys_kept_in_the_environment_prints_the_new_env(tmp_path: Path) -> None:
    current = ReceiptSigner.generate()
    env = {
        "RECONCILER_RECEIPT_SIGNING_KEY_B64": current.seed_b64(),
        "RECONCILER_RECEIPT_PUBLIC_KEYS": f'["{current.public_key_b64}"]',
        "RECONCILER_DATA_DIR": str(tmp_path),
    }
    result = CliRunner().invoke(main, ["keys", "rotate", "--print-env"], env=env)
    assert result.exit_code == 0, result.output
    lines = dict(
        line.split("=", 1) for line in result.output.splitlines() if not line.startswith("#")
    )
    new = ReceiptSigner.from_base64(lines["RECEIPT_SIGNING_KEY"])
    assert lines["RECEIPT_PUBLIC_KEYS"] == f'["{new.public_key_b64}","{current.public_key_b64}"]'
    assert list(tmp_path.iterdir()) == []  # nothing written
