"""Who is at the console: the session cookie, the login and logout pages,
and ``staff_page``, which every staff page goes through.

* The session cookie (``rs_console``) holds the id of a
  ``ledger.access.sessions`` row (256 random bits, stored as SHA-256):
  HttpOnly, SameSite=Lax, Secure when the browser reaches us over HTTPS
  (``secure_cookies``), path ``/console/``. Without a live session a
  staff page redirects (303) to the login page.
* Every POST form carries a CSRF token: the session's secret once logged
  in; on the login form (no session yet) a random value also set in a
  cookie (double submit). A POST without the right token answers 403 and
  changes nothing.
* The login goes through the JSON login's throttle and says the JSON
  login's generic failure (``reconciler.api.identity.attempt_login``).
* A page the role may not see answers 403 with a Vietnamese page.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from typing import Final

from aiohttp import web

from ledger.access import Principal
from ledger.access.login import check_credentials
from ledger.access.sessions import Session, csrf_token_matches, revoke_session
from ledger.core.errors import NotFoundError, ValidationError
from reconciler.api.auth import console_session, may
from reconciler.api.errors import Handler
from reconciler.api.identity import attempt_login
from reconciler.api.keys import ENGINE, SETTINGS
from reconciler.console.render import format_time, language, message_page, read_form, render
from reconciler.console.texts import TEXTS

SESSION_COOKIE: Final = "rs_console"
LOGIN_CSRF_COOKIE: Final = "rs_console_login"
COOKIE_PATH: Final = "/console/"
LOGIN_PATH: Final = "/console/login"
HOME_PATH: Final = "/console/counter"


@dataclass(frozen=True)
class Staff:
    """The person at the console, their session and the POSTed form."""

    principal: Principal
    session: Session
    form: dict[str, str]


StaffHandler = Callable[[web.Request, Staff], Awaitable[web.StreamResponse]]
FormReader = Callable[[web.Request], Awaitable[dict[str, str] | None]]


def secure_cookies(request: web.Request) -> bool:
    """Secure cookies when the browser reaches us over HTTPS: this request
    came over TLS, or the public address is https (TLS ended at a reverse
    proxy in front of the API, which itself speaks plain HTTP)."""
    return request.secure or request.app[SETTINGS].public_base_url.startswith("https://")


def see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


async def current_session(request: web.Request) -> tuple[Principal, Session] | None:
    """The person and live session of the request's cookie, if any."""
    raw = request.cookies.get(SESSION_COOKIE, "")
    return await console_session(request, raw) if raw else None


def staff_page(
    permission: str | None, *, read: FormReader = read_form
) -> Callable[[StaffHandler], Handler]:
    """A page for a logged-in person whose role holds ``permission``
    (None: any role). POST: the form (``read``: urlencoded unless told)
    must carry the session's CSRF token. A bad parameter is a 400 page,
    something out of reach a 404 page."""

    def wrap(handler: StaffHandler) -> Handler:
        @wraps(handler)
        async def page(request: web.Request) -> web.StreamResponse:
            found = await current_session(request)
            if found is None:
                return see_other(LOGIN_PATH)
            principal, session = found
            if permission is not None and not may(principal, permission):
                return message_page(request, 403, "forbidden_title", "forbidden_message")
            form: dict[str, str] = {}
            if request.method == "POST":
                posted = await read(request)
                if posted is None or not csrf_token_matches(session, posted.get("csrf", "")):
                    return message_page(request, 403, "csrf_title", "csrf_message")
                form = posted
            try:
                return await handler(request, Staff(principal, session, form))
            except ValidationError:
                return message_page(request, 400, "bad_request_title", "bad_request_message")
            except NotFoundError:
                return message_page(request, 404, "not_found_title", "not_found_message")

        return page

    return wrap


async def home(request: web.Request) -> web.Response:
    """``/console/``: the counter when logged in, else the login page."""
    found = await current_session(request)
    return see_other(HOME_PATH if found is not None else LOGIN_PATH)


async def login_form(request: web.Request) -> web.Response:
    return _login_page(request, 200, None)


def _login_page(request: web.Request, status: int, error: str | None) -> web.Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request, "login.jinja", status=status, csrf=token, error=error, principal=None
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Strict",
        secure=secure_cookies(request),
    )
    return response


async def login(request: web.Request) -> web.Response:
    form = await read_form(request)
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "").encode("utf-8", "replace")
    given = (form or {}).get("csrf", "").encode("utf-8", "replace")
    if not expected or not hmac.compare_digest(expected, given):
        return message_page(request, 403, "csrf_title", "csrf_message")
    assert form is not None
    try:
        username, password = check_credentials(form.get("username"), form.get("password"))
    except ValidationError:
        return _login_page(request, 400, TEXTS[language(request)]["login_failed"])
    outcome, wait = await attempt_login(request, username, password, issue="console")
    texts = TEXTS[language(request)]
    if wait is not None:
        response = _login_page(request, 429, texts["login_throttled"].format(seconds=wait))
        response.headers["Retry-After"] = str(wait)
        return response
    if outcome.locked_until is not None:
        until = format_time(outcome.locked_until, language(request))
        return _login_page(request, 423, texts["account_locked"].format(until=until))
    if outcome.session is None:
        return _login_page(request, 401, texts["login_failed"])
    response = see_other(HOME_PATH)
    response.set_cookie(
        SESSION_COOKIE,
        outcome.session,
        path=COOKIE_PATH,
        httponly=True,
        samesite="Lax",
        secure=secure_cookies(request),
    )
    response.del_cookie(LOGIN_CSRF_COOKIE, path=COOKIE_PATH)
    return response


@staff_page(None)
async def logout(request: web.Request, staff: Staff) -> web.Response:
    async with request.app[ENGINE].begin() as conn:
        await revoke_session(conn, staff.session, staff.principal.actor, datetime.now(UTC))
    response = see_other(LOGIN_PATH)
    response.del_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response
