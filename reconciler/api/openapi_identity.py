"""OpenAPI paths and schemas of logins, tokens, staff users and the document
itself (``reconciler.api.openapi``)."""

from __future__ import annotations

from typing import Any

from ledger.access.model import SERVICE_ROLES, STAFF_ROLES
from ledger.access.passwords import PASSWORD_CHARS_MAX, PASSWORD_CHARS_MIN
from ledger.access.tokens import API_TOKEN_DAYS_MAX
from reconciler.api.identity import TOKENS_PAGE_MAX
from reconciler.api.openapi_parts import (
    BOOL,
    INT,
    NSTR,
    STR,
    Schema,
    after_id,
    array,
    json_body,
    limit,
    obj,
    operation,
    path,
    path_id,
    query,
    ref,
)
from reconciler.api.staff import USERS_PAGE_MAX

USERNAME: Schema = {"type": "string", "pattern": "^[a-z0-9._-]{2,64}$"}
PASSWORD: Schema = {
    "type": "string",
    "minLength": PASSWORD_CHARS_MIN,
    "maxLength": PASSWORD_CHARS_MAX,
}


def schemas() -> dict[str, Schema]:
    return {
        "Token": obj(
            {
                "id": INT,
                "name": NSTR,
                "kind": STR,
                "owner": obj({"kind": STR, "name": STR}),
                "created_at": STR,
                "created_by": STR,
                "expires_at": STR,
                "last_used_at": NSTR,
                "revoked_at": NSTR,
                "revoked_by": NSTR,
                "active": BOOL,
            }
        ),
        "User": obj(
            {
                "username": STR,
                "full_name": STR,
                "role": STR,
                "units": array(STR),
                "created_at": STR,
                "created_by": STR,
                "disabled": BOOL,
                "locked_until": NSTR,
                "last_login_at": NSTR,
                "password_set_by": NSTR,
            }
        ),
    }


