"""Staff identity: people (users), service accounts, their tokens, logins
and console sessions.

- ``model``: roles, the ``Principal`` of a request and the actor strings
  every write records (a username for a person, ``service:<name>``...);
- ``passwords``: argon2, off the event loop, a few at a time;
- ``tokens``: bearer tokens owned by a user or a service account, expiring,
  revocable, stored as SHA-256 digests;
- ``users``: users and service accounts, managed with an audit row each;
- ``login``: username and password to a token or a console session, with
  lock-out after repeated failures;
- ``sessions``: the console's sessions (idle and absolute timeouts, CSRF).
"""

from ledger.access.login import LockPolicy, LoginOutcome, log_in
from ledger.access.model import (
    SERVICE_ROLES,
    STAFF_ROLES,
    OwnerKind,
    PersonRequiredError,
    Principal,
    Role,
    TokenKind,
    check_units,
    check_username,
    is_person_actor,
    require_person_actor,
)
from ledger.access.passwords import PasswordChecker, check_new_password
from ledger.access.tokens import (
    TOKEN_PREFIX,
    Owner,
    TokenInfo,
    api_token_lifetime,
    hash_token,
    issue_token,
    list_tokens,
    lookup_token,
    revoke_token,
    service_owner,
    user_owner,
)
from ledger.access.users import (
    User,
    create_user,
    ensure_service_account,
    get_user,
    list_users,
    set_disabled,
    set_password,
    unlock,
)

__all__ = [
    "SERVICE_ROLES",
    "STAFF_ROLES",
    "TOKEN_PREFIX",
    "LockPolicy",
    "LoginOutcome",
    "Owner",
    "OwnerKind",
    "PasswordChecker",
    "PersonRequiredError",
    "Principal",
    "Role",
    "TokenInfo",
    "TokenKind",
    "User",
    "api_token_lifetime",
    "check_new_password",
    "check_units",
    "check_username",
    "create_user",
    "ensure_service_account",
    "get_user",
    "hash_token",
    "is_person_actor",
    "issue_token",
    "list_tokens",
    "list_users",
    "log_in",
    "lookup_token",
    "require_person_actor",
    "revoke_token",
    "service_owner",
    "set_disabled",
    "set_password",
    "unlock",
    "user_owner",
]
