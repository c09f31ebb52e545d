"""What production refuses as a secret: a published value, or a short one.

One list of every secret value this repository has ever published (compose
defaults, documentation examples): a deployment that still uses one is using
a secret anyone can read. ``.env.example`` publishes none (its values are
empty, so docker-compose itself refuses to start until they are set).
"""

from __future__ import annotations

import re
import typing
from typing import Final

from pydantic import BaseModel, SecretStr
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

SECRET_BYTES_MIN: Final = 32
KNOWN_DEV_SECRETS: Final = frozenset(
    {
        # docker-compose.yml defaults before secrets became mandatory
        "reconciler-dev-only",
        "sgbank-webhook-dev-only",
        "admin-dev-only",
        "alert-webhook-dev-only",
        # what people type when told to "set a secret"
        "admin",
        "changeme",
        "change-me",
        "password",
        "secret",
    }
)
# Any value containing one of these was written as a placeholder.
PLACEHOLDER_MARKERS: Final = ("dev-only", "change-me", "changeme", "replace-me", "example")
_SECRET_NAME: Final = re.compile(r"(^|_)(secret|key|password|token)$")
GENERATE_HINT: Final = "generate one with: openssl rand -base64 32"


def secret_problem(name: str, value: str) -> str | None:
    """Why ``value`` may not be the production secret ``name``; None if it may."""
    folded = value.strip().casefold()
    if folded in KNOWN_DEV_SECRETS or any(marker in folded for marker in PLACEHOLDER_MARKERS):
        return f"{name} is a published placeholder, not a secret ({GENERATE_HINT})"
    size = len(value.encode("utf-8"))
    if size < SECRET_BYTES_MIN:
        return (
            f"{name} is {size} bytes long; production needs at least "
            f"{SECRET_BYTES_MIN} ({GENERATE_HINT})"
        )
    return None


def _is_secret_field(name: str, annotation: object) -> bool:
    return (
        annotation is SecretStr
        or SecretStr in typing.get_args(annotation)
        or bool(_SECRET_NAME.search(name))
    )


def _plain(value: object) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else str(value)


def production_secret_problems(settings: BaseModel) -> list[str]:
    """Every secret of ``settings`` that production refuses, by environment
    variable name; unset secrets are left to the process that needs them."""
    problems: list[str] = []
    for name, info in type(settings).model_fields.items():
        value = getattr(settings, name)
        if value is None or value == "" or not _is_secret_field(name, info.annotation):
            continue
        problems.append(secret_problem(f"RECONCILER_{name.upper()}", _plain(value)) or "")
    for bank, config in getattr(settings, "banks", {}).items():
        secret = getattr(config, "webhook_secret", "")
        if secret:
            name = f"RECONCILER_BANKS[{bank}].webhook_secret"
            problems.append(secret_problem(name, secret) or "")
    password = database_password(getattr(settings, "database_url", ""))
    if password:
        problems.append(secret_problem("the password in RECONCILER_DATABASE_URL", password) or "")
    return [problem for problem in problems if problem]


def database_password(url: str) -> str | None:
    """The password written in a database URL, if any."""
    try:
        return make_url(url).password if url else None
    except ArgumentError:
        return None
