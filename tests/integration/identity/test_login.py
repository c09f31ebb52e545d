"""Logging in over the real API: a person gets a short-lived token of
their own; wrong passwords and unknown users answer alike; guessing is
throttled per address and per name (429), and an account that failed too
often is locked and says until when (423) until it expires or an admin
unlocks it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from ledger.access import LockPolicy, PasswordChecker, log_in, login_failures
from tests.integration.disputes.test_disputes_api import COMPLAINT, FINE
from tests.integration.identity.conftest import PASSWORD, Api, Clock, call, login
from tests.support.api import make_token, make_user
from tests.support.db import rows, value

LOGIN = "/api/v1/auth/login"


async def _try(api: Api, username: str, password: str) -> tuple[int, Any, Any]:
    resp = await api.post(LOGIN, json={"username": username, "password": password})
    return resp.status, await resp.json(), resp.headers


async def test_a_person_logs_in_and_every_write_names_them(api: Api, engine: AsyncEngine) -> None:
    await make_user(engine, "an.nguyen", "officer", PASSWORD)
    before = datetime.now(UTC)
    status, body, _ = await _try(api, "  An.Nguyen ", PASSWORD)  # typed any case
    assert status == 200, body
    assert body["user"] == {
        "username": "an.nguyen",
        "role": "officer",
        "full_name": "",
        "units": [],
    }
    expires = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(hours=8) <= expires <= datetime.now(UTC) + timedelta(hours=8)
    token = body["token"]
    assert token.startswith("rk_")
    status, me = await call(api, "GET", "/api/v1/auth/me", token)
    assert (status, me["actor"], me["credential"]["kind"]) == (200, "an.nguyen", "session")
    # Only the digest is stored.
    assert (
        await value(engine, "SELECT count(*) FROM api_tokens WHERE token_hash = :t", t=token) == 0
    )
    portal = await make_token(engine, "portal", "citizen-portal")
    assert (await call(api, "POST", "/api/v1/fines", portal, json=FINE))[0] == 201
    status, dispute = await call(api, "POST", "/api/v1/disputes", token, json=COMPLAINT)
    assert (status, dispute["opened_by"]) == (201, "an.nguyen"), dispute
    actors = await rows(engine, "SELECT actor, action FROM audit_log ORDER BY id")
    assert ("an.nguyen", "token.created") in [tuple(r) for r in actors]
    assert ("an.nguyen", "dispute.opened") in [tuple(r) for r in actors]


async def test_wrong_password_and_unknown_user_answer_alike(api: Api, engine: AsyncEngine) -> None:
    await make_user(engine, "binh", "finance", PASSWORD)
    wrong = await _try(api, "binh", "not the password")
    unknown = await _try(api, "nobody", "not the password")
    malformed = await _try(api, "no such:user", "not the password")
    for status, body, _ in (wrong, unknown, malformed):
        assert (status, body) == (
            401,
            {"error": {"code": "invalid_credentials", "message": "wrong username or password"}},
        )


class CountingChecker(PasswordChecker):
    """Counts the argon2 checks run (through the public ``matches``)."""

    def __init__(self) -> None:
        super().__init__(1)
        self.checks = 0

    async def matches(self, password_hash: str | None, password: str) -> bool:
        self.checks += 1
        return await super().matches(password_hash, password)


async def test_an_unknown_user_costs_the_same_argon2_check(engine: AsyncEngine) -> None:
    await make_user(engine, "cuong", "officer", PASSWORD)
    now = datetime.now(UTC)
    for username in ("cuong", "nobody", "not a name!", "disabled-or-not"):
        checker = CountingChecker()
        outcome = await log_in(
            engine, checker, username, "wrong password", now, policy=LockPolicy()
        )
        assert not outcome.ok
        assert checker.checks == 1, username


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"login_failures_per_username": 3, "login_failures_per_address": 1000}


async def test_guessing_one_name_is_throttled_even_with_the_right_password(
    api: Api, engine: AsyncEngine
) -> None:
    await make_user(engine, "dung", "officer", PASSWORD)
    for _ in range(3):
        assert (await _try(api, "dung", "guess guess guess"))[0] == 401
    status, body, headers = await _try(api, "dung", PASSWORD)
    assert (status, body["error"]["code"]) == (429, "too_many_attempts"), body
    assert 1 <= int(headers["Retry-After"]) <= 300
    # The same for a name that does not exist: nothing tells them apart.
    for _ in range(3):
        assert (await _try(api, "ghost", "guess guess guess"))[0] == 401
    assert (await _try(api, "ghost", "guess guess guess"))[0] == 429
    # Another person is not held up.
    await make_user(engine, "em", "officer", PASSWORD)
    assert (await _try(api, "em", PASSWORD))[0] == 200


async def test_guessing_from_one_address_is_throttled(make_api: Any, engine: AsyncEngine) -> None:
    await make_user(engine, "giang", "officer", PASSWORD)
    async with make_api(login_failures_per_address=4, login_failures_per_username=100) as api:
        for i in range(4):
            assert (await _try(api, f"user-{i}", "spray password"))[0] == 401
        status, body, headers = await _try(api, "giang", PASSWORD)
        assert (status, body["error"]["code"]) == (429, "too_many_attempts")
        assert int(headers["Retry-After"]) >= 1


async def test_two_api_processes_share_the_limits(make_api: Any, engine: AsyncEngine) -> None:
    """A guesser who spreads their attempts over two API processes meets
    the same limit as on one: each process saw 2 of the 4 failures, and the
    fifth try is refused by both, the right password too."""
    await make_user(engine, "khoa", "officer", PASSWORD)
    overrides = {"login_failures_per_username": 4, "login_failures_per_address": 1000}
    async with make_api(**overrides) as first, make_api(**overrides) as second:
        for api in (first, second, first, second):
            assert (await _try(api, "khoa", "guess guess guess"))[0] == 401
        for api in (first, second):
            status, body, headers = await _try(api, "khoa", PASSWORD)
            assert (status, body["error"]["code"]) == (429, "too_many_attempts"), body
            assert 1 <= int(headers["Retry-After"]) <= 300
        # What the database holds: hashes and times, never a name or address.
        stored = await rows(engine, "SELECT kind, key_hash FROM login_failures")
        assert len(stored) == 8
        assert {row.kind for row in stored} == {"address", "username"}
        dumped = str(await rows(engine, "SELECT * FROM login_failures"))
        assert "khoa" not in dumped
        assert "127.0.0.1" not in dumped


async def test_parallel_guesses_on_two_processes_are_counted_as_they_arrive(
    make_api: Any, engine: AsyncEngine
) -> None:
    """Twelve wrong guesses sent at once, half to each process: the limit
    is checked and the attempt counted before the (slow) password check, in
    one transaction per attempt, so exactly the limit get to try."""
    await make_user(engine, "minh", "officer", PASSWORD)
    overrides = {"login_failures_per_username": 3, "login_failures_per_address": 1000}
    async with make_api(**overrides) as first, make_api(**overrides) as second:
        answers = await asyncio.gather(
            *(_try((first, second)[i % 2], "minh", "guess guess guess") for i in range(12))
        )
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [401] * 3 + [429] * 9, statuses
    assert await value(engine, "SELECT count(*) FROM login_failures") == 6


async def test_the_shared_failures_forget_what_left_the_window(
    make_api: Any, engine: AsyncEngine
) -> None:
    """Failures older than the window neither count nor stay: the next
    failure deletes them, so the table holds about one window."""
    await make_user(engine, "lan", "officer", PASSWORD)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO login_failures (kind, key_hash, at)"
                " SELECT 'username', sha256('lan'::bytea), now() - interval '10 minutes'"
                " FROM generate_series(1, 50)"
            )
        )
    overrides = {"login_failures_per_username": 3, "login_throttle_window_seconds": 300}
    async with make_api(**overrides) as api:
        assert (await _try(api, "lan", "guess guess guess"))[0] == 401
        assert await value(engine, "SELECT count(*) FROM login_failures") == 2
        # A success forgets the name's failures (the address keeps its own).
        assert (await _try(api, "lan", PASSWORD))[0] == 200
        kinds = await rows(engine, "SELECT kind FROM login_failures")
        assert [row.kind for row in kinds] == ["address"]
    # The worker's purge: every row out of the window, in batches, and no other.
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO login_failures (kind, key_hash, at)"
                " SELECT 'address', sha256(i::text::bytea), now() - interval '1 hour'"
                " FROM generate_series(1, 1500) AS i"
            )
        )
    purged = await login_failures.purge(engine, datetime.now(UTC) - timedelta(seconds=300))
    assert purged == 1500
    assert await value(engine, "SELECT count(*) FROM login_failures") == 1


async def test_a_locked_account_says_so_until_an_admin_unlocks_it(
    make_api: Any, engine: AsyncEngine
) -> None:
    await make_user(engine, "hoa", "finance", PASSWORD)
    admin = await make_token(engine, "admin", "boss")
    overrides = {"login_lock_failures": 3, "login_failures_per_username": 100}
    async with make_api(**overrides) as api:
        assert (await _try(api, "hoa", "wrong one"))[0] == 401
        assert (await _try(api, "hoa", "wrong two"))[0] == 401
        status, body, headers = await _try(api, "hoa", "wrong three")
        assert (status, body["error"]["code"]) == (423, "account_locked"), body
        until = datetime.fromisoformat(body["error"]["locked_until"])
        assert until > datetime.now(UTC) + timedelta(minutes=29)
        assert int(headers["Retry-After"]) > 1700
        # Locked: even the right password is refused, and said why.
        status, body, _ = await _try(api, "hoa", PASSWORD)
        assert (status, body["error"]["code"]) == (423, "account_locked")
        status, user = await call(api, "POST", "/api/v1/users/hoa/unlock", admin)
        assert (status, user["locked_until"]) == (200, None), user
        assert (await _try(api, "hoa", PASSWORD))[0] == 200
    trail = await rows(
        engine, "SELECT actor, action FROM audit_log WHERE subject_id = 'hoa' ORDER BY id"
    )
    assert [tuple(r) for r in trail][-2:] == [
        ("system:login", "user.locked"),
        ("boss", "user.unlocked"),
    ]


async def test_a_lock_ends_by_itself_and_failures_outside_the_window_do_not_add_up(
    engine: AsyncEngine,
) -> None:
    await make_user(engine, "khanh", "officer", PASSWORD)
    policy = LockPolicy(failures=2, window=timedelta(minutes=10), duration=timedelta(minutes=5))
    checker = PasswordChecker(1)
    t0 = datetime.now(UTC)
    assert not (await log_in(engine, checker, "khanh", "wrong", t0, policy=policy)).ok
    later = t0 + timedelta(minutes=11)  # the first failure is out of the window
    outcome = await log_in(engine, checker, "khanh", "wrong", later, policy=policy)
    assert (outcome.ok, outcome.locked_until) == (False, None)
    locked = await log_in(engine, checker, "khanh", "wrong", later, policy=policy)
    assert locked.locked_until == later + timedelta(minutes=5)
    during = await log_in(
        engine, checker, "khanh", PASSWORD, later + timedelta(minutes=4), policy=policy
    )
    assert (during.ok, during.locked_until) == (False, locked.locked_until)
    after = await log_in(
        engine, checker, "khanh", PASSWORD, later + timedelta(minutes=6), policy=policy
    )
    assert after.ok


async def test_logout_revokes_the_presenting_token_at_once(api: Api, engine: AsyncEngine) -> None:
    await make_user(engine, "lan", "approver", PASSWORD)
    first = await login(api, "lan")
    second = await login(api, "lan")
    assert (await call(api, "GET", "/api/v1/auth/me", first))[0] == 200
    status, body = await call(api, "POST", "/api/v1/auth/logout", first)
    assert (status, body["revoked"]["revoked_by"]) == (200, "lan"), body
    status, body = await call(api, "GET", "/api/v1/auth/me", first)
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    assert (await call(api, "GET", "/api/v1/auth/me", second))[0] == 200


async def test_disabled_expired_and_revoked_tokens_stop_within_the_cache_ttl(
    api: Api, engine: AsyncEngine, cache_clock: Clock
) -> None:
    await make_user(engine, "minh", "officer", PASSWORD)
    token = await login(api, "minh")
    admin = await make_token(engine, "admin", "boss")
    assert (await call(api, "GET", "/api/v1/auth/me", token))[0] == 200
    status, _ = await call(api, "POST", "/api/v1/users/minh/disable", admin)
    assert status == 200
    cache_clock.pass_ttl()
    assert (await call(api, "GET", "/api/v1/auth/me", token))[0] == 401
    assert (await _try(api, "minh", PASSWORD))[0] == 401  # disabled: like unknown
    # An expired token: never accepted, cached or not.
    await make_user(engine, "minh2", "officer", PASSWORD)
    token = await login(api, "minh2")
    assert (await call(api, "GET", "/api/v1/auth/me", token))[0] == 200
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "UPDATE api_tokens SET created_at = now() - interval '9 hours',"
                " expires_at = now() - interval '1 hour' WHERE kind = 'session'"
            )
        )
    cache_clock.pass_ttl()
    assert (await call(api, "GET", "/api/v1/auth/me", token))[0] == 401


async def test_changing_ones_password_ends_ones_logins(api: Api, engine: AsyncEngine) -> None:
    await make_user(engine, "nam", "officer", PASSWORD)
    token = await login(api, "nam")
    other = await login(api, "nam")
    path = "/api/v1/auth/password"
    status, body = await call(
        api, "POST", path, token, json={"current_password": "wrong", "new_password": "x" * 20}
    )
    assert (status, body["error"]["code"]) == (403, "invalid_credentials")
    status, body = await call(
        api, "POST", path, token, json={"current_password": PASSWORD, "new_password": "short"}
    )
    assert (status, body["error"]["field"]) == (400, "password")
    status, body = await call(
        api, "POST", path, token, json={"current_password": PASSWORD, "new_password": "a new one!"}
    )
    assert (status, body["error"]["field"]) == (400, "password")  # under 12 characters
    new = "a brand new secret"
    status, body = await call(
        api, "POST", path, token, json={"current_password": PASSWORD, "new_password": new}
    )
    assert (status, body["user"]["password_set_by"]) == (200, "nam"), body
    assert (await call(api, "GET", "/api/v1/auth/me", token))[0] == 401
    assert (await call(api, "GET", "/api/v1/auth/me", other))[0] == 401
    assert (await _try(api, "nam", PASSWORD))[0] == 401
    assert (await _try(api, "nam", new))[0] == 200


@pytest.mark.parametrize(
    "body",
    [
        {"username": "x"},
        {"username": 1, "password": "p"},
        {"username": "x", "password": "p", "role": "admin"},
        {"username": "x", "password": "p" * 257},
        {"username": "x" * 201, "password": "p"},
        ["x", "p"],
    ],
)
async def test_malformed_logins_are_400_and_change_nothing(
    api: Api, engine: AsyncEngine, body: Any
) -> None:
    before = await value(engine, "SELECT count(*) FROM audit_log")
    resp = await api.post(LOGIN, json=body)
    assert resp.status == 400, await resp.text()
    assert await value(engine, "SELECT count(*) FROM audit_log") == before
