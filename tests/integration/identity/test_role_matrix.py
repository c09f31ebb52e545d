"""Every route of the app against every role: the answer follows the one
permission table (``reconciler.api.auth.PERMISSIONS``). Without a token a
protected route is 401; a role without the route's permission gets 403;
with it, the request reaches the handler (a 2xx, or a 4xx about the request
itself: these go with empty bodies and ids that exist nowhere). A service
account holding a role still gets 403 for what only a person may do.

``ROUTES`` names each route's permission; a route added to the app without
an entry here fails the test, so the table and the app cannot drift apart.

The console's pages (``CONSOLE_PAGES``) take a session cookie, not a token:
without a session (a bearer token is none) they redirect to the login page;
with a session of each staff role they answer as the same table says, a
refusal being a 403 HTML page; their POSTs carry the session's CSRF token.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.access import SERVICE_ROLES, get_user
from ledger.access.sessions import create_session
from reconciler.api.auth import PERMISSIONS, PERSON_ONLY
from tests.integration.identity.conftest import Api
from tests.support.api import make_service_token, make_token

PUBLIC: Final = "public"  # no token at all
SIGNED_IN: Final = "signed-in"  # any token, person or service
PERSON: Final = "person"  # any person's token
# Alertmanager's shared secret, never an API token: every token is 401.
ALERT_SECRET: Final = "alert-secret"

ROUTES: Final[dict[tuple[str, str], str]] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/verify/{series}/{number}"): PUBLIC,
    ("GET", "/receipts/{series}/{number}.pdf"): PUBLIC,
    ("POST", "/webhooks/{bank}"): PUBLIC,
    ("POST", "/ops/alerts/webhook"): ALERT_SECRET,
    ("GET", "/api/v1/alerts"): "ops:read",
    ("POST", "/api/v1/auth/login"): PUBLIC,
    ("POST", "/api/v1/auth/logout"): SIGNED_IN,
    ("GET", "/api/v1/auth/me"): SIGNED_IN,
    ("GET", "/api/v1/openapi.json"): SIGNED_IN,
    ("POST", "/api/v1/auth/password"): PERSON,
    ("POST", "/api/v1/fines"): "fines:write",
    ("GET", "/api/v1/fines"): "fines:read",
    ("POST", "/api/v1/fines/import"): "fines:write",
    ("POST", "/api/v1/fines/{decision_number}/amend"): "fines:amend",
    ("POST", "/api/v1/fines/{decision_number}/cancel"): "fines:amend",
    ("GET", "/api/v1/fines/{decision_number}"): "fines:read",
    ("POST", "/api/v1/fines/{decision_number}/payments"): "payments:write",
    ("GET", "/api/v1/payments/{payment_id}"): "payments:read",
    ("POST", "/api/v1/banks/{bank}/link-recovered"): "ops:write",
    ("GET", "/api/v1/receipts/{series}/{number}"): "payments:read",
    ("GET", "/api/v1/receipts/{series}/{number}/pdf"): "payments:read",
    ("POST", "/api/v1/receipts/{series}/{number}/reissue"): "receipts:reissue",
    ("GET", "/api/v1/outages"): "ops:read",
    ("GET", "/api/v1/banks/health"): "ops:read",
    ("GET", "/api/v1/payments/in-doubt"): "payments:read",
    ("POST", "/api/v1/payments/{payment_id}/recheck"): "ops:write",
    ("POST", "/api/v1/disputes"): "disputes:open",
    ("GET", "/api/v1/disputes"): "disputes:read",
    ("GET", "/api/v1/payments"): "payments:read",
    ("GET", "/api/v1/receipts"): "payments:read",
    ("GET", "/api/v1/refunds"): "payments:read",
    ("GET", "/api/v1/audit"): "audit:read",
    ("GET", "/api/v1/audit/verification"): "audit:read",
    ("GET", "/api/v1/disputes/{dispute_id}"): "disputes:read",
    ("POST", "/api/v1/disputes/{dispute_id}/evidence/refresh"): "disputes:open",
    ("POST", "/api/v1/disputes/{dispute_id}/resolutions"): "disputes:resolve",
    ("GET", "/api/v1/approvals"): "approvals:read",
    ("GET", "/api/v1/approvals/{approval_id}"): "approvals:read",
    ("POST", "/api/v1/approvals/{approval_id}/approve"): "approvals:decide",
    ("POST", "/api/v1/approvals/{approval_id}/reject"): "approvals:decide",
    ("POST", "/api/v1/reconciliations"): "recon:write",
    ("GET", "/api/v1/reconciliations"): "recon:read",
    ("GET", "/api/v1/reconciliations/{reconciliation_id}"): "recon:read",
    ("GET", "/api/v1/reconciliations/{reconciliation_id}/lines"): "recon:read",
    ("GET", "/api/v1/reconciliations/{reconciliation_id}/report.csv"): "recon:read",
    ("GET", "/api/v1/reconciliations/{reconciliation_id}/report.pdf"): "recon:read",
    ("POST", "/api/v1/statements"): "recon:write",
    ("GET", "/api/v1/discrepancies"): "recon:read",
    ("GET", "/api/v1/discrepancies/{discrepancy_id}"): "recon:read",
    ("POST", "/api/v1/discrepancies/{discrepancy_id}/actions"): "recon:write",
    ("GET", "/api/v1/reconciliation-rules"): "recon:read",
    ("GET", "/api/v1/tokens"): "tokens:own",
    ("POST", "/api/v1/tokens"): "tokens:manage",
    ("DELETE", "/api/v1/tokens/{token_id}"): "tokens:own",
    ("GET", "/api/v1/users"): "users:manage",
    ("POST", "/api/v1/users"): "users:manage",
    ("GET", "/api/v1/users/{username}"): "users:manage",
    ("POST", "/api/v1/users/{username}/disable"): "users:manage",
    ("POST", "/api/v1/users/{username}/enable"): "users:manage",
    ("POST", "/api/v1/users/{username}/unlock"): "users:manage",
    ("POST", "/api/v1/users/{username}/password"): "users:manage",
    ("GET", "/api/v1/reports/daily-closing"): "recon:read",
    ("GET", "/api/v1/reports/daily-totals"): "recon:read",
    ("GET", "/api/v1/discrepancy-queue"): "recon:read",
    ("POST", "/api/v1/discrepancy-queue/assign"): "recon:write",
    ("POST", "/api/v1/discrepancies/{discrepancy_id}/notes"): "recon:write",
    ("GET", "/api/v1/discrepancies/{discrepancy_id}/history"): "recon:read",
    ("GET", "/console"): PUBLIC,
    ("GET", "/console/"): PUBLIC,
    ("GET", "/console/login"): PUBLIC,
    ("POST", "/console/login"): PUBLIC,
    ("GET", "/console/static/console.css"): PUBLIC,
    ("GET", "/console/static/finance-upload.js"): PUBLIC,
    ("GET", "/status"): PUBLIC,
    ("POST", "/console/logout"): SIGNED_IN,
    ("GET", "/console/counter"): "fines:read",
    ("GET", "/console/receipts/{series}/{number}.pdf"): "receipts:read",
    ("POST", "/console/receipts/{series}/{number}/reprint"): "receipts:reissue",
    ("GET", "/console/operator/links"): "ops:read",
    ("POST", "/console/operator/banks/{bank}/wake"): "ops:write",
    ("GET", "/console/operator/in-doubt"): "payments:read",
    ("POST", "/console/operator/payments/{payment_id}/recheck"): "ops:write",
    ("GET", "/console/operator/alerts"): "ops:read",
    ("GET", "/console/admin/users"): "users:manage",
    ("POST", "/console/admin/users"): "users:manage",
    ("POST", "/console/admin/users/{username}/{action}"): "users:manage",
    ("GET", "/console/admin/users/{username}/tokens"): "users:manage",
    ("POST", "/console/admin/tokens/{token_id}/revoke"): "users:manage",
    ("GET", "/console/approvals"): "approvals:read",
    ("POST", "/console/approvals/{approval_id}/approve"): "approvals:decide",
    ("POST", "/console/approvals/{approval_id}/reject"): "approvals:decide",
    ("GET", "/console/disputes"): "disputes:read",
    ("GET", "/console/disputes/{dispute_id}"): "disputes:read",
    ("POST", "/console/disputes/{dispute_id}/resolutions"): "disputes:resolve",
    ("POST", "/console/disputes/{dispute_id}/evidence/refresh"): "disputes:open",
    ("GET", "/console/closing"): "recon:read",
    ("GET", "/console/closing.csv"): "recon:read",
    ("GET", "/console/closing.pdf"): "recon:read",
    ("GET", "/console/discrepancies"): "recon:read",
    ("POST", "/console/discrepancies/assign"): "recon:write",
    ("GET", "/console/discrepancies/{discrepancy_id}"): "recon:read",
    ("POST", "/console/discrepancies/{discrepancy_id}/assign"): "recon:write",
    ("POST", "/console/discrepancies/{discrepancy_id}/notes"): "recon:write",
    ("POST", "/console/discrepancies/{discrepancy_id}/actions"): "recon:write",
    ("GET", "/console/audit"): "audit:read",
    ("GET", "/console/audit/verification"): "audit:read",
    ("GET", "/console/reconciliations"): "recon:read",
    ("POST", "/console/reconciliations"): "recon:write",
    ("POST", "/console/reconciliations/upload"): "recon:write",
    ("GET", "/console/reconciliations/{reconciliation_id}"): "recon:read",
    ("GET", "/console/reconciliations/{reconciliation_id}/report.csv"): "recon:read",
    ("GET", "/console/reconciliations/{reconciliation_id}/report.pdf"): "recon:read",
    ("GET", "/console/receipts/today"): "receipts:read",
    ("GET", "/console/disputes/new"): "disputes:open",
    ("POST", "/console/disputes/new"): "disputes:open",
    ("GET", "/console/fines/import"): "fines:write",
    ("POST", "/console/fines/import"): "fines:write",
    ("POST", "/console/fines/amend"): "fines:amend",
    ("POST", "/console/fines/cancel"): "fines:amend",
}
CONSOLE_PAGES: Final = frozenset(
    route
    for route, requirement in ROUTES.items()
    if route[1].startswith("/console/") and requirement != PUBLIC
)

# Ids and names that exist nowhere: a permitted request is then answered by
# its handler (404, 400...), never by the role check.
SAMPLES: Final = {
    "decision_number": quote("00000/QĐ-XPHC", safe=""),
    "payment_id": str(uuid.UUID(int=7)),
    "bank": "nobank",
    "series": "AA-2026",
    "number": "1",
    "username": "nobody",
}


def _path(template: str) -> str:
    for name, sample in SAMPLES.items():
        template = template.replace("{" + name + "}", sample)
    while "{" in template:  # every other parameter is a numeric id
        start = template.index("{")
        template = template[:start] + "999999" + template[template.index("}") + 1 :]
    return template


def _routes(app: web.Application) -> set[tuple[str, str]]:
    found = set()
    for route in app.router.routes():
        resource = route.resource
        assert resource is not None
        if route.method != "HEAD":  # aiohttp's automatic HEAD of each GET
            found.add((route.method, resource.canonical))
    return found


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    """The alert receiver enabled (without a secret it refuses all with 503)."""
    return {"alert_webhook_token": "alert-secret-of-the-role-matrix-0123456789"}


def _allowed(requirement: str, role: str, person: bool) -> bool:
    if requirement == ALERT_SECRET:
        return False
    if requirement in (PUBLIC, SIGNED_IN):
        return True
    if requirement == PERSON:
        return person
    return requirement in PERMISSIONS[role] and (person or requirement not in PERSON_ONLY)


async def _principals(engine: AsyncEngine) -> list[tuple[str, str, bool]]:
    """(label, token, is a person) for every staff role and service role."""
    found = []
    for role in PERMISSIONS:
        if role != "portal":
            found.append((f"person {role}", await make_token(engine, role, f"m-{role}"), True))
    for role in SERVICE_ROLES:
        token = await make_service_token(engine, f"svc-{role}", role)
        found.append((f"service {role}", token, False))
    return found


async def _send(api: Api, method: str, path: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    json_body: Any = {} if method == "POST" else None
    resp = await api.request(method, path, headers=headers, json=json_body)
    body = await resp.json() if resp.content_type == "application/json" else None
    return resp.status, body


async def test_every_route_against_every_role(api: Api, engine: AsyncEngine) -> None:
    assert _routes(api.app) == set(ROUTES), "add each new route to ROUTES"
    principals = await _principals(engine)
    checked = 0
    for (method, template), requirement in sorted(ROUTES.items()):
        if (method, template) in CONSOLE_PAGES:
            continue
        path = _path(template)
        status, body = await _send(api, method, path, None)
        if requirement == PUBLIC:
            assert (status, (body or {}).get("error", {}).get("code")) != (401, "unauthorized")
            assert status < 500, (method, template, status, body)
            continue
        assert (status, body["error"]["code"]) == (401, "unauthorized"), (method, template)
        for label, held, person in principals:
            # The logout revokes what it is sent: it gets a token of its own.
            token = await _fresh(engine, label) if template.endswith("/logout") else held
            status, body = await _send(api, method, path, token)
            where = (method, template, label, status, body)
            if requirement == ALERT_SECRET:
                assert (status, body["error"]["code"]) == (401, "unauthorized"), where
            elif _allowed(requirement, label.split()[1], person):
                assert status < 500, where
                assert status not in (401, 403), where
            else:
                assert status == 403, where
                assert body["error"]["code"] in ("forbidden", "person_required"), where
            checked += 1
    tested = [k for k, r in ROUTES.items() if k not in CONSOLE_PAGES and r != PUBLIC]
    assert checked == len(tested) * len(principals)


async def _console_session(engine: AsyncEngine, role: str) -> tuple[str, str]:
    """(cookie value, CSRF token) of a new console session of the person
    ``m-<role>`` (made if new)."""
    await make_token(engine, role, f"m-{role}")
    async with engine.begin() as conn:
        user = await get_user(conn, f"m-{role}")
        raw, session = await create_session(conn, user.id, user.username, datetime.now(UTC))
    return raw, session.csrf_secret


async def _send_page(
    api: Api, method: str, path: str, cookie: str | None, csrf: str, token: str | None = None
) -> tuple[int, str, str]:
    """(status, Location, body) of a console page as a browser asks it."""
    cookies = {"rs_console": cookie} if cookie else {}
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = {"csrf": csrf} if method == "POST" else None
    resp = await api.request(
        method, path, cookies=cookies, headers=headers, data=data, allow_redirects=False
    )
    return resp.status, resp.headers.get("Location", ""), await resp.text()


async def test_every_console_page_against_every_role(api: Api, engine: AsyncEngine) -> None:
    admin = await make_token(engine, "admin", "m-admin")
    checked = 0
    for method, template in sorted(CONSOLE_PAGES):
        requirement = ROUTES[(method, template)]
        path = _path(template)
        for token in (None, admin):  # a bearer token is not a session
            status, location, _ = await _send_page(api, method, path, None, "", token)
            assert (status, location) == (303, "/console/login"), (method, template)
        for role in PERMISSIONS:
            if role == "portal":  # a service account: it has no password, no session
                continue
            cookie, csrf = await _console_session(engine, role)
            status, location, body = await _send_page(api, method, path, cookie, csrf)
            where = (method, template, role, status, body[:300])
            if _allowed(requirement, role, True):
                assert status < 500, where
                assert status != 403, where
                # Only the logout sends a person with a live session to the login.
                assert (location == "/console/login") == template.endswith("/logout"), where
            else:
                assert status == 403, where
                assert "Không có quyền truy cập" in body, where
            checked += 1
    assert checked == len(CONSOLE_PAGES) * (len(PERMISSIONS) - 1)


async def _fresh(engine: AsyncEngine, label: str) -> str:
    kind, role = label.split()
    if kind == "person":
        return await make_token(engine, role, f"m-{role}")
    return await make_service_token(engine, f"svc-{role}", role)
