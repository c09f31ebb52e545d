"""Bearer-token authentication, the role table and unit scope for the JSON API.

Every ``/api/`` route but the login takes ``Authorization: Bearer <token>``;
the token resolves to a ``Principal`` (a person or a service account, with
its role and unit scope) whose ``actor`` every write records.

Verified tokens are cached in process memory for ``TOKEN_CACHE_TTL_SECONDS``
(see ``TokenCache``): revoking a token, disabling its owner or changing their
role takes effect within that time in every API process, not at once (a
logout drops the token from its own process's cache at once). A token's
expiry is honoured exactly: a cached principal is dropped once its token
has expired.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from ledger.access import Principal, hash_token, lookup_token
from ledger.access.sessions import (
    TOUCH_RESOLUTION,
    Session,
    session_principal,
    touch_session,
)
from ledger.access.tokens import needs_use_noted, note_token_used
from ledger.core.errors import NotFoundError
from reconciler.api.errors import ApiError, Handler
from reconciler.api.keys import ENGINE, READER

PRINCIPAL: Final = web.RequestKey("principal", Principal)
# The digest of the presenting token, for the logout to drop it from the cache.
TOKEN_DIGEST: Final = web.RequestKey("token_digest", str)

# Short enough that a revoked token stops working promptly; long enough that a
# client sending a steady stream of requests costs one database check per
# TTL instead of one per request.
TOKEN_CACHE_TTL_SECONDS: Final = 5.0
# Far more than the number of tokens in use at once (a login token per person
# at work, one per portal or integration); the bound only matters if someone
# sprays valid tokens.
TOKEN_CACHE_ENTRIES_MAX: Final = 1024


class TokenCache:
    """Principals of recently verified tokens, so that a request whose token
    the database accepted less than ``ttl_seconds`` ago is not checked again.

    Only accepted tokens are kept, keyed by their SHA-256 digest (never the
    token itself); an unknown or revoked token is looked up every time, so
    creating a token takes effect at once. An entry is dropped once it is
    ``ttl_seconds`` old, whether it is used or not, so a revocation is seen
    within that time, and as soon as its token has expired. At most
    ``entries_max`` entries: when full, the oldest verification goes first.
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

    def get(self, digest: str, now: datetime) -> Principal | None:
        """The principal verified less than the TTL ago, if its token has
        not expired by ``now`` (wall-clock time)."""
        entry = self._entries.get(digest)
        if entry is None:
            return None
        principal, verified_at = entry
        if self._clock() - verified_at >= self.ttl_seconds or principal.expires_at <= now:
            del self._entries[digest]
            return None
        return principal

    def put(self, digest: str, principal: Principal) -> None:
        self._entries.pop(digest, None)
        self._entries[digest] = (principal, self._clock())
        while len(self._entries) > self.entries_max:
            self._entries.popitem(last=False)
        assert len(self._entries) <= self.entries_max

    def drop(self, digest: str) -> None:
        self._entries.pop(digest, None)


TOKEN_CACHE: Final = web.AppKey("token_cache", TokenCache)

