"""The simulators themselves: admin API validation, statement faults, the
VietQR bank's handling of transfer content, and surviving kill -9."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from bank_adapters.factory import build_adapter
from bank_adapters.simulators.admin import SimulatorAdmin, SimulatorAdminError
from bank_adapters.text import mentions_decision, payment_reference
from bank_adapters.types import (
    DebitRequest,
    Direction,
    StatementParseError,
    Succeeded,
)
from bank_adapters.vietqr_bank import VietQRBankAdapter
from tests.integration.bank_adapters.conftest import (
    FAST_OPTIONS,
    BankUnderTest,
    business_date,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"mode": "earthquake"}, "unknown_fault_mode"),
        ({}, "unknown_fault_mode"),
        ({"mode": "latency", "probability": 1.5}, "invalid_fault"),
        ({"mode": "latency", "probability": "high"}, "invalid_fault"),
        ({"mode": "latency", "seconds": -1}, "invalid_fault"),
        ({"mode": "latency", "latency_ms": 10**9}, "invalid_fault"),
        ({"mode": "link_down", "hang_seconds": 3}, "invalid_fault"),
        ({"mode": "http_500", "after_debit": "yes"}, "invalid_fault"),
    ],
)
async def test_bad_fault_is_a_400_with_a_json_error(
    bank: BankUnderTest, body: dict[str, object], code: str
) -> None:
    async with bank.session.post(bank.sim.admin_url + "/faults", json=body) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["code"] == code
    assert error["message"]
    assert await bank.admin.faults() == []


async def test_admin_stays_up_while_the_bank_port_refuses(bank: BankUnderTest) -> None:
    await bank.admin.add_fault("link_down")
    with pytest.raises(aiohttp.ClientConnectorError):
        async with bank.session.get(bank.sim.url + "/v1/health"):
            pass
    assert (await bank.admin.health())["link_up"] is False


async def test_link_down_with_probability_zero_does_not_happen(bank: BankUnderTest) -> None:
    fault = await bank.admin.add_fault("link_down", probability=0.0)
    assert fault["applied"] is False
    assert (await bank.adapter.health()).up


async def test_admin_rejects_bad_accounts(bank: BankUnderTest) -> None:
    with pytest.raises(SimulatorAdminError) as caught:
        await bank.admin.set_account("not an account!", 5)
    assert caught.value.status == 400


async def test_statement_with_missing_and_extra_lines(bank: BankUnderTest) -> None:
    request = DebitRequest("stmt-faults", "5/QĐ", 90_000, "0123456789")
    assert isinstance(await bank.adapter.initiate_debit(request), Succeeded)
    [row] = await bank.moves(request.idempotency_key)
    day = business_date(row)
    fault = await bank.admin.add_fault("statement_missing_lines", probability=1.0)
    assert (await bank.adapter.fetch_statement(day)).lines == ()
    await bank.admin.clear_faults()
    await bank.admin.add_fault("statement_extra_lines", count=3)
    statement = await bank.adapter.fetch_statement(day)
    refs = {line.bank_ref for line in statement.lines}
    assert row["bank_ref"] in refs
    assert len(refs) == 4
    assert fault["mode"] == "statement_missing_lines"


async def test_malformed_statement_is_refused_whole(bank: BankUnderTest) -> None:
    request = DebitRequest("stmt-malformed", "6/QĐ", 80_000, "0123456789")
    assert isinstance(await bank.adapter.initiate_debit(request), Succeeded)
    [row] = await bank.moves(request.idempotency_key)
    await bank.admin.add_fault("malformed")
    with pytest.raises(StatementParseError):
        await bank.adapter.fetch_statement(business_date(row))


async def test_citizen_transfer_content_is_mangled_but_still_matches(
    vietqr_bank: BankUnderTest,
) -> None:
    decision = "1234/QĐ-XPVPHC"
    content = f"Nguyễn Văn Ánh nộp phạt quyết định {decision} biển số 30A-123.45 tháng 5"
    transfer = await vietqr_bank.admin.transfer("0987654321", 1_500_000, content)
    assert transfer["content_raw"] == content
    statement = await vietqr_bank.adapter.fetch_statement(business_date(transfer))
    [line] = [line for line in statement.lines if line.bank_ref == transfer["bank_ref"]]
    assert line.content == transfer["content"]
    assert line.content.isascii()
    assert len(line.content) <= 50
    assert line.content.startswith("Nguyen Van Anh nop phat quyet dinh 1234QDXPVPHC")
    assert mentions_decision(line.content, decision)
    assert line.direction is Direction.CREDIT
    assert line.end_to_end_ref is None


async def test_vietqr_reference_survives_truncation(vietqr_bank: BankUnderTest) -> None:
    adapter = vietqr_bank.adapter
    assert isinstance(adapter, VietQRBankAdapter)
    request = DebitRequest("long-decision", "99999999/QĐ-XPVPHC-" + "Đ" * 40, 20_000, "0123456789")
    result = await adapter.initiate_debit(request)
    assert isinstance(result, Succeeded)
    [row] = await vietqr_bank.moves(request.idempotency_key)
    assert len(row["content"]) <= 50
    assert row["content"].startswith(payment_reference(request.idempotency_key))
    assert await adapter.get_status(request.idempotency_key) == result


async def test_vietqr_payload_with_a_bad_crc_is_refused(vietqr_bank: BankUnderTest) -> None:
    adapter = vietqr_bank.adapter
    assert isinstance(adapter, VietQRBankAdapter)
    payload = adapter.qr_payload(DebitRequest("crc", "1/QĐ", 1_000, "0123456789"))
    broken = payload[:-4] + ("0000" if payload[-4:] != "0000" else "FFFF")
    async with vietqr_bank.session.post(
        vietqr_bank.sim.url + "/v1/qr-payments",
        json={"payload": broken, "payer_account": "0123456789"},
    ) as response:
        assert response.status == 400
        assert "CRC" in (await response.json())["error"]["message"]
    assert await vietqr_bank.admin.debits() == []


async def test_same_qr_content_with_another_amount_is_refused(vietqr_bank: BankUnderTest) -> None:
    first = DebitRequest("same-content", "1/QĐ", 1_000, "0123456789")
    other = DebitRequest("same-content", "1/QĐ", 2_000, "0123456789")
    assert isinstance(await vietqr_bank.adapter.initiate_debit(first), Succeeded)
    result = await vietqr_bank.adapter.initiate_debit(other)
    assert not isinstance(result, Succeeded)
    assert len(await vietqr_bank.moves("same-content")) == 1


async def _start_process(state: Path) -> tuple[asyncio.subprocess.Process, dict[str, str]]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bank_adapters.simulators",
        "--protocol",
        "rest",
        "--bank-id",
        "killed",
        "--state",
        str(state),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout=60)
    return process, json.loads(line)


async def _end(process: asyncio.subprocess.Process, signum: int) -> int:
    if process.returncode is None:
        process.send_signal(signum)
    assert process.stdout is not None
    await asyncio.wait_for(process.stdout.read(), timeout=30)  # to EOF: the pipe closes
    return await asyncio.wait_for(process.wait(), timeout=30)


async def test_simulator_survives_kill_9(tmp_path: Path) -> None:
    state = tmp_path / "killed.sqlite"
    request = DebitRequest("kill-9", "8/QĐ", 42_000, "0123456789")
    async with aiohttp.ClientSession() as session:
        process, info = await _start_process(state)
        try:
            adapter = build_adapter("killed", "rest", info["url"], session, options=FAST_OPTIONS)
            result = await adapter.initiate_debit(request)
            assert isinstance(result, Succeeded)
        finally:
            assert await _end(process, signal.SIGKILL) == -signal.SIGKILL
        process, info = await _start_process(state)
        try:
            adapter = build_adapter("killed", "rest", info["url"], session, options=FAST_OPTIONS)
            assert await adapter.get_status(request.idempotency_key) == result
            assert await adapter.initiate_debit(request) == result
            debits = await SimulatorAdmin(session, info["admin_url"]).debits()
            assert [d["idempotency_key"] for d in debits] == ["kill-9"]
        finally:
            # A clean stop (SIGTERM) ends with status 0.
            assert await _end(process, signal.SIGTERM) == 0
