"""The aiohttp application factory: the API's composition at the edge."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.receipts.signing import ReceiptVerifier
from observability.metrics import (
    http_request_duration_seconds,
    http_requests_total,
    process_heartbeat_timestamp_seconds,
)
from reconciler.api import (
    alerts,
    disputes,
    fines,
    operations,
    payments,
    receipts,
    reconciliations,
    webhooks,
)
from reconciler.api.auth import TOKEN_CACHE, TokenCache, auth_middleware
from reconciler.api.errors import Handler, error_middleware, error_response
from reconciler.api.keys import ENGINE, READER, SAGA, SETTINGS, TEMPORAL, VERIFIER
from reconciler.api.reads import Reader
from reconciler.api.temporal_link import TemporalLink
from reconciler.db import create_engine, create_read_engine
from reconciler.ops_gauges import check_postgres
from reconciler.settings import Settings
from reconciler.wiring import load_signer, saga_config

log = structlog.get_logger(__name__)


def _route_template(request: web.Request) -> str:
    """The route's template (``/api/v1/fines/{decision_number}``), never the
    path itself: label values stay bounded by the routes the app has."""
    route = request.match_info.route.resource
    return route.canonical if route is not None else "unmatched"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as err:
        status = err.status
        raise
    finally:
        http_requests_total.labels(
            _route_template(request), request.method, f"{status // 100}xx"
        ).inc()


@web.middleware
async def latency_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Time every request by route template and method, whatever its status
    (the lookup SLO of alerts.yml reads this histogram)."""
    started = time.perf_counter()
    try:
        return await handler(request)
    finally:
        http_request_duration_seconds.labels(_route_template(request), request.method).observe(
            time.perf_counter() - started
        )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    try:
        async with request.app[ENGINE].connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (OSError, SQLAlchemyError) as err:
        log.warning("readyz.database_unavailable", error=str(err))
        return error_response(503, "not_ready", f"database unavailable: {type(err).__name__}")
    return web.json_response({"status": "ready", "database": "ok"})


async def metrics(request: web.Request) -> web.Response:
    process_heartbeat_timestamp_seconds.labels("api").set(time.time())
    await check_postgres(request.app[ENGINE], "api")
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def create_app(
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    temporal: TemporalLink | None = None,
    verifier: ReceiptVerifier | None = None,
    token_cache: TokenCache | None = None,
) -> web.Application:
    """Build the app. ``engine`` is injected by tests; otherwise one is created
    from settings and disposed with the app. ``token_cache`` lets a test drive
    the cache's clock."""
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[latency_middleware, metrics_middleware, error_middleware, auth_middleware],
    )
    app[SETTINGS] = settings
    app[TEMPORAL] = temporal or TemporalLink(
        settings.temporal_address,
        settings.temporal_namespace,
        settings.temporal_connect_timeout_seconds,
    )
    app[SAGA] = saga_config(settings)
    app[VERIFIER] = verifier or load_signer(settings).verifier()
    app[TOKEN_CACHE] = token_cache if token_cache is not None else TokenCache()

    async def database(app: web.Application) -> AsyncIterator[None]:
        owned = engine is None
        app[ENGINE] = engine if engine is not None else create_engine(settings)
        # Same database as ENGINE (also when a test injects it), own pool.
        read_engine = create_read_engine(app[ENGINE].url, pool_size=settings.db_pool_size)
        app[READER] = Reader(read_engine, pool_size=settings.db_pool_size)
        yield
        await read_engine.dispose()
        if owned:
            await app[ENGINE].dispose()

    app.cleanup_ctx.append(database)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    fines.add_routes(app)
    payments.add_routes(app)
    receipts.add_routes(app)
    webhooks.add_routes(app)
    operations.add_routes(app)
    disputes.add_routes(app)
    reconciliations.add_routes(app)
    alerts.add_routes(app)
    return app
