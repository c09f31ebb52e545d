"""Bearer-token authentication and role checks for the JSON API."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from ledger.access import Principal, principal_for_token
from reconciler.api.errors import ApiError, Handler
from reconciler.api.keys import ENGINE

PRINCIPAL: Final = web.RequestKey("principal", Principal)

# What each role may do through the API.
PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    "portal": frozenset({"fines:read", "fines:write", "payments:read", "payments:write"}),
    "officer": frozenset(
        {"fines:read", "payments:read", "receipts:read", "disputes:read", "disputes:open"}
    ),
    "finance": frozenset(
        {
            "fines:read",
            "payments:read",
            "receipts:read",
            "recon:read",
            "recon:write",
            "disputes:read",
            "disputes:open",
            "disputes:resolve",
            "approvals:read",
        }
    ),
    "approver": frozenset(
        {
            "fines:read",
            "payments:read",
            "receipts:read",
            "recon:read",
            "disputes:read",
            "approvals:read",
            "approvals:decide",
        }
    ),
    "operator": frozenset({"fines:read", "payments:read", "ops:read", "ops:write"}),
    "admin": frozenset(
        {
            "fines:read",
            "fines:write",
            "payments:read",
            "payments:write",
            "receipts:read",
            "recon:read",
            "recon:write",
            "ops:read",
            "ops:write",
            "disputes:read",
            "disputes:open",
            "disputes:resolve",
            "approvals:read",
            "approvals:decide",
        }
    ),
}


def _is_protected(path: str) -> bool:
    return path.startswith("/api/")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not _is_protected(request.path):
        return await handler(request)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send an API token as 'Authorization: Bearer <token>'")
    async with request.app[ENGINE].connect() as conn:
        principal = await principal_for_token(conn, token.strip())
    if principal is None:
        raise ApiError(401, "unauthorized", "the API token is unknown or revoked")
    request[PRINCIPAL] = principal
    return await handler(request)


def require(request: web.Request, permission: str) -> Principal:
    principal: Principal = request[PRINCIPAL]
    if permission not in PERMISSIONS.get(principal.role, frozenset()):
        raise ApiError(403, "forbidden", f"role {principal.role!r} may not do this ({permission})")
    return principal
