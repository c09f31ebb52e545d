"""Who acts: roles, token kinds, and the principal of a request (what its
writes record as the actor: ``ledger.core.actors``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final

from ledger.core.actors import (
    RESERVED_USERNAMES,
    SERVICE_PREFIX,
    USERNAME_RE,
    PersonRequiredError,
    is_person_actor,
    require_person_actor,
)
from ledger.core.errors import ValidationError


class Role(StrEnum):
    """What a caller may do (``users.role``, ``service_accounts.role``)."""

    OFFICER = "officer"
    FINANCE = "finance"
    APPROVER = "approver"
    OPERATOR = "operator"
    ADMIN = "admin"
    PORTAL = "portal"  # the citizens' portal: a service account, never a person


class OwnerKind(StrEnum):
    USER = "user"
    SERVICE = "service"


class TokenKind(StrEnum):
    SESSION = "session"  # a short-lived bearer token from a login
    API = "api"  # a long-lived token for a script, a portal, an integration


# How a request proved who it is: a bearer token of one of the kinds above,
# or a console session (the cookie of ``ledger.access.sessions``).
CONSOLE: Final = "console"

STAFF_ROLES: Final = tuple(role.value for role in Role if role is not Role.PORTAL)
# A service never approves and never administers (it would mint people's tokens).
SERVICE_ROLES: Final = (
    Role.PORTAL.value,
    Role.OFFICER.value,
    Role.FINANCE.value,
    Role.OPERATOR.value,
)
# Unit scope narrows the counter's and finance's view; it is refused elsewhere
# so that nobody believes an approver or an admin is scoped.
SCOPED_ROLES: Final = (Role.OFFICER.value, Role.FINANCE.value)
UNITS_MAX: Final = 50
UNIT_CHARS_MAX: Final = 200

TOKEN_NAME_CHARS_MAX: Final = 100


@dataclass(frozen=True)
class Principal:
    """Who is calling, resolved from a token or a console session.

    ``owner_name`` is a username or a service account's name; what a write
    records is ``actor``. ``units`` empty: every issuing unit. ``vouched_by``:
    the person who issued this credential, when not its owner (an admin who
    reset the password, or made the token); that person's requests are not
    for this credential to decide."""

    owner_kind: str
    owner_id: int
    owner_name: str
    role: str
    units: tuple[str, ...]
    credential: str  # TokenKind or CONSOLE
    credential_id: int
    expires_at: datetime
    vouched_by: str | None = None

    @property
    def is_person(self) -> bool:
        return self.owner_kind == OwnerKind.USER

    @property
    def actor(self) -> str:
        """What every write by this principal records as who did it."""
        return self.owner_name if self.is_person else SERVICE_PREFIX + self.owner_name

    def sees_unit(self, issuing_unit: str) -> bool:
        """May this principal see what belongs to ``issuing_unit``?"""
        return not self.units or issuing_unit in self.units


def check_username(username: object) -> str:
    if not isinstance(username, str) or not USERNAME_RE.fullmatch(username):
        raise ValidationError("username", "must be 2..64 characters of a-z, 0-9, '.', '_' or '-'")
    if username in RESERVED_USERNAMES:
        raise ValidationError("username", f"{username!r} is reserved for the system")
    return username


def check_service_name(name: object) -> str:
    if not isinstance(name, str) or not USERNAME_RE.fullmatch(name):
        raise ValidationError("service", "must be 2..64 characters of a-z, 0-9, '.', '_' or '-'")
    return name


def check_token_name(name: object) -> str:
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= TOKEN_NAME_CHARS_MAX:
        raise ValidationError("name", f"must be 1..{TOKEN_NAME_CHARS_MAX} characters")
    if not name.isprintable():
        raise ValidationError("name", "contains control or invisible characters")
    return name.strip()


def check_units(units: object, role: str) -> tuple[str, ...]:
    """Issuing units as typed on the fines (compared exactly), no duplicates."""
    if not isinstance(units, list | tuple) or not all(isinstance(u, str) for u in units):
        raise ValidationError("units", "must be a list of issuing units")
    if len(units) > UNITS_MAX:
        raise ValidationError("units", f"may hold at most {UNITS_MAX} units")
    cleaned: list[str] = []
    for typed in units:
        unit = typed.strip()
        if not 1 <= len(unit) <= UNIT_CHARS_MAX or not unit.isprintable():
            raise ValidationError("units", f"each unit is 1..{UNIT_CHARS_MAX} printable characters")
        if unit not in cleaned:
            cleaned.append(unit)
    if cleaned and role not in SCOPED_ROLES:
        raise ValidationError("units", f"only {' and '.join(SCOPED_ROLES)} users are scoped")
    return tuple(cleaned)


__all__ = [
    "RESERVED_USERNAMES",
    "USERNAME_RE",
    "PersonRequiredError",
    "is_person_actor",
    "require_person_actor",
]
