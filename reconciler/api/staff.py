"""Staff users over the JSON API (``users:manage``: an admin, a person).

* ``GET /api/v1/users`` (paging) and ``GET /api/v1/users/{username}``;
* ``POST /api/v1/users`` ``{username, role, full_name?, units?, password?}``
  → 201 with the user (and the password when none was given: generated and
  shown once);
* ``POST /api/v1/users/{username}/disable``, ``.../enable``, ``.../unlock``;
* ``POST /api/v1/users/{username}/password`` ``{password?}``: a reset (a
  generated password when none is given, shown once); the user's logins end.

A password an admin sets is marked as theirs: until its owner chooses their
own (``POST /api/v1/auth/password``), it cannot decide that admin's requests.
Every change is audited naming the admin.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

import structlog
from aiohttp import web

from ledger import access
from ledger.core.checks import check_choice, check_object
from reconciler.api.auth import require
from reconciler.api.errors import read_json
from reconciler.api.identity import PASSWORDS, generated_password, user_json
from reconciler.api.keys import ENGINE
from reconciler.api.params import page_limit, query_after_id
from reconciler.api.views import json_response

log = structlog.get_logger(__name__)

USERS_PAGE_MAX: Final = 500
_NEW_USER_FIELDS: Final = frozenset({"username", "role", "full_name", "units", "password"})


def _username(request: web.Request) -> str:
    return access.check_username(request.match_info["username"])


async def _password_hash(
    request: web.Request, body: dict[str, Any], username: str
) -> tuple[str, str | None]:
    """The hash of the given password, or of a generated one (returned to show once)."""
    given = body.get("password")
    password = generated_password() if given is None else access.check_new_password(given, username)
    shown = password if given is None else None
    return await request.app[PASSWORDS].hash(password), shown


async def list_users(request: web.Request) -> web.Response:
    require(request, "users:manage")
    limit = page_limit(request, USERS_PAGE_MAX)
    now = datetime.now(UTC)
    async with request.app[ENGINE].connect() as conn:
        rows = await access.list_users(conn, after_id=query_after_id(request), limit=limit)
    return json_response(
        {
            "users": [user_json(u, now) for u in rows],
            "next_after_id": rows[-1].id if len(rows) == limit else None,
        }
    )


async def get_user(request: web.Request) -> web.Response:
    require(request, "users:manage")
    async with request.app[ENGINE].connect() as conn:
        user = await access.get_user(conn, _username(request))
    return json_response(user_json(user, datetime.now(UTC)))


async def create_user(request: web.Request) -> web.Response:
    principal = require(request, "users:manage")
    body = check_object(await read_json(request), _NEW_USER_FIELDS)
    username = access.check_username(body.get("username"))
    role = check_choice("role", body.get("role"), access.STAFF_ROLES)
    access.check_units(body.get("units", []), role)
    password_hash, shown = await _password_hash(request, body, username)
    now = datetime.now(UTC)
    user = await add_user(
        request,
        principal.actor,
        now,
        username=username,
        password_hash=password_hash,
        role=role,
        full_name=body.get("full_name", ""),
        units=body.get("units", []),
    )
    answer = user_json(user, now)
    if shown is not None:
        answer["password"] = shown
    return json_response(answer, status=201)


async def add_user(request: web.Request, actor: str, now: datetime, **fields: Any) -> access.User:
    """Create a user (``access.create_user``'s fields), logged; the console's
    admin page shares it."""
    async with request.app[ENGINE].begin() as conn:
        user = await access.create_user(conn, actor=actor, now=now, **fields)
    log.info("user.created", username=user.username, role=user.role, by=actor)
    return user


async def _set_disabled(request: web.Request, disabled: bool) -> web.Response:
    principal = require(request, "users:manage")
    now = datetime.now(UTC)
    async with request.app[ENGINE].begin() as conn:
        user = await access.set_disabled(conn, _username(request), disabled, principal.actor, now)
    return json_response(user_json(user, now))


async def disable_user(request: web.Request) -> web.Response:
    return await _set_disabled(request, True)


async def enable_user(request: web.Request) -> web.Response:
    return await _set_disabled(request, False)


async def unlock_user(request: web.Request) -> web.Response:
    principal = require(request, "users:manage")
    now = datetime.now(UTC)
    async with request.app[ENGINE].begin() as conn:
        user = await access.unlock(conn, _username(request), principal.actor, now)
    return json_response(user_json(user, now))


async def reset_password(request: web.Request) -> web.Response:
    principal = require(request, "users:manage")
    username = _username(request)
    raw: object = await read_json(request) if request.can_read_body else {}
    body = check_object(raw, {"password"})
    password_hash, shown = await _password_hash(request, body, username)
    now = datetime.now(UTC)
    async with request.app[ENGINE].begin() as conn:
        user = await access.set_password(conn, username, password_hash, principal.actor, now)
    answer = user_json(user, now)
    if shown is not None:
        answer["password"] = shown
    return json_response(answer)


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/v1/users", list_users)
    app.router.add_post("/api/v1/users", create_user)
    app.router.add_get("/api/v1/users/{username}", get_user)
    app.router.add_post("/api/v1/users/{username}/disable", disable_user)
    app.router.add_post("/api/v1/users/{username}/enable", enable_user)
    app.router.add_post("/api/v1/users/{username}/unlock", unlock_user)
    app.router.add_post("/api/v1/users/{username}/password", reset_password)
