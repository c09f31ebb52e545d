"""Split timeouts tell "never sent" from "maybe done", against raw sockets
on 127.0.0.1 that misbehave in exactly one way each."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import aiohttp
import pytest
from pydantic import ValidationError

from bank_adapters.base import AdapterOptions, BreakerConfig, Timeouts
from bank_adapters.rest_bank import RestBankAdapter
from bank_adapters.types import DebitRequest, LinkDown, OutcomeUnknown
from reconciler.settings import BankSettings, Settings
from reconciler.wiring import build_adapters

OPTIONS = AdapterOptions(
    timeouts=Timeouts(connect_seconds=0.3, read_seconds=0.3, total_seconds=3.0),
    breaker=BreakerConfig(failures_to_open=1000),
)
REQUEST = DebitRequest("timeouts-1", "1/QĐ", 1_000, "0123456789")


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops new SYNs, so a
    connect hangs until the connect timeout, and nothing is ever sent."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(8):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        server.close()


async def _serve(
    handle: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[int]:
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def silent_after_request() -> AsyncIterator[int]:
    """Reads the request, then never answers."""
    done = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await done.wait()
        writer.close()

    async for port in _serve(handle):
        yield port
    done.set()


@pytest.fixture
async def drops_after_request() -> AsyncIterator[int]:
    """Reads the request, then closes the connection without a word."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async for port in _serve(handle):
        yield port


async def _debit(port: int) -> object:
    async with aiohttp.ClientSession() as session:
        adapter = RestBankAdapter("timeouts", f"http://127.0.0.1:{port}", session, options=OPTIONS)
        return await adapter.initiate_debit(REQUEST)


async def test_connect_timeout_is_link_down(full_backlog: int) -> None:
    result = await _debit(full_backlog)
    assert isinstance(result, LinkDown)
    assert "ConnectionTimeoutError" in result.detail


async def test_closed_port_is_link_down() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = await _debit(port)
    assert isinstance(result, LinkDown)


async def test_read_timeout_after_sending_is_outcome_unknown(silent_after_request: int) -> None:
    result = await _debit(silent_after_request)
    assert isinstance(result, OutcomeUnknown)
    assert "SocketTimeoutError" in result.detail


async def test_dropped_connection_after_sending_is_outcome_unknown(
    drops_after_request: int,
) -> None:
    result = await _debit(drops_after_request)
    assert isinstance(result, OutcomeUnknown)
    assert "ServerDisconnectedError" in result.detail


async def test_a_banks_configured_read_timeout_is_the_adapters(silent_after_request: int) -> None:
    """``read_timeout_seconds`` in a bank's settings reaches the adapter the
    composition root builds: a silent bank is cut after it (0.3 s here, the
    default being 10 s) and the outcome is unknown, never a failure."""
    settings = Settings(
        env="dev",
        banks={
            "slowbank": BankSettings(
                protocol="rest",
                url=f"http://127.0.0.1:{silent_after_request}",
                read_timeout_seconds=0.3,
            )
        },
    )
    async with aiohttp.ClientSession() as session:
        adapter = build_adapters(settings, session)["slowbank"]
        result = await asyncio.wait_for(adapter.initiate_debit(REQUEST), timeout=5.0)
    assert isinstance(result, OutcomeUnknown)
    assert "SocketTimeoutError" in result.detail


@pytest.mark.parametrize("seconds", [0, -1, 30.5])
def test_a_read_timeout_out_of_bounds_is_refused(seconds: float) -> None:
    with pytest.raises(ValidationError, match="read_timeout_seconds"):
        BankSettings(protocol="rest", url="http://127.0.0.1:9", read_timeout_seconds=seconds)
