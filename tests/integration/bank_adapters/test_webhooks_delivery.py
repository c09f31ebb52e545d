"""The REST simulator calls a real webhook receiver that verifies with
``verify_webhook``: callbacks arrive signed, late ones arrive late, and a
replayed delivery is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bank_adapters.rest_bank import RestBankAdapter
from bank_adapters.simulators.admin import SimulatorAdmin
from bank_adapters.simulators.server import SimulatorHandle
from bank_adapters.types import DebitRequest, Declined, Succeeded
from bank_adapters.webhooks import InMemoryNonceStore, WebhookEvent, WebhookRejected, verify_webhook
from tests.integration.bank_adapters.conftest import FAST_OPTIONS, eventually

SECRET = "webhook-test-secret"


@dataclass
class Receiver:
    url: str = ""
    events: list[WebhookEvent] = field(default_factory=list)
    rejections: list[str] = field(default_factory=list)
    raw: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()
    nonces = InMemoryNonceStore(entries_max=1000)

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        state.raw.append((dict(request.headers), body))
        try:
            event = await verify_webhook(
                SECRET.encode(), request.headers, body, datetime.now(UTC), nonces
            )
        except WebhookRejected as exc:
            state.rejections.append(exc.code)
            return web.json_response(
                {"error": {"code": exc.code, "message": exc.reason}}, status=401
            )
        state.events.append(event)
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_post("/webhooks/{bank}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{site.port}/webhooks/bank-a"
    try:
        yield state
    finally:
        await runner.cleanup()


@pytest.fixture
async def bank_with_webhooks(
    receiver: Receiver, tmp_path: Path
) -> AsyncIterator[tuple[RestBankAdapter, SimulatorAdmin]]:
    async with (
        aiohttp.ClientSession() as session,
        SimulatorHandle(
            "rest", tmp_path / "rest.sqlite", webhook_url=receiver.url, webhook_secret=SECRET
        ) as sim,
    ):
        yield (
            RestBankAdapter("bank-a", sim.url, session, options=FAST_OPTIONS),
            SimulatorAdmin(session, sim.admin_url),
        )


def _request(key: str, payer: str = "0123456789", amount_vnd: int = 250_000) -> DebitRequest:
    return DebitRequest(key, "77/QĐ-XPHC", amount_vnd, payer)


async def test_final_statuses_arrive_signed(
    receiver: Receiver, bank_with_webhooks: tuple[RestBankAdapter, SimulatorAdmin]
) -> None:
    adapter, admin = bank_with_webhooks
    await admin.set_account("999000111", 0)
    ok = await adapter.initiate_debit(_request("wh-ok"))
    declined = await adapter.initiate_debit(_request("wh-declined", payer="999000111"))
    assert isinstance(ok, Succeeded)
    assert isinstance(declined, Declined)

    async def both() -> bool:
        return len(receiver.events) >= 2

    await eventually(both)
    by_key = {event.idempotency_key: event for event in receiver.events}
    assert by_key["wh-ok"].result == ok
    assert by_key["wh-ok"].amount_vnd == 250_000
    assert by_key["wh-declined"].result == declined
    assert receiver.rejections == []


async def test_replayed_delivery_is_refused(
    receiver: Receiver, bank_with_webhooks: tuple[RestBankAdapter, SimulatorAdmin]
) -> None:
    adapter, _ = bank_with_webhooks
    assert isinstance(await adapter.initiate_debit(_request("wh-replay")), Succeeded)

    async def delivered() -> bool:
        return len(receiver.events) == 1

    await eventually(delivered)
    headers, body = receiver.raw[0]
    async with aiohttp.ClientSession() as session:
        async with session.post(receiver.url, data=body, headers=headers) as response:
            assert response.status == 401
        tampered = body.replace(b"250000", b"950000")
        async with session.post(receiver.url, data=tampered, headers=headers) as response:
            assert response.status == 401
    assert receiver.rejections == ["replayed_nonce", "bad_signature"]
    assert len(receiver.events) == 1


async def test_late_webhook_is_held_back(
    receiver: Receiver, bank_with_webhooks: tuple[RestBankAdapter, SimulatorAdmin]
) -> None:
    adapter, admin = bank_with_webhooks
    await admin.add_fault("late_webhook", delay_seconds=0.5)
    assert isinstance(await adapter.initiate_debit(_request("wh-late")), Succeeded)
    [row] = await admin.webhooks()
    [debit] = [d for d in await admin.debits() if d["idempotency_key"] == "wh-late"]
    created = datetime.fromisoformat(debit["created_at"]).timestamp()
    assert row["due_at"] >= created + 0.5

    async def delivered() -> bool:
        return len(receiver.events) == 1

    await eventually(delivered)
    assert receiver.events[0].idempotency_key == "wh-late"


async def test_webhooks_wait_while_the_link_is_down(
    receiver: Receiver, bank_with_webhooks: tuple[RestBankAdapter, SimulatorAdmin]
) -> None:
    adapter, admin = bank_with_webhooks
    await admin.set_account("444000111", 10_000_000, settle_delay_seconds=0.2)
    assert not isinstance(await adapter.initiate_debit(_request("wh-link", "444000111")), Succeeded)
    await admin.add_fault("link_down")

    async def settled() -> bool:
        rows = [d for d in await admin.debits() if d["idempotency_key"] == "wh-link"]
        return rows[0]["status"] == "succeeded"

    await eventually(settled)
    [row] = await admin.webhooks()
    assert row["delivered_at"] is None
    assert receiver.events == []
    await admin.clear_faults()

    async def delivered() -> bool:
        return len(receiver.events) == 1

    await eventually(delivered)
    assert isinstance(receiver.events[0].result, Succeeded)
