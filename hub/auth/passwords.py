"""Password hashing (argon2id) and the rules for user names, roles and passwords.

Hashing is CPU- and memory-hard on purpose (64 MiB per hash with argon2-cffi's defaults), so it runs in
a worker thread and at most ``_PARALLEL`` at a time: a burst of logins must neither block the event
loop nor take gigabytes of memory.
"""

from __future__ import annotations

import asyncio
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from swtel.shared.errors import InvalidInput

ROLES: tuple[str, ...] = ("viewer", "operator", "admin")  # each role can do what the ones before it can
MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 accepts more, but nobody needs it and it bounds the work per attempt
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
_PARALLEL = 2

_hasher = PasswordHasher()


def check_user_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"user name {name!r} must be 1-64 letters, digits or _ . @ - and start with a letter or digit", "name"
        )
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"role {role!r} is unknown; use one of {', '.join(ROLES)}", "role")
    return role


def check_password(password: str) -> str:
    # Never echo the password in the message.
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"a password must have {MIN_PASSWORD} to {MAX_PASSWORD} characters", "password")
    return password


def role_at_least(role: str, needed: str) -> bool:
    return ROLES.index(role) >= ROLES.index(needed)


def hash_password_sync(password: str) -> str:
    """For the CLI, which has no event loop to keep free."""
    return _hasher.hash(check_password(password))


def _verify(stored: str, password: str) -> tuple[bool, bool]:
    try:
        _hasher.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, _hasher.check_needs_rehash(stored)


class Passwords:
    """Hashing and verification off the event loop, at most ``parallel`` at a time (one per hub)."""

    def __init__(self, parallel: int = _PARALLEL) -> None:
        self._slots = asyncio.Semaphore(parallel)
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        async with self._slots:
            return await asyncio.to_thread(hash_password_sync, password)

    async def verify(self, stored: str | None, password: str) -> tuple[bool, bool]:
        """(matches, needs_rehash). ``stored=None`` (unknown user) never matches but costs the same time,
        so response times do not reveal which user names exist."""
        if not isinstance(password, str) or len(password) > MAX_PASSWORD:
            return False, False
        async with self._slots:
            if stored is None:
                if self._dummy is None:
                    self._dummy = await asyncio.to_thread(_hasher.hash, "never matches anything")
                await asyncio.to_thread(_verify, self._dummy, password)
                return False, False
            return await asyncio.to_thread(_verify, stored, password)
