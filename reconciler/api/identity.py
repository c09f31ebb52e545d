"""Logging in, and the tokens people and service accounts hold.

* ``POST /api/v1/auth/login`` ``{username, password}`` (no token) → 200
  ``{token, expires_at, user}``: a short-lived bearer token of that person;
  401 ``invalid_credentials`` for a wrong password or an unknown user (the
  same answer at the same cost); 423 ``account_locked`` with ``locked_until``
  once too many passwords were wrong; 429 with ``Retry-After`` while the
  address or the name is throttled (``reconciler.api.login_throttle``);
* ``POST /api/v1/auth/logout``: revokes the presenting token;
* ``GET /api/v1/auth/me``: who the token stands for;
* ``POST /api/v1/auth/password`` ``{current_password, new_password}``: a
  person changes their own password (their logins end);
* ``GET /api/v1/tokens``: one's own tokens (``tokens:manage``: everyone's,
  ``?user=`` / ``?service=`` to narrow); ``POST /api/v1/tokens``
  ``{name, expires_days?, service?, role?}`` (``tokens:manage``): a new API
  token for oneself or for a service account, shown once;
  ``DELETE /api/v1/tokens/{token_id}``: revoke one's own (or, with
  ``tokens:manage``, any).

An admin cannot mint a token for another person: that would let one person
act as two. Every creation and revocation is audited naming who did it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import structlog
from aiohttp import web

from ledger import access
from ledger.access.login import check_credentials
from ledger.core.checks import check_object
from ledger.core.errors import ValidationError
from reconciler.api.auth import PRINCIPAL, TOKEN_CACHE, TOKEN_DIGEST, may, require
from reconciler.api.errors import ApiError, error_response, read_json
from reconciler.api.keys import ENGINE, SETTINGS
from reconciler.api.login_throttle import LOGIN_THROTTLE
from reconciler.api.params import page_limit, path_id, query_after_id
from reconciler.api.views import json_response

log = structlog.get_logger(__name__)

PASSWORDS: Final = web.AppKey("password_checker", access.PasswordChecker)
TOKENS_PAGE_MAX: Final = 500
GENERATED_PASSWORD_BYTES: Final = 12  # 16 characters


def generated_password() -> str:
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


def lock_policy(request: web.Request) -> access.LockPolicy:
    settings = request.app[SETTINGS]
    return access.LockPolicy(
        failures=settings.login_lock_failures,
        window=timedelta(seconds=settings.login_lock_window_seconds),
        duration=timedelta(seconds=settings.login_lock_seconds),
    )


def user_json(user: access.User, now: datetime) -> dict[str, Any]:
    return {
        "username": user.username,
        "full_name": user.full_name,
        "role": user.role,
        "units": list(user.units),
        "created_at": user.created_at.isoformat(),
        "created_by": user.created_by,
        "disabled": user.disabled_at is not None,
        "locked_until": (
            user.locked_until.isoformat()
            if user.locked_until is not None and user.locked(now)
            else None
        ),
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
        "password_set_by": user.password_set_by,
    }


def token_json(info: access.TokenInfo, now: datetime) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "kind": info.kind,
        "owner": {"kind": info.owner_kind, "name": info.owner_name},
        "created_at": info.created_at.isoformat(),
        "created_by": info.created_by,
        "expires_at": info.expires_at.isoformat(),
        "last_used_at": info.last_used_at.isoformat() if info.last_used_at else None,
        "revoked_at": info.revoked_at.isoformat() if info.revoked_at else None,
        "revoked_by": info.revoked_by,
        "active": info.active(now),
    }


def _refusal(status: int, code: str, message: str, wait_seconds: int, **extra: Any) -> web.Response:
    response = error_response(status, code, message, **extra)
    response.headers["Retry-After"] = str(wait_seconds)
    return response


# --- auth ----------------------------------------------------------------------------


def _client(request: web.Request) -> str:
    """The User-Agent a console session notes, if printable ASCII (a
    non-UTF-8 byte arrives as a lone surrogate, which cannot be stored)."""
    agent = request.headers.get("User-Agent", "")[:200]
    return agent if agent.isascii() and agent.isprintable() else ""


async def attempt_login(
    request: web.Request,
    username: str,
    password: str,
    *,
    issue: Literal["token", "console"] = "token",
) -> tuple[access.LoginOutcome, int | None]:
    """A login through the throttle (the JSON login's and the console's):
    the outcome, or the whole seconds to wait while the address or the name
    is throttled (then no password is checked)."""
    throttle = request.app[LOGIN_THROTTLE]
    address = request.remote or "unknown"
    name_key = username.strip().lower()[:64]
    engine = request.app[ENGINE]
    attempt = await throttle.begin(engine, address, name_key)
    if isinstance(attempt, int):
        log.warning("auth.login_throttled", address=address, username=name_key)
        return access.LoginOutcome(), attempt
    settings = request.app[SETTINGS]
    outcome = await access.log_in(
        engine,
        request.app[PASSWORDS],
        username,
        password,
        datetime.now(UTC),
        policy=lock_policy(request),
        token_hours=settings.login_token_hours,
        issue=issue,
        client=_client(request),
    )
    if outcome.ok:
        await throttle.succeeded(engine, attempt)
    else:
        log.warning("auth.login_failed", address=address, username=name_key)
    return outcome, None


async def login(request: web.Request) -> web.Response:
    body = check_object(await read_json(request), {"username", "password"})
    username, password = check_credentials(body.get("username"), body.get("password"))
    outcome, wait = await attempt_login(request, username, password)
    if wait is not None:
        return _refusal(
            429, "too_many_attempts", f"too many failed logins; retry in {wait} s", wait
        )
    now = datetime.now(UTC)
    if outcome.locked_until is not None:
        return _refusal(
            423,
            "account_locked",
            f"the account is locked after too many failed logins until "
            f"{outcome.locked_until.isoformat()}; an admin can unlock it",
            max(1, int((outcome.locked_until - now).total_seconds()) + 1),
            locked_until=outcome.locked_until.isoformat(),
        )
    if outcome.user is None or outcome.token_info is None:
        raise ApiError(401, "invalid_credentials", "wrong username or password")
    log.info("auth.login", username=outcome.user.username, token_id=outcome.token_info.id)
    return json_response(
        {
            "token": outcome.token,
            "token_id": outcome.token_info.id,
            "expires_at": outcome.token_info.expires_at.isoformat(),
            "user": {
                "username": outcome.user.username,
                "role": outcome.user.role,
                "full_name": outcome.user.full_name,
                "units": list(outcome.user.units),
            },
        }
    )


async def logout(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    now = datetime.now(UTC)
    async with request.app[ENGINE].begin() as conn:
        info = await access.revoke_token(conn, principal.credential_id, principal.actor, now)
    request.app[TOKEN_CACHE].drop(request[TOKEN_DIGEST])
    return json_response({"revoked": token_json(info, now)})


async def me(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    return json_response(
        {
            "kind": principal.owner_kind,
            "name": principal.owner_name,
            "actor": principal.actor,
            "role": principal.role,
            "units": list(principal.units),
            "credential": {
                "kind": principal.credential,
                "id": principal.credential_id,
                "expires_at": principal.expires_at.isoformat(),
            },
        }
    )


async def change_password(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    if not principal.is_person:
        raise ApiError(403, "person_required", "a service account has no password")
    body = check_object(await read_json(request), {"current_password", "new_password"})
    _, current = check_credentials(principal.owner_name, body.get("current_password"))
    new = access.check_new_password(body.get("new_password"), principal.owner_name)
    throttle = request.app[LOGIN_THROTTLE]
    address = request.remote or "unknown"
    attempt = await throttle.begin(request.app[ENGINE], address, principal.owner_name)
    if isinstance(attempt, int):
        return _refusal(429, "too_many_attempts", f"retry in {attempt} s", attempt)
    now = datetime.now(UTC)
    checker = request.app[PASSWORDS]
    checked = await access.log_in(
        request.app[ENGINE],
        checker,
        principal.owner_name,
        current,
        now,
        policy=lock_policy(request),
        issue="nothing",
    )
    if not checked.ok:
        raise ApiError(403, "invalid_credentials", "the current password is wrong")
    await throttle.succeeded(request.app[ENGINE], attempt)
    new_hash = await checker.hash(new)
    async with request.app[ENGINE].begin() as conn:
        user = await access.set_password(conn, principal.owner_name, new_hash, principal.actor, now)
    request.app[TOKEN_CACHE].drop(request[TOKEN_DIGEST])
    return json_response({"user": user_json(user, now), "logins_ended": True})


# --- tokens ---------------------------------------------------------------------------


async def list_tokens(request: web.Request) -> web.Response:
    principal = require(request, "tokens:own")
    limit = page_limit(request, TOKENS_PAGE_MAX)
    include_inactive = request.query.get("include_inactive", "") in ("1", "true")
    user, service = request.query.get("user"), request.query.get("service")
    now = datetime.now(UTC)
    async with request.app[ENGINE].connect() as conn:
        if not may(principal, "tokens:manage"):
            if user or service:
                raise ApiError(403, "forbidden", "only an admin lists another's tokens")
            owner = _self_owner(principal)
        elif user or service:
            owner = await (
                access.user_owner(conn, user) if user else access.service_owner(conn, service or "")
            )
        else:
            owner = None
        rows = await access.list_tokens(
            conn,
            now,
            owner=owner,
            include_inactive=include_inactive,
            after_id=query_after_id(request),
            limit=limit,
        )
    return json_response(
        {
            "tokens": [token_json(r, now) for r in rows],
            "next_after_id": rows[-1].id if len(rows) == limit else None,
        }
    )


def _self_owner(principal: access.Principal) -> access.Owner:
    return access.Owner(
        principal.owner_kind, principal.owner_id, principal.owner_name, principal.role
    )


async def create_token(request: web.Request) -> web.Response:
    principal = require(request, "tokens:manage")
    body = check_object(await read_json(request), {"name", "expires_days", "service", "role"})
    lifetime = access.api_token_lifetime(body.get("expires_days"))
    now = datetime.now(UTC)
    async with request.app[ENGINE].begin() as conn:
        if body.get("service") is not None:
            owner = await access.ensure_service_account(
                conn, body["service"], body.get("role"), principal.actor, now
            )
        elif body.get("role") is not None:
            raise ValidationError("role", "is only for a new service account (with 'service')")
        else:
            owner = _self_owner(principal)
        token, info = await access.issue_token(
            conn,
            owner,
            kind=access.TokenKind.API,
            name=body.get("name"),
            lifetime=lifetime,
            created_by=principal.actor,
            now=now,
        )
    log.info("token.created", token_id=info.id, owner=info.owner_name, by=principal.actor)
    return json_response({**token_json(info, now), "token": token}, status=201)


async def revoke_token(request: web.Request) -> web.Response:
    principal = require(request, "tokens:own")
    token_id = path_id(request, "token_id")
    owner = None if may(principal, "tokens:manage") else _self_owner(principal)
    now = datetime.now(UTC)
    async with request.app[ENGINE].begin() as conn:
        info = await access.revoke_token(conn, token_id, principal.actor, now, owner=owner)
    if info.id == principal.credential_id:
        request.app[TOKEN_CACHE].drop(request[TOKEN_DIGEST])
    return json_response(token_json(info, now))


def add_routes(app: web.Application) -> None:
    app.router.add_post("/api/v1/auth/login", login)
    app.router.add_post("/api/v1/auth/logout", logout)
    app.router.add_get("/api/v1/auth/me", me)
    app.router.add_post("/api/v1/auth/password", change_password)
    app.router.add_get("/api/v1/tokens", list_tokens)
    app.router.add_post("/api/v1/tokens", create_token)
    app.router.add_delete("/api/v1/tokens/{token_id}", revoke_token)