# What each role may do through the API: the one table of permissions
# (tests/integration/identity/test_role_matrix.py walks every route against it).
# ``fines:write``: register fines, one or a CSV file of them; ``fines:amend``:
# amend or cancel a fine (a person's decision). ``tokens:own``: list and
# revoke one's own tokens; ``tokens:manage``: every token, and new API
# tokens for oneself or a service account; ``users:manage``: staff users.
PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    "portal": frozenset(
        {"fines:read", "fines:write", "payments:read", "payments:write", "tokens:own"}
    ),
    "officer": frozenset(
        {
            "fines:read",
            "payments:read",
            "receipts:read",
            "receipts:reissue",
            "disputes:read",
            "disputes:open",
            "tokens:own",
        }
    ),
    "finance": frozenset(
        {
            "fines:read",
            "fines:write",
            "fines:amend",
            "payments:read",
            "receipts:read",
            "receipts:reissue",
            "recon:read",
            "recon:write",
            "disputes:read",
            "disputes:open",
            "disputes:resolve",
            "approvals:read",
            "audit:read",
            "tokens:own",
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
            "audit:read",
            "tokens:own",
        }
    ),
    "operator": frozenset({"fines:read", "payments:read", "ops:read", "ops:write", "tokens:own"}),
    "admin": frozenset(
        {
            "fines:read",
            "fines:write",
            "fines:amend",
            "payments:read",
            "payments:write",
            "receipts:read",
            "receipts:reissue",
            "recon:read",
            "recon:write",
            "ops:read",
            "ops:write",
            "disputes:read",
            "disputes:open",
            "disputes:resolve",
            "approvals:read",
            "approvals:decide",
            "audit:read",
            "tokens:own",
            "tokens:manage",
            "users:manage",
        }
    ),
}
# A person's decisions: a service account holding the role still may not.
PERSON_ONLY: Final = frozenset(
    {"approvals:decide", "disputes:resolve", "fines:amend", "tokens:manage", "users:manage"}
)
# Under /api/ but without a token: how one gets a token.
PUBLIC_API_PATHS: Final = frozenset({"/api/v1/auth/login"})


def _is_protected(path: str) -> bool:
    return path.startswith("/api/") and path not in PUBLIC_API_PATHS


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthorized", "send an API token as 'Authorization: Bearer <token>'")
    return token.strip()


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if not _is_protected(request.path):
        return await handler(request)
    token = _bearer(request)
    digest = hash_token(token)
    cache = request.app[TOKEN_CACHE]
    now = datetime.now(UTC)
    principal = cache.get(digest, now)
    if principal is None:
        found = await request.app[READER].run(lambda conn: lookup_token(conn, token, now))
        if found is None:
            raise ApiError(401, "unauthorized", "the API token is unknown, expired or revoked")
        if needs_use_noted(found, now):
            async with request.app[ENGINE].begin() as conn:
                await note_token_used(conn, found.principal.credential_id, now)
        principal = found.principal
        cache.put(digest, principal)
    request[PRINCIPAL] = principal
    request[TOKEN_DIGEST] = digest
    return await handler(request)


async def console_session(request: web.Request, raw: str) -> tuple[Principal, Session] | None:
    """The principal of a live console session whose cookie holds ``raw``
    (None: no such session), its use noted (``touch_session``) and the
    principal set on the request, so the access log names it. The console
    (``reconciler.console``) calls this; ``/api/`` routes take tokens only."""
    if not (raw.isascii() and raw.isprintable()):  # a non-UTF-8 byte is a lone surrogate
        return None
    now = datetime.now(UTC)
    found = await request.app[READER].run(lambda conn: session_principal(conn, raw, now))
    if found is None:
        return None
    principal, session = found
    if now - session.last_seen_at >= TOUCH_RESOLUTION:
        async with request.app[ENGINE].begin() as conn:
            session = await touch_session(conn, session, now)
    request[PRINCIPAL] = principal
    return principal, session


def require(request: web.Request, permission: str) -> Principal:
    """The caller, if their role holds ``permission`` (else 403); a
    ``PERSON_ONLY`` permission also needs a person, not a service account."""
    principal: Principal = request[PRINCIPAL]
    if permission not in PERMISSIONS.get(principal.role, frozenset()):
        raise ApiError(403, "forbidden", f"role {principal.role!r} may not do this ({permission})")
    if permission in PERSON_ONLY and not principal.is_person:
        raise ApiError(403, "person_required", f"a service account may not do this ({permission})")
    return principal


def may(principal: Principal, permission: str) -> bool:
    return permission in PERMISSIONS.get(principal.role, frozenset()) and (
        principal.is_person or permission not in PERSON_ONLY
    )


def check_unit(principal: Principal, issuing_unit: str, not_found: str) -> None:
    """What belongs to an issuing unit outside the caller's scope does not
    exist for them: the same 404 as a missing one, so nothing leaks."""
    if not principal.sees_unit(issuing_unit):
        raise NotFoundError(not_found)
