"""The edge middlewares: an access log line per request, and the screen
that refuses what no route accepts before authentication runs.

The access log names the route by its template (``/verify/{series}/{number}``),
never the raw path or the query string, so no verify token, signed link or
decision number typed into a URL reaches the log; the principal by name.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Final

from aiohttp import web

from reconciler.api.auth import PRINCIPAL
from reconciler.api.bodies import refuse_declared_length
from reconciler.api.errors import Handler
from reconciler.api.params import screen_request
from reconciler.api.problems import CLIENT_CLOSED, REQUEST_ID
from reconciler.logs import uncached_logger

log = uncached_logger("reconciler.api.access")

# What the Server header says instead of aiohttp's name and version.
SERVER_NAME: Final = "reconciler"


def route_template(request: web.BaseRequest) -> str:
    resource = request.match_info.route.resource if isinstance(request, web.Request) else None
    return resource.canonical if resource is not None else "unmatched"


async def observed(
    request: web.Request, handler: Handler, done: Callable[[int], None]
) -> web.StreamResponse:
    """``handler(request)``, then ``done(status)``: the response's, an HTTP
    exception's, 500 for any other exception, ``CLIENT_CLOSED`` when the
    client went away (the handler was cancelled)."""
    status = CLIENT_CLOSED
    try:
        response = await handler(request)
        status = response.status
        return response
    except asyncio.CancelledError:
        raise
    except web.HTTPException as err:
        status = err.status
        raise
    except Exception:
        status = 500
        raise
    finally:
        done(status)


@web.middleware
async def access_log_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = secrets.token_hex(8)
    request[REQUEST_ID] = request_id
    started = time.perf_counter()

    def done(status: int) -> None:
        principal = request.get(PRINCIPAL)
        log.info(
            "http.request",
            method=request.method,
            route=route_template(request),
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
            client=request.remote,
            principal=principal.actor if principal is not None else None,
            request_id=request_id,
        )

    response = await observed(request, handler, done)
    if not response.prepared:
        response.headers["X-Request-Id"] = request_id
    return response


@web.middleware
async def screen_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Before authentication: a declared body over the route's cap (413),
    unprintable headers the service reads, hostile path or query values."""
    refuse_declared_length(request)
    screen_request(request)
    return await handler(request)


async def neutral_server_header(request: web.Request, response: web.StreamResponse) -> None:
    """No version banner: aiohttp would name itself and its version."""
    response.headers["Server"] = SERVER_NAME
