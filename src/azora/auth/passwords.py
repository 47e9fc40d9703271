"""Password hashing with Argon2id.

Parameters: argon2-cffi's RFC 9106 "low memory" profile (t=3, m=64 MiB, p=4), above
OWASP's minimum for Argon2id (m=19 MiB, t=2, p=1).
"""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.profiles import RFC_9106_LOW_MEMORY

_hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)


def hash_password(password: str) -> str:
    """A salted Argon2id hash of ``password`` (the password itself is never stored)."""
    return _hasher.hash(password)
