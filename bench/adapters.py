"""Bank adapter call overhead: each adapter operation against a raw aiohttp
call doing the same HTTP exchange with the same simulator, as a ratio.

The simulator runs in its own process (``python -m bank_adapters.simulators``)
so its work does not share the client's event loop. For every operation the
two variants run in alternating batches in the same process and run, and the
median per-call time of each is compared: the ratio (adapter / raw) is what
the adapter adds (request building, split timeouts, breaker, bounded body
read, result mapping, metrics).

    .venv/bin/python bench/adapters.py [--calls 200] [--rounds 5] [--no-write]
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bank_adapters.base import AdapterOptions
from bank_adapters.factory import build_adapter
from bank_adapters.rest_bank import RestBankAdapter
from bank_adapters.text import find_payment_references, payment_reference
from bank_adapters.types import DebitRequest, Succeeded
from bank_adapters.vietqr_bank import VietQRBankAdapter
from bench.common import Section, parser, report, simulator_process

PAYER = "0123456789"
Call = Callable[[int], Awaitable[None]]


async def _per_call_seconds(call: Call, start: int, calls: int) -> float:
    began = time.perf_counter()
    for n in range(start, start + calls):
        await call(n)
    return (time.perf_counter() - began) / calls


async def _compare(adapter_call: Call, raw_call: Call, calls: int, rounds: int) -> dict[str, float]:
    counter = itertools.count(step=calls)
    await _per_call_seconds(adapter_call, next(counter), min(calls, 20))  # warm up both
    await _per_call_seconds(raw_call, next(counter), min(calls, 20))
    adapter_times: list[float] = []
    raw_times: list[float] = []
    for round_number in range(rounds):
        # Alternate which goes first, so drift in the machine hits both alike.
        order = [(adapter_call, adapter_times), (raw_call, raw_times)]
        for call, times in order if round_number % 2 == 0 else reversed(order):
            times.append(await _per_call_seconds(call, next(counter), calls))
    adapter_s, raw_s = statistics.median(adapter_times), statistics.median(raw_times)
    return {
        "adapter_us": round(adapter_s * 1e6, 1),
        "raw_us": round(raw_s * 1e6, 1),
        "ratio": round(adapter_s / raw_s, 3),
    }


def _debit(key: str, amount_vnd: int = 10_000) -> DebitRequest:
    return DebitRequest(key, "1234/QĐ-XPVPHC", amount_vnd, PAYER, "Nop phat")


async def _rest(
    session: aiohttp.ClientSession, url: str, calls: int, rounds: int
) -> dict[str, dict[str, float]]:
    adapter = build_adapter("bench-rest", "rest", url, session, options=AdapterOptions())
    assert isinstance(adapter, RestBankAdapter)
    known = await adapter.initiate_debit(_debit("bench-known"))
    assert isinstance(known, Succeeded)

    async def adapter_status(_: int) -> None:
        assert isinstance(await adapter.get_status("bench-known"), Succeeded)

    async def raw_status(_: int) -> None:
        async with session.get(f"{url}/v1/debits/bench-known") as response:
            assert (await response.json())["status"] == "ACSC"

    async def adapter_debit(n: int) -> None:
        assert isinstance(await adapter.initiate_debit(_debit(f"a-{n}")), Succeeded)

    async def raw_debit(n: int) -> None:
        body = {
            "amount": 10_000,
            "currency": "VND",
            "debtor_account": PAYER,
            "reference": "1234/QĐ-XPVPHC",
            "description": "Nop phat",
        }
        async with session.post(
            f"{url}/v1/debits", json=body, headers={"Idempotency-Key": f"r-{n}"}
        ) as response:
            assert response.status == 201  # a new debit, not a replay
            assert (await response.json())["status"] == "ACSC"

    return {
        "get_status": await _compare(adapter_status, raw_status, calls, rounds),
        "initiate_debit": await _compare(adapter_debit, raw_debit, calls, rounds),
    }


async def _vietqr(
    session: aiohttp.ClientSession, info: dict[str, str], calls: int, rounds: int
) -> dict[str, dict[str, float]]:
    url = info["url"]
    adapter = build_adapter(
        "bench-vietqr",
        "vietqr",
        url,
        session,
        account_number=info["account_number"],
        bank_bin=info["bank_bin"],
        options=AdapterOptions(),
    )
    assert isinstance(adapter, VietQRBankAdapter)
    # A history of 50 payments; the one looked up is the last, so both
    # variants read one full page.
    for n in range(50):
        assert isinstance(await adapter.initiate_debit(_debit(f"history-{n}")), Succeeded)
    reference = payment_reference("history-49")

    async def adapter_status(_: int) -> None:
        assert isinstance(await adapter.get_status("history-49"), Succeeded)

    async def raw_status(_: int) -> None:
        now = datetime.now(UTC)
        params = {
            "from": (now - timedelta(days=7)).isoformat(),
            "to": (now + timedelta(minutes=5)).isoformat(),
            "page_size": "200",
        }
        async with session.get(f"{url}/v1/transactions", params=params) as response:
            page = await response.json()
        assert any(reference in find_payment_references(t["content"]) for t in page["transactions"])

    async def adapter_debit(n: int) -> None:
        assert isinstance(await adapter.initiate_debit(_debit(f"a-{n}")), Succeeded)

    async def raw_debit(n: int) -> None:
        # The raw call gets its payload for free: building it is adapter work.
        payload = raw_payloads[n]
        async with session.post(
            f"{url}/v1/qr-payments",
            json={"payload": payload, "payer_account": PAYER},
            headers={"X-Request-ID": f"r-{n}"},
        ) as response:
            assert response.status == 201  # a new transfer, not a replay
            assert (await response.json())["response_code"] == "00"

    # _compare numbers calls from 0 up to (2 + 2 * rounds) batches of ``calls``.
    raw_payloads = [adapter.qr_payload(_debit(f"raw-{n}")) for n in range(calls * (3 + 2 * rounds))]
    return {
        "get_status (history)": await _compare(adapter_status, raw_status, calls, rounds),
        "initiate_debit (QR)": await _compare(adapter_debit, raw_debit, calls, rounds),
    }


async def run(calls: int, rounds: int) -> dict[str, dict[str, dict[str, float]]]:
    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-adapters-") as tmp:
        for protocol in ("rest", "vietqr"):
            state = Path(tmp) / f"{protocol}.sqlite"
            async with (
                simulator_process(protocol, f"bench-{protocol}", state) as (_, info),
                aiohttp.ClientSession() as session,
            ):
                if protocol == "rest":
                    results[protocol] = await _rest(session, info["url"], calls, rounds)
                else:
                    results[protocol] = await _vietqr(session, info, calls, rounds)
    return results


def _table(results: dict[str, dict[str, dict[str, float]]], calls: int, rounds: int) -> str:
    rows = [
        "| bank protocol | operation | adapter µs/call | raw aiohttp µs/call | ratio adapter/raw |",
        "| --- | --- | ---: | ---: | ---: |",
    ]
    for protocol, operations in results.items():
        for operation, figures in operations.items():
            rows.append(
                f"| {protocol} | {operation} | {figures['adapter_us']} | {figures['raw_us']} "
                f"| {figures['ratio']} |"
            )
    return (
        "Sequential calls from one client to a simulator in its own process on "
        f"127.0.0.1; {rounds} alternating rounds of {calls} calls per variant, median "
        'round. "raw" is a bare `session.get/post` doing the same HTTP exchange '
        "and reading the JSON answer (for the VietQR debit, with the QR payload "
        "built in advance). Both include the simulator's own work (SQLite commit "
        "for debits), which is most of the time: the ratio is what the adapter "
        "adds on top.\n\n" + "\n".join(rows)
    )


def main() -> None:
    args = parser(None, calls=200, rounds=5).parse_args()
    title = "Bank adapter call overhead"
    results = asyncio.run(run(args.calls, args.rounds))
    report(results, args, Section("adapters", title, lambda r: _table(r, args.calls, args.rounds)))


if __name__ == "__main__":
    main()
