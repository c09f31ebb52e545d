"""Managing tokens and users over the API and the CLI: shown once,
listed without their secret, revoked, expiring within a bound; an admin
cannot mint another person's token; each change audited naming who did it."""

from __future__ import annotations

import asyncio
import getpass
from typing import Any

from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncEngine

from reconciler.cli.main import main
from tests.integration.identity.conftest import PASSWORD, Api, Clock, call, login
from tests.support.api import make_token, make_user
from tests.support.db import rows, value


async def _audit(engine: AsyncEngine, subject_type: str) -> list[tuple[str, str]]:
    found = await rows(
        engine,
        "SELECT actor, action FROM audit_log WHERE subject_type = :s ORDER BY id",
        s=subject_type,
    )
    return [(r.actor, r.action) for r in found]


async def test_an_admin_makes_api_tokens_for_self_and_services(
    api: Api, engine: AsyncEngine
) -> None:
    admin = await make_token(engine, "admin", "root")
    status, mine = await call(
        api, "POST", "/api/v1/tokens", admin, json={"name": "nightly script", "expires_days": 30}
    )
    assert status == 201, mine
    assert (mine["owner"], mine["kind"], mine["created_by"]) == (
        {"kind": "user", "name": "root"},
        "api",
        "root",
    )
    status, me = await call(api, "GET", "/api/v1/auth/me", mine["token"])
    assert (status, me["actor"]) == (200, "root")
    status, portal = await call(
        api,
        "POST",
        "/api/v1/tokens",
        admin,
        json={"name": "portal prod", "service": "citizen-portal", "role": "portal"},
    )
    assert status == 201, portal
    status, me = await call(api, "GET", "/api/v1/auth/me", portal["token"])
    assert (me["actor"], me["role"]) == ("service:citizen-portal", "portal")
    # Listed, never with their secret.
    status, listed = await call(api, "GET", "/api/v1/tokens", admin)
    assert status == 200
    assert all("token" not in t for t in listed["tokens"])
    assert {t["name"] for t in listed["tokens"]} >= {"nightly script", "portal prod"}
    status, narrowed = await call(api, "GET", "/api/v1/tokens?service=citizen-portal", admin)
    assert [t["name"] for t in narrowed["tokens"]] == ["portal prod"]
    assert await _audit(engine, "service_account") == [("root", "service_account.created")]
    # The test's own token, then the two made here.
    assert await _audit(engine, "api_token") == [("root", "token.created")] * 3


async def test_what_an_admin_may_not_do_with_tokens(api: Api, engine: AsyncEngine) -> None:
    admin = await make_token(engine, "admin", "root")
    await make_user(engine, "vy", "approver", PASSWORD)
    refused: list[tuple[dict[str, Any], int, str]] = [
        ({"name": "for vy", "user": "vy"}, 400, "user"),  # no minting a colleague's token
        ({"name": "robot", "service": "robot", "role": "approver"}, 400, "role"),
        ({"name": "robot", "service": "robot", "role": "admin"}, 400, "role"),
        ({"name": "robot", "service": "robot"}, 400, "role"),  # a new service needs a role
        ({"name": "x", "expires_days": 366}, 400, "expires_days"),
        ({"name": "x", "expires_days": 0}, 400, "expires_days"),
        ({"name": "x", "expires_days": "90"}, 400, "expires_days"),
        ({"name": "x", "expires_days": 1.5}, 400, "expires_days"),
        ({"name": ""}, 400, "name"),
        ({"name": "x" * 101}, 400, "name"),
        ({"name": "bell\u0007"}, 400, "name"),
        ({"name": "x", "role": "portal"}, 400, "role"),
    ]
    before = await value(engine, "SELECT count(*) FROM api_tokens")
    for body, status, field in refused:
        answer, error = await call(api, "POST", "/api/v1/tokens", admin, json=body)
        assert (answer, error["error"].get("field")) == (status, field), (body, error)
    assert await value(engine, "SELECT count(*) FROM api_tokens") == before
    # Only an admin makes tokens at all.
    vy = await login(api, "vy")
    answer, error = await call(api, "POST", "/api/v1/tokens", vy, json={"name": "mine"})
    assert (answer, error["error"]["code"]) == (403, "forbidden")


async def test_people_list_and_revoke_their_own_tokens_only(api: Api, engine: AsyncEngine) -> None:
    admin = await make_token(engine, "admin", "root")
    await make_user(engine, "tam", "officer", PASSWORD)
    tam = await login(api, "tam")
    tam_too = await login(api, "tam")
    status, listed = await call(api, "GET", "/api/v1/tokens", tam)
    assert status == 200
    assert {t["owner"]["name"] for t in listed["tokens"]} == {"tam"}
    assert len(listed["tokens"]) == 2
    status, body = await call(api, "GET", "/api/v1/tokens?user=root", tam)
    assert (status, body["error"]["code"]) == (403, "forbidden")
    admins_token = await value(engine, "SELECT max(id) FROM api_tokens WHERE name = 'root-token'")
    status, body = await call(api, "DELETE", f"/api/v1/tokens/{admins_token}", tam)
    assert (status, body["error"]["code"]) == (404, "not_found")  # not told it exists
    assert (await call(api, "GET", "/api/v1/auth/me", admin))[0] == 200
    other = next(t for t in listed["tokens"])["id"]
    status, body = await call(api, "DELETE", f"/api/v1/tokens/{other}", tam)
    assert (status, body["revoked_by"]) == (200, "tam")
    alive = [t for t in (tam, tam_too) if (await call(api, "GET", "/api/v1/auth/me", t))[0] == 200]
    assert len(alive) == 1
    # An admin revokes anyone's.
    status, body = await call(api, "DELETE", f"/api/v1/tokens/{admins_token}", admin)
    assert (status, body["active"]) == (200, False)
    status, listed = await call(api, "GET", "/api/v1/tokens?include_inactive=true", alive[0])
    assert sum(1 for t in listed["tokens"] if not t["active"]) == 1