def _strict(properties: dict[str, Schema], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    return json_body({**obj(properties, optional), "additionalProperties": False})


def _auth_paths() -> dict[str, dict[str, Any]]:
    login_ok = obj(
        {
            "token": STR,
            "token_id": INT,
            "expires_at": STR,
            "user": obj({"username": STR, "role": STR, "full_name": STR, "units": array(STR)}),
        }
    )
    me = obj(
        {
            "kind": {"enum": ["user", "service"]},
            "name": STR,
            "actor": STR,
            "role": STR,
            "units": array(STR),
            "credential": obj({"kind": STR, "id": INT, "expires_at": STR}),
        }
    )
    return {
        "/api/v1/auth/login": {
            "post": operation(
                "Log in: a login token of hours",
                "none",
                {200: ("logged in", login_ok)},
                tag="identity",
                body=_strict({"username": USERNAME, "password": PASSWORD}),
                errors=(401, 423, 429),
                public=True,
            )
        },
        "/api/v1/auth/logout": {
            "post": operation(
                "Revoke the presenting token",
                "any token",
                {200: ("revoked", obj({"revoked": ref("Token")}))},
                tag="identity",
            )
        },
        "/api/v1/auth/me": {
            "get": operation(
                "Who the token is",
                "any token",
                {200: ("the caller", me)},
                tag="identity",
            )
        },
        "/api/v1/auth/password": {
            "post": operation(
                "Change one's own password (every login ends)",
                "a person",
                {200: ("changed", obj({"user": ref("User"), "logins_ended": BOOL}))},
                tag="identity",
                body=_strict({"current_password": PASSWORD, "new_password": PASSWORD}),
                errors=(429,),
            )
        },
        "/api/v1/openapi.json": {
            "get": operation(
                "This document",
                "any token",
                {200: ("the OpenAPI 3.1 document", {"type": "object"})},
                tag="identity",
            )
        },
    }


def _token_paths() -> dict[str, dict[str, Any]]:
    new_token = {
        "name": {"type": "string", "minLength": 1, "maxLength": 100},
        "expires_days": {"type": "integer", "minimum": 1, "maximum": API_TOKEN_DAYS_MAX},
        "service": USERNAME,
        "role": {"enum": list(SERVICE_ROLES)},
    }
    return {
        "/api/v1/tokens": {
            "get": operation(
                "Tokens, never their secret (one's own; an admin's: anyone's)",
                "tokens:own",
                {
                    200: (
                        "a page",
                        obj(
                            {
                                "tokens": array(ref("Token")),
                                "next_after_id": {"type": ["integer", "null"]},
                            }
                        ),
                    )
                },
                tag="identity",
                params=(
                    query("user", {"type": "string"}, "this person's (admin)"),
                    query("service", {"type": "string"}, "this service account's (admin)"),
                    query(
                        "include_inactive",
                        {"enum": ["1", "true", "0", "false"]},
                        "also revoked and expired",
                    ),
                    after_id(),
                    limit(TOKENS_PAGE_MAX),
                ),
                errors=(404,),
            ),
            "post": operation(
                "A new API token of the caller or of a service account (shown once)",
                "tokens:manage",
                {201: ("created", {"allOf": [ref("Token"), obj({"token": STR})]})},
                tag="identity",
                body=_strict(new_token, ("expires_days", "service", "role")),
                errors=(404, 409),
            ),
        },
        "/api/v1/tokens/{token_id}": {
            "delete": operation(
                "Revoke a token (one's own; an admin's: anyone's)",
                "tokens:own",
                {200: ("revoked", ref("Token"))},
                tag="identity",
                params=(path_id("token_id", "token"),),
            )
        },
    }


def _user_paths() -> dict[str, dict[str, Any]]:
    username = path("username", USERNAME, "the staff user's name")
    new_user = {
        "username": USERNAME,
        "role": {"enum": list(STAFF_ROLES)},
        "full_name": {"type": "string", "maxLength": 200},
        "units": array({"type": "string", "minLength": 1, "maxLength": 200}),
        "password": PASSWORD,
    }
    shown = {"allOf": [ref("User"), obj({"password": STR}, ("password",))]}
    out: dict[str, dict[str, Any]] = {
        "/api/v1/users": {
            "get": operation(
                "Staff users",
                "users:manage",
                {
                    200: (
                        "a page",
                        obj(
                            {
                                "users": array(ref("User")),
                                "next_after_id": {"type": ["integer", "null"]},
                            }
                        ),
                    )
                },
                tag="users",
                params=(after_id(), limit(USERS_PAGE_MAX)),
            ),
            "post": operation(
                "Create a staff user (a generated password is shown once)",
                "users:manage",
                {201: ("created", shown)},
                tag="users",
                body=_strict(new_user, ("full_name", "units", "password")),
                errors=(409,),
            ),
        },
        "/api/v1/users/{username}": {
            "get": operation(
                "A staff user",
                "users:manage",
                {200: ("the user", ref("User"))},
                tag="users",
                params=(username,),
            )
        },
        "/api/v1/users/{username}/password": {
            "post": operation(
                "Reset a user's password (their logins end)",
                "users:manage",
                {200: ("reset", shown)},
                tag="users",
                params=(username,),
                body={**_strict({"password": PASSWORD}, ("password",)), "required": False},
            )
        },
    }
    for verb, what in (
        ("disable", "Disable a user"),
        ("enable", "Enable a user"),
        ("unlock", "Unlock a user"),
    ):
        out[f"/api/v1/users/{{username}}/{verb}"] = {
            "post": operation(
                what,
                "users:manage",
                {200: ("done", ref("User"))},
                tag="users",
                params=(username,),
                errors=(409,),
            )
        }
    return out


def paths() -> dict[str, dict[str, Any]]:
    """Logins, tokens, users and the document."""
    return {**_auth_paths(), **_token_paths(), **_user_paths()}
