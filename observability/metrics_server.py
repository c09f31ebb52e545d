"""Serve the process-wide Prometheus registry over aiohttp.

The API mounts ``metrics_handler`` on its own app (``add_metrics_route``);
the worker and the prober, which have no HTTP app of their own, run a
``MetricsServer`` that answers ``/metrics`` and a liveness ``/healthz``.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest

__all__ = ["MetricsServer", "add_metrics_route", "metrics_handler", "metrics_response"]

_REGISTRY_KEY = web.AppKey("observability.metrics_registry", CollectorRegistry)


def metrics_response(registry: CollectorRegistry = REGISTRY) -> web.Response:
    """The registry in the Prometheus text format, as an aiohttp response."""
    return web.Response(
        body=generate_latest(registry),
        headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"},
    )


async def metrics_handler(request: web.Request) -> web.Response:
    registry = request.app.get(_REGISTRY_KEY, REGISTRY)
    return metrics_response(registry)


async def _healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def add_metrics_route(
    app: web.Application, path: str = "/metrics", registry: CollectorRegistry = REGISTRY
) -> None:
    """Mount ``GET path`` serving ``registry`` on an existing app."""
    if registry is not REGISTRY:
        app[_REGISTRY_KEY] = registry
    app.router.add_get(path, metrics_handler)


class MetricsServer:
    """A tiny HTTP server with ``/metrics`` and ``/healthz``.

    ``await start()`` binds (port 0 picks a free port, see ``port``);
    ``await stop()`` closes it. Also an async context manager.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, registry: CollectorRegistry = REGISTRY
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError("port must be in [0, 65535]")
        self._host = host
        self._port = port
        self._registry = registry
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None

    @property
    def port(self) -> int:
        if self._bound_port is None:
            raise RuntimeError("the metrics server is not started")
        return self._bound_port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}/metrics"

    def make_app(self) -> web.Application:
        app = web.Application()
        add_metrics_route(app, "/metrics", self._registry)
        app.router.add_get("/healthz", _healthz)
        return app

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the metrics server is already started")
        runner = web.AppRunner(self.make_app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._bound_port = _bound_port(runner)

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        self._bound_port = None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> MetricsServer:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()


def _bound_port(runner: web.AppRunner) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    raise RuntimeError("the metrics server has no bound TCP address")
