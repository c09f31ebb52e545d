"""The aiohttp application factory: the API's composition at the edge."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Final

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.access import PasswordChecker
from ledger.fines_admin import IMPORT_BYTES_MAX
from ledger.receipts.signing import ReceiptVerifier
from observability.metrics import (
    http_request_duration_seconds,
    http_requests_total,
    process_heartbeat_timestamp_seconds,
)
from reconciler import console
from reconciler.api import (
    alerts,
    discrepancy_queue,
    disputes,
    fines,
    fines_admin,
    identity,
    lists,
    openapi,
    operations,
    operator_views,
    payments,
    public,
    receipts,
    reconciliations,
    reports,
    staff,
    webhooks,
)
from reconciler.api.auth import TOKEN_CACHE, TokenCache, auth_middleware
from reconciler.api.bodies import BODY_RULES, BodyRule, BodyRules
from reconciler.api.edge import (
    access_log_middleware,
    neutral_server_header,
    observed,
    route_template,
    screen_middleware,
)
from reconciler.api.errors import Handler, error_middleware
from reconciler.api.keys import CITIZEN_LINKS, ENGINE, READER, SAGA, SETTINGS, TEMPORAL, VERIFIER
from reconciler.api.limits import RATE_LIMITS, Rate, RateLimits
from reconciler.api.login_throttle import LOGIN_THROTTLE, FailureWindow, LoginThrottle
from reconciler.api.problems import CLIENT_CLOSED
from reconciler.api.readiness import READINESS, Readiness, readyz
from reconciler.api.reads import Reader
from reconciler.api.temporal_link import TemporalLink
from reconciler.citizen_links import CitizenLinks
from reconciler.console import finance_recon
from reconciler.db import create_engine, create_read_engine
from reconciler.ops_gauges import check_postgres
from reconciler.settings import Settings
from reconciler.wiring import load_verifier, saga_config, temporal_tls

log = structlog.get_logger(__name__)


# The status label of a request whose client hung up before the answer:
# not a failure of ours, so not a 5xx.
CLIENT_CLOSED_LABEL: Final = "client_closed"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count every request by route template, method and status class, and
    time it (the lookup SLO of alerts.yml reads the histogram)."""
    started = time.perf_counter()

    def done(status: int) -> None:
        route = route_template(request)
        label = CLIENT_CLOSED_LABEL if status == CLIENT_CLOSED else f"{status // 100}xx"
        http_requests_total.labels(route, request.method, label).inc()
        http_request_duration_seconds.labels(route, request.method).observe(
            time.perf_counter() - started
        )

    return await observed(request, handler, done)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    process_heartbeat_timestamp_seconds.labels("api").set(time.time())
    await check_postgres(request.app[ENGINE], "api")
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def body_rules(settings: Settings) -> BodyRules:
    """How big each route's body may be, and how long it may take to arrive."""
    return BodyRules(
        default=BodyRule(settings.max_body_bytes, settings.body_read_seconds),
        by_route={
            "/api/v1/statements": BodyRule(
                settings.recon_upload_bytes_max, settings.upload_read_seconds
            ),
            finance_recon.UPLOAD_PATH: BodyRule(
                settings.recon_upload_bytes_max + finance_recon.UPLOAD_FRAMING_BYTES,
                settings.upload_read_seconds,
            ),
            "/api/v1/fines/import": BodyRule(IMPORT_BYTES_MAX, settings.upload_read_seconds),
            # The console's upload: the file in a multipart form.
            "/console/fines/import": BodyRule(
                IMPORT_BYTES_MAX + 64 * 1024, settings.upload_read_seconds
            ),
            "/webhooks/{bank}": BodyRule(
                webhooks.WEBHOOK_BODY_BYTES_MAX, settings.body_read_seconds
            ),
            alerts.WEBHOOK_PATH: alerts.body_rule(settings.body_read_seconds),
        },
    )


def _edge(app: web.Application, settings: Settings, rules: BodyRules) -> None:
    app[BODY_RULES] = rules
    app[RATE_LIMITS] = RateLimits(
        Rate(settings.public_rate_per_minute, settings.public_rate_burst),
        clients_max=settings.rate_limit_clients_max,
    )
    if not settings.receipt_link_key:
        log.warning(
            "api.citizen_links_ephemeral",
            hint="set RECONCILER_RECEIPT_LINK_KEY: signed PDF links die with this process",
        )
    app[CITIZEN_LINKS] = CitizenLinks.from_secret(
        settings.receipt_link_secret(), settings.public_base_url, settings.citizen_link_ttl_seconds
    )
    app.on_response_prepare.append(neutral_server_header)


def create_app(
    settings: Settings,
    *,
    engine: AsyncEngine | None = None,
    temporal: TemporalLink | None = None,
    verifier: ReceiptVerifier | None = None,
    token_cache: TokenCache | None = None,
    readiness: Readiness | None = None,
) -> web.Application:
    """Build the app. ``engine`` is injected by tests; otherwise one is created
    from settings and disposed with the app. ``token_cache`` lets a test drive
    the cache's clock, ``readiness`` that of ``/readyz``'s."""
    rules = body_rules(settings)
    app = web.Application(
        client_max_size=rules.bytes_max,
        middlewares=[
            access_log_middleware,
            metrics_middleware,
            error_middleware,
            screen_middleware,
            auth_middleware,
        ],
    )
    _edge(app, settings, rules)
    app[SETTINGS] = settings
    app[TEMPORAL] = temporal or TemporalLink(
        settings.temporal_address,
        settings.temporal_namespace,
        settings.temporal_connect_timeout_seconds,
        tls=temporal_tls(settings),
    )
    app[SAGA] = saga_config(settings)
    app[VERIFIER] = verifier or load_verifier(settings)
    app[TOKEN_CACHE] = token_cache if token_cache is not None else TokenCache()
    app[READINESS] = readiness if readiness is not None else Readiness()
    app[identity.PASSWORDS] = PasswordChecker(settings.argon2_concurrency)
    window = settings.login_throttle_window_seconds
    app[LOGIN_THROTTLE] = LoginThrottle(
        FailureWindow(settings.login_failures_per_address, window),
        FailureWindow(settings.login_failures_per_username, window),
    )

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
    operator_views.add_routes(app)  # before payments: /payments/in-doubt
    fines_admin.add_routes(app)
    payments.add_routes(app)
    receipts.add_routes(app)
    public.add_routes(app)
    webhooks.add_routes(app)
    operations.add_routes(app)
    disputes.add_routes(app)
    reconciliations.add_routes(app)
    identity.add_routes(app)
    staff.add_routes(app)
    alerts.add_routes(app)
    lists.add_routes(app)
    reports.add_routes(app)
    discrepancy_queue.add_routes(app)
    openapi.add_routes(app)
    console.add_routes(app)
    return app
