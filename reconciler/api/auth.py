"""Bearer-token authentication and role checks for the JSON API.

Verified tokens are cached in process memory for ``TOKEN_CACHE_TTL_SECONDS``
(see ``TokenCache``): revoking a token (setting ``api_tokens.revoked_at``) or
changing its role takes effect within that time in every API process, not at
once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from aiohttp import web

from ledger.access import Principal, hash_token, principal_for_token
from reconciler.api.errors import ApiError, Handler
from reconciler.api.keys import READER

PRINCIPAL: Final = web.RequestKey("principal", Principal)

# Short enough that a revoked token stops working promptly; long enough that a
# client sending a steady stream of requests costs one database check per
# TTL instead of one per request.
TOKEN_CACHE_TTL_SECONDS: Final = 5.0
# Far more than the number of tokens a deployment issues (one per portal or
# integration); the bound only matters if someone sprays valid tokens.
TOKEN_CACHE_ENTRIES_MAX: Final = 1024


class TokenCache:
    """Principals of recently verified tokens, so that a request whose token
    the database accepted less than ``ttl_seconds`` ago is not checked again.

    Only accepted tokens are kept, keyed by their SHA-256 digest (never the
    token itself); an unknown or revoked token is looked up every time, so
    creating a token takes effect at once. An entry is dropped once it is
    ``ttl_seconds`` old, whether it is used or not, so a revocation is seen
    within that time. At most ``entries_max`` entries: when full, the oldest
    verification goes first.
    """

    def __init__(
        self,
        ttl_seconds: float = TOKEN_CACHE_TTL_SECONDS,
        entries_max: int = TOKEN_CACHE_ENTRIES_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert ttl_seconds > 0, ttl_seconds
        assert entries_max > 0, entries_max
        self.ttl_seconds = ttl_seconds
        self.entries_max = entries_max
        self._clock = clock
        # digest -> (principal, verified_at); in order of verification, so the
        # first entry is always the oldest.
        self._entries: OrderedDict[str, tuple[Principal, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, digest: str) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        principal, verified_at = entry
        if self._clock() - verified_at >= self.ttl_seconds:
            del self._entries[digest]
            return None
        return principal

    def put(self, digest: str, principal: Principal) -> None:
        self._entries.pop(digest, None)
        self._entries[digest] = (principal, self._clock())
        while len(self._entries) > self.entries_max:
            self._entries.popitem(last=False)
        assert len(self._entries) <= self.entries_max


TOKEN_CACHE: Final = web.AppKey("token_cache", TokenCache)

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
    token = token.strip()
    digest = hash_token(token)
    cache = request.app[TOKEN_CACHE]
    principal = cache.get(digest)
    if principal is None:
        principal = await request.app[READER].run(lambda conn: principal_for_token(conn, token))
        if principal is None:
            raise ApiError(401, "unauthorized", "the API token is unknown or revoked")
        cache.put(digest, principal)
    request[PRINCIPAL] = principal
    return await handler(request)


def require(request: web.Request, permission: str) -> Principal:
    principal: Principal = request[PRINCIPAL]
    if permission not in PERMISSIONS.get(principal.role, frozenset()):
        raise ApiError(403, "forbidden", f"role {principal.role!r} may not do this ({permission})")
    return principal
