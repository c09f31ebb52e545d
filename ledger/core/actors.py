"""Actors: the strings every write records as who did it.

A person is their username (``alice``). Anything else carries a colon:
``service:portal`` (a service account), ``system:dispute`` (a workflow),
``cli:root`` (the server's command line). A username can never hold a colon
(``USERNAME_RE``, also checked by the database), and the few bare words the
system has written as an actor (``RESERVED_USERNAMES``) are refused as
usernames, so ``is_person_actor`` tells a person from everything else by the
string alone. Maker-checker compares these strings: one person, one string,
whatever credential they used.
"""

from __future__ import annotations

import re
from typing import Final

from ledger.core.errors import ForbiddenError

USERNAME_RE: Final = re.compile(r"[a-z0-9._-]{2,64}", re.ASCII)
# Reconciliation triggers and other bare words written as actors; a user of
# that name could pass for them.
RESERVED_USERNAMES: Final = frozenset(
    {"api", "cli", "manual", "schedule", "service", "system", "unknown", "upload", "webhook"}
)
SERVICE_PREFIX: Final = "service:"


class PersonRequiredError(ForbiddenError):
    """A service account or the system tried what only a person may do:
    request or decide an approval (HTTP 403)."""

    code = "person_required"


def is_person_actor(actor: str) -> bool:
    """Does ``actor`` name a person (a username), not a service or the system?"""
    return USERNAME_RE.fullmatch(actor) is not None and actor not in RESERVED_USERNAMES


def require_person_actor(field: str, actor: str) -> str:
    if not is_person_actor(actor):
        raise PersonRequiredError(
            f"{field}: {actor!r} is not a person; only a person may request "
            "or decide an approval (a service account or the system never does)"
        )
    return actor
