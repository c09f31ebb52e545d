"""The admin's console page: staff users and their tokens
(``users:manage``, a person; docs/console.md, "Users and tokens").

* ``GET /console/admin/users``: the users (paged by ``after_id``), a form
  to create one (role, units; the password is generated and shown once);
* ``POST /console/admin/users``: create;
* ``POST /console/admin/users/{username}/{action}``: ``disable``,
  ``enable``, ``unlock`` or ``password`` (a reset);
* ``GET /console/admin/users/{username}/tokens``: the person's live tokens;
* ``POST /console/admin/tokens/{token_id}/revoke``.

Each goes through the same ledger functions as ``/api/v1/users`` and
``/api/v1/tokens`` (``reconciler.api.staff``, ``reconciler.api.identity``),
audited the same way, with the same refusals (an admin may not disable
themself, so the console cannot leave no admin behind).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Final

from aiohttp import web

from ledger import access
from ledger.core.checks import check_choice
from ledger.core.errors import ConflictError, ForbiddenError, NotFoundError, ValidationError
from reconciler.api.identity import PASSWORDS, generated_password
from reconciler.api.keys import ENGINE
from reconciler.api.params import path_id, query_after_id
from reconciler.api.staff import add_user
from reconciler.console.operator import done_page
from reconciler.console.pages import Staff, staff_page
from reconciler.console.render import language, render
from reconciler.console.texts import TEXTS

USERS_SHOWN: Final = 200
TOKENS_SHOWN: Final = 200
BACK: Final = "/console/admin/users"


def _context(staff: Staff, **more: Any) -> dict[str, Any]:
    return {"principal": staff.principal, "csrf": staff.session.csrf_secret, **more}


def _done(request: web.Request, staff: Staff, message: str, status: int = 200) -> web.Response:
    return done_page(request, staff, message, BACK, status)


@staff_page("users:manage")
async def users(request: web.Request, staff: Staff) -> web.Response:
    async with request.app[ENGINE].connect() as conn:
        rows = await access.list_users(conn, after_id=query_after_id(request), limit=USERS_SHOWN)
    now = datetime.now(UTC)
    return render(
        request,
        "admin/users.jinja",
        **_context(
            staff,
            users=[{"user": u, "locked": u.locked(now)} for u in rows],
            roles=access.STAFF_ROLES,
            next_after_id=rows[-1].id if len(rows) == USERS_SHOWN else None,
        ),
    )


def _units(typed: str) -> list[str]:
    return [u.strip() for u in typed.split(",") if u.strip()]


@staff_page("users:manage")
async def create(request: web.Request, staff: Staff) -> web.Response:
    texts = TEXTS[language(request)]
    form = staff.form
    try:
        # Everything checked before the (costly) hash: a refusal is cheap.
        username = access.check_username(form.get("username", ""))
        role = check_choice("role", form.get("role", ""), access.STAFF_ROLES)
        units = list(access.check_units(_units(form.get("units", "")), role))
        password = generated_password()
        password_hash = await request.app[PASSWORDS].hash(password)
        user = await add_user(
            request,
            staff.principal.actor,
            datetime.now(UTC),
            username=username,
            password_hash=password_hash,
            role=role,
            full_name=form.get("full_name", ""),
            units=units,
        )
    except (ValidationError, ConflictError) as err:
        return _done(request, staff, str(err), 400 if isinstance(err, ValidationError) else 409)
    shown = texts["password_shown_once"].format(username=user.username, password=password)
    return _done(request, staff, texts["user_created"].format(username=user.username) + " " + shown)


ACTIONS: Final = frozenset({"disable", "enable", "unlock", "password"})


async def _change(request: web.Request, staff: Staff, action: str) -> tuple[access.User, str]:
    """Apply ``action`` to the user in the path; the password shown once
    when it is a reset."""
    username = access.check_username(request.match_info["username"])
    actor, now = staff.principal.actor, datetime.now(UTC)
    shown = ""
    if action == "password":
        async with request.app[ENGINE].connect() as conn:
            await access.get_user(conn, username)  # a 404 costs no hash
        shown = generated_password()
        password_hash = await request.app[PASSWORDS].hash(shown)
    async with request.app[ENGINE].begin() as conn:
        if action in ("disable", "enable"):
            user = await access.set_disabled(conn, username, action == "disable", actor, now)
        elif action == "unlock":
            user = await access.unlock(conn, username, actor, now)
        else:
            user = await access.set_password(conn, username, password_hash, actor, now)
    return user, shown


@staff_page("users:manage")
async def change(request: web.Request, staff: Staff) -> web.Response:
    """``POST /console/admin/users/{username}/{action}``: one route for the
    four actions (each route costs the role matrix and the hostile sweep)."""
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise NotFoundError(f"no action {action!r}")
    texts = TEXTS[language(request)]
    try:
        user, shown = await _change(request, staff, action)
    except ForbiddenError as err:
        return _done(request, staff, str(err), 403)
    message = texts["user_changed"].format(username=user.username)
    if shown:
        message += " " + texts["password_shown_once"].format(username=user.username, password=shown)
    return _done(request, staff, message)


@staff_page("users:manage")
async def tokens(request: web.Request, staff: Staff) -> web.Response:
    username = access.check_username(request.match_info["username"])
    now = datetime.now(UTC)
    async with request.app[ENGINE].connect() as conn:
        try:
            owner = await access.user_owner(conn, username)
        except NotFoundError:
            raise NotFoundError(f"no user {username}") from None
        rows = await access.list_tokens(conn, now, owner=owner, limit=TOKENS_SHOWN)
    return render(request, "admin/tokens.jinja", **_context(staff, username=username, tokens=rows))


@staff_page("users:manage")
async def revoke(request: web.Request, staff: Staff) -> web.Response:
    token_id = path_id(request, "token_id")
    async with request.app[ENGINE].begin() as conn:
        info = await access.revoke_token(conn, token_id, staff.principal.actor, datetime.now(UTC))
    texts = TEXTS[language(request)]
    return _done(request, staff, texts["token_revoked"].format(token=info.id))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/admin/users", users)
    app.router.add_post("/console/admin/users", create)
    app.router.add_post("/console/admin/users/{username}/{action}", change)
    app.router.add_get("/console/admin/users/{username}/tokens", tokens)
    app.router.add_post("/console/admin/tokens/{token_id}/revoke", revoke)
