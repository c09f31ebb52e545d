"""The metrics server over real HTTP on 127.0.0.1."""

from __future__ import annotations

import uuid

import aiohttp
import pytest
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter

from observability import metrics
from observability.metrics_server import MetricsServer, add_metrics_route


async def test_serves_the_default_registry_and_healthz() -> None:
    bank = f"m{uuid.uuid4().hex[:8]}"
    metrics.bank_link_up.labels(bank).set(1)
    async with MetricsServer("127.0.0.1", 0) as server, aiohttp.ClientSession() as http:
        async with http.get(server.url) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/plain; version=")
            body = await resp.text()
        assert f'bank_link_up{{bank="{bank}"}} 1.0' in body
        async with http.get(f"http://127.0.0.1:{server.port}/healthz") as resp:
            assert resp.status == 200
            assert await resp.json() == {"status": "ok"}


async def test_stop_releases_the_port_and_the_server_cannot_start_twice() -> None:
    server = MetricsServer()
    await server.start()
    with pytest.raises(RuntimeError, match="already started"):
        await server.start()
    await server.stop()
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port
    await server.stop()


async def test_route_on_an_existing_app_with_its_own_registry() -> None:
    registry = CollectorRegistry()
    Counter("widgets_total", "Widgets.", registry=registry).inc(3)
    app = web.Application()
    add_metrics_route(app, "/internal/metrics", registry)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{port}/internal/metrics") as resp,
        ):
            body = await resp.text()
        assert "widgets_total 3.0" in body
        assert "bank_link_up" not in body
    finally:
        await runner.cleanup()
