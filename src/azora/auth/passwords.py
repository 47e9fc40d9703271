"""Password hashing with Argon2id (argon2-cffi).

Production parameters: argon2-cffi's RFC 9106 "low memory" profile (t=3, m=64 MiB,
p=4), about 100 ms per hash on a 2-core machine and above every configuration OWASP's
Password Storage Cheat Sheet lists as the minimum for Argon2id (m=47104 KiB/t=1,
m=19456/t=2, m=12288/t=3, m=9216/t=4, m=7168/t=5, all p=1). A stored hash made with
other parameters is re-hashed at the next successful sign-in (:meth:`Passwords.needs_rehash`).

Hashing takes tens of milliseconds of CPU, so the async methods run it in a worker
thread and keep the event loop free.
"""

from __future__ import annotations

import asyncio
import base64
import secrets
from dataclasses import dataclass

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


@dataclass(frozen=True)
class Argon2Parameters:
    """The cost of one Argon2id hash."""

    time_cost: int
    memory_cost_kib: int
    parallelism: int


#: What production hashes with (RFC 9106 low-memory profile).
PRODUCTION_PARAMETERS = Argon2Parameters(time_cost=3, memory_cost_kib=65_536, parallelism=4)

#: OWASP's equivalent minimum configurations for Argon2id: iterations -> memory (KiB),
#: each with parallelism 1.
OWASP_MINIMUM_MEMORY_KIB: dict[int, int] = {1: 47_104, 2: 19_456, 3: 12_288, 4: 9_216, 5: 7_168}


def meets_owasp_minimum(parameters: Argon2Parameters) -> bool:
    """True when ``parameters`` are at least one of OWASP's minimum configurations."""
    if parameters.parallelism < 1 or parameters.time_cost < 1:
        return False
    iterations = min(parameters.time_cost, max(OWASP_MINIMUM_MEMORY_KIB))
    return parameters.memory_cost_kib >= OWASP_MINIMUM_MEMORY_KIB[iterations]


class Passwords:
    """Hashes and checks passwords with one set of Argon2id parameters.

    Tests may build one with cheaper parameters; the service defaults to
    :data:`PRODUCTION_PARAMETERS`.
    """

    def __init__(self, parameters: Argon2Parameters = PRODUCTION_PARAMETERS) -> None:
        self.parameters = parameters
        self._hasher = PasswordHasher(
            time_cost=parameters.time_cost,
            memory_cost=parameters.memory_cost_kib,
            parallelism=parameters.parallelism,
            type=Type.ID,
        )
        self._dummy = _unmatchable_hash(parameters)

    def hash_sync(self, password: str) -> str:
        """A salted Argon2id hash of ``password`` (blocks for the hash's duration)."""
        return self._hasher.hash(password)

    async def hash(self, password: str) -> str:
        """A salted Argon2id hash of ``password``, computed in a worker thread."""
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, stored_hash: str, password: str) -> bool:
        """True when ``password`` matches ``stored_hash`` (a malformed hash never matches)."""
        return await asyncio.to_thread(self._verify, stored_hash, password)

    async def verify_dummy(self, password: str) -> bool:
        """Spend the time of a real check against a hash nothing matches; always False.

        Used for unknown accounts, so a wrong email costs as long as a wrong password
        (from the first call on: the dummy hash is made without hashing anything).
        """
        await self.verify(self._dummy, password)
        return False

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when ``stored_hash`` was made with other parameters than these."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def _unmatchable_hash(parameters: Argon2Parameters) -> str:
    """An encoded Argon2id hash with these parameters, a random salt and a random digest:
    checking a password against it costs a full hash, and nothing matches it."""

    def b64(size: int) -> str:
        return base64.b64encode(secrets.token_bytes(size)).decode().rstrip("=")

    p = parameters
    return (
        f"$argon2id$v=19$m={p.memory_cost_kib},t={p.time_cost},p={p.parallelism}"
        f"${b64(16)}${b64(32)}"
    )


_production = Passwords()


def hash_password(password: str) -> str:
    """A salted Argon2id hash of ``password`` with the production parameters (blocking)."""
    return _production.hash_sync(password)