async def test_an_admin_manages_users_each_step_audited(
    api: Api, engine: AsyncEngine, cache_clock: Clock
) -> None:
    admin = await make_token(engine, "admin", "root")
    status, made = await call(
        api,
        "POST",
        "/api/v1/users",
        admin,
        json={"username": "xuan", "role": "finance", "units": ["Đội CSGT số 1"]},
    )
    assert status == 201, made
    assert (made["units"], made["created_by"], len(made["password"])) == (
        ["Đội CSGT số 1"],
        "root",
        16,
    )
    xuan = await login(api, "xuan", made["password"])
    assert (await call(api, "GET", "/api/v1/users", xuan))[0] == 403
    bad = [
        ({"username": "xuan", "role": "finance"}, 409),
        ({"username": "Xuan!", "role": "finance"}, 400),
        ({"username": "cli", "role": "finance"}, 400),  # reserved: the system's name
        ({"username": "yen", "role": "portal"}, 400),
        ({"username": "yen", "role": "approver", "units": ["Đội 1"]}, 400),
        ({"username": "yen", "role": "officer", "password": "short"}, 400),
        ({"username": "yen", "role": "officer", "password": "yen"}, 400),
    ]
    for body, expected in bad:
        assert (await call(api, "POST", "/api/v1/users", admin, json=body))[0] == expected, body
    assert (await call(api, "POST", "/api/v1/users/xuan/disable", admin))[0] == 200
    assert (await call(api, "POST", "/api/v1/users/root/disable", admin))[0] == 403  # oneself
    assert (await call(api, "POST", "/api/v1/users/xuan/enable", admin))[0] == 200
    status, reset = await call(api, "POST", "/api/v1/users/xuan/password", admin)
    assert (status, reset["password_set_by"]) == (200, "root")
    cache_clock.pass_ttl()
    assert (await call(api, "GET", "/api/v1/auth/me", xuan))[0] == 401  # the reset ended it
    await login(api, "xuan", reset["password"])
    status, listed = await call(api, "GET", "/api/v1/users", admin)
    assert {u["username"] for u in listed["users"]} >= {"root", "xuan"}
    assert (await call(api, "GET", "/api/v1/users/nobody", admin))[0] == 404
    assert await _audit(engine, "user") == [
        ("test:setup", "user.created"),
        ("root", "user.created"),
        ("root", "user.disabled"),
        ("root", "user.enabled"),
        ("root", "user.password_reset"),
    ]


def _cli(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(main, list(args), env=env)


async def test_the_cli_manages_users_and_tokens_as_cli_login(
    db_url: str, engine: AsyncEngine
) -> None:
    env = {"RECONCILER_DATABASE_URL": db_url, "RECONCILER_NEW_USER_PASSWORD": PASSWORD}

    async def run(*args: str) -> Any:
        return await asyncio.to_thread(_cli, env, *args)

    made = await run("users", "create", "zoe", "--role", "officer", "--unit", "Đội 2")
    assert made.exit_code == 0, made.output
    assert (await run("users", "create", "zoe", "--role", "officer")).exit_code == 1
    listed = await run("users", "list")
    assert "zoe\tofficer\tactive\tĐội 2" in listed.output
    for command in ("disable", "enable", "unlock", "reset-password"):
        assert (await run("users", command, "zoe")).exit_code == 0, command
    token = await run("tokens", "create", "laptop", "--user", "zoe", "--expires-days", "7")
    assert token.exit_code == 0, token.output
    assert token.output.strip().startswith("rk_")
    legacy = await run("tokens", "create", "old-portal", "--role", "portal")
    assert legacy.exit_code == 0, legacy.output
    refused = await run("tokens", "create", "robot", "--role", "admin")
    assert refused.exit_code == 2
    assert "give the token to a person" in refused.output
    assert (await run("tokens", "create", "nobody's")).exit_code == 2
    assert (
        await run("tokens", "create", "x", "--user", "zoe", "--expires-days", "400")
    ).exit_code == 2
    listed = await run("tokens", "list", "--user", "zoe")
    assert "user:zoe\tapi\tlaptop\tactive" in listed.output, listed.output
    token_id = listed.output.split("\t")[0]
    assert (await run("tokens", "revoke", token_id)).exit_code == 0
    listed = await run("tokens", "list", "--all")
    assert "laptop\trevoked" in listed.output
    login_name = "cli:" + getpass.getuser().lower()
    actors = {a for a, _ in await _audit(engine, "user")} | {
        a for a, _ in await _audit(engine, "api_token")
    }
    assert actors == {login_name}, actors
