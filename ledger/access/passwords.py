"""Passwords: argon2 hashes, checked off the event loop and a few at a time.

An argon2 check costs tens of milliseconds of CPU and 64 MiB of memory on
purpose. On the event loop it would stall every other request; unbounded in
threads, a burst of logins would take the process's memory. So every hash and
check runs in a worker thread, at most ``concurrency`` at once; the others
wait their turn (before they hold a database connection: see
``ledger.access.login``).
"""

from __future__ import annotations

import asyncio
from typing import Final

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ledger.core.errors import ValidationError

PASSWORD_CHARS_MIN: Final = 12
PASSWORD_CHARS_MAX: Final = 256
ARGON2_CONCURRENCY_DEFAULT: Final = 2


def check_new_password(password: object, username: str) -> str:
    """A password someone chooses now (old ones are not re-checked)."""
    if not isinstance(password, str):
        raise ValidationError("password", "must be a string")
    if len(password) < PASSWORD_CHARS_MIN:
        raise ValidationError("password", f"must be at least {PASSWORD_CHARS_MIN} characters")
    if len(password) > PASSWORD_CHARS_MAX:
        raise ValidationError("password", f"must be at most {PASSWORD_CHARS_MAX} characters")
    if password.strip().lower() == username.lower() or not password.strip():
        raise ValidationError("password", "must not be blank or the username")
    if any(ord(c) < 32 or c == "\x7f" for c in password):
        raise ValidationError("password", "contains control characters")
    return password


class PasswordChecker:
    """argon2 hashing and checking with bounded concurrency (one per process)."""

    def __init__(self, concurrency: int = ARGON2_CONCURRENCY_DEFAULT) -> None:
        assert concurrency >= 1, concurrency
        self._hasher = PasswordHasher()
        self._slots = asyncio.Semaphore(concurrency)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(self._hasher.hash, password)

    async def matches(self, password_hash: str | None, password: str) -> bool:
        """Does ``password`` match? ``password_hash`` None (no such user)
        costs the same as a real check, so that timing does not tell a
        missing user from a wrong password."""
        password = password[:PASSWORD_CHARS_MAX]
        checked = password_hash if password_hash is not None else await self._dummy_hash()
        async with self._slots:
            matched = await asyncio.to_thread(self._verify, checked, password)
        return matched and password_hash is not None

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = await self.hash("no such user: a dummy password")
        return self._dummy
