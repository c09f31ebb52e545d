"""The JSON API described as OpenAPI 3.1, served at ``GET /api/v1/openapi.json``.

Who may read it: any valid token (person or service account), not the
public. It holds no secret (no token, key, user or bank address: only
routes, parameters, shapes and the names of the configured banks), but it is
a map of every staff and admin route, and the callers that need it (the
citizens' portal, integrations, the contract test) all hold a token.

The document is built once per app from the settings (the bank names and
the amount bound become enums and bounds) by the per-area modules
``openapi_money``, ``openapi_fines``, ``openapi_recon``, ``openapi_finance``,
``openapi_ops`` and ``openapi_identity``; a unit test
fails when a registered ``/api/v1`` route is missing from it or it describes
one that does not exist, so a route added later must be described here.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from reconciler.api import (
    openapi_finance,
    openapi_fines,
    openapi_identity,
    openapi_money,
    openapi_ops,
    openapi_recon,
)
from reconciler.api.keys import SETTINGS
from reconciler.api.openapi_parts import ERROR_SCHEMA, error_responses
from reconciler.api.views import json_response
from reconciler.settings import Settings

PATH: Final = "/api/v1/openapi.json"
API_PREFIX: Final = "/api/v1/"
DOCUMENT: Final = web.AppKey("openapi_document", dict[str, Any])

_DESCRIPTION: Final = (
    "Traffic-fine payments, receipts and reconciliation. Every route but the "
    "login takes `Authorization: Bearer <token>`. Errors are always "
    '`{"error": {"code", "message"}}` (a bad input also names its `field`). '
    "Money is integer đồng. See docs/interfaces.md for the stable contract."
)


def build_document(settings: Settings) -> dict[str, Any]:
    """The whole document for an app run with ``settings``."""
    banks = sorted(settings.banks)
    paths = merge_paths(
        openapi_money.paths(banks, settings.max_amount_vnd),
        openapi_fines.paths(settings.max_amount_vnd),
        openapi_recon.paths(banks),
        openapi_finance.paths(banks),
        openapi_ops.paths(banks),
        openapi_identity.paths(),
    )
    return {
        "openapi": "3.1.0",
        "info": {"title": "fine-reconciler API", "version": "1", "description": _DESCRIPTION},
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": dict(sorted(paths.items())),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API token (rk_...) or a login token",
                }
            },
            "schemas": {
                "Error": ERROR_SCHEMA,
                **openapi_money.schemas(),
                **openapi_fines.schemas(),
                **openapi_recon.schemas(),
                **openapi_finance.schemas(),
                **openapi_ops.schemas(),
                **openapi_identity.schemas(),
            },
            "responses": error_responses(),
        },
    }


def merge_paths(*parts: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The path items of every module, route by route: two modules may
    describe different methods of one route (a GET here, a POST there), but
    never the same one twice."""
    merged: dict[str, dict[str, Any]] = {}
    for part in parts:
        for route, item in part.items():
            methods = merged.setdefault(route, {})
            twice = set(methods) & set(item)
            if twice:
                raise ValueError(f"{route}: {sorted(twice)} described twice")
            methods.update(item)
    return merged


def described_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation the document describes."""
    methods = {"get", "post", "put", "patch", "delete"}
    return {
        (method.upper(), route)
        for route, item in document["paths"].items()
        for method in item
        if method in methods
    }


def registered_operations(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, path template) of every ``/api/v1`` route of ``app`` (HEAD,
    which aiohttp adds to each GET, left out)."""
    found = set()
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        template = str(info.get("formatter") or info.get("path") or "")
        if template.startswith(API_PREFIX) and route.method != "HEAD":
            found.add((route.method, template))
    return found


async def openapi_json(request: web.Request) -> web.Response:
    # Any token: the auth middleware has already refused a request without one.
    return json_response(request.app[DOCUMENT])


def add_routes(app: web.Application) -> None:
    app[DOCUMENT] = build_document(app[SETTINGS])
    app.router.add_get(PATH, openapi_json)
