"""The contract between the seed command and each service's ``seed.py``.

A service seed receives the session of its own unit of work and a shared
:class:`SeedContext`. It must be idempotent: it looks rows up by their natural key
(email, title, name, ...) and creates only what is missing. Seeds run in a fixed
order (auth first) so later services can read the user ids auth recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession

#: Well-known owner ids of the system wallets (treasury, reward pool, escrow).
SYSTEM_TREASURY_ID = uuid.UUID("00000000-0000-7000-8000-000000000001")
SYSTEM_REWARD_POOL_ID = uuid.UUID("00000000-0000-7000-8000-000000000002")
SYSTEM_ESCROW_ID = uuid.UUID("00000000-0000-7000-8000-000000000003")

#: Development seed accounts (email → role); their password is DEV_SEED_PASSWORD.
DEV_STUDENT_EMAIL = "student@azora.world"
DEV_EDUCATOR_EMAIL = "educator@azora.world"
DEV_EMPLOYER_EMAIL = "employer@azora.world"
DEV_ADMIN_EMAIL = "admin@azora.world"
DEV_SEED_PASSWORD = "Azora2025!"  # noqa: S105 - documented development-only credential


@dataclass
class SeedContext:
    """What seeds share across databases during one ``azora db seed`` run."""

    production: bool
    #: user ids by email, filled by the auth seed (empty in production).
    users: dict[str, uuid.UUID] = field(default_factory=dict)
    #: ids other services refer to, by a descriptive key (e.g. ``"course:python-intro"``).
    refs: dict[str, uuid.UUID] = field(default_factory=dict)
    #: lines to show the operator once (e.g. a generated admin password).
    notices: list[str] = field(default_factory=list)

    def user(self, email: str) -> uuid.UUID:
        """The id of a seeded user; raises ``KeyError`` when auth did not seed it."""
        return self.users[email]


SeedFunction = Callable[[AsyncSession, SeedContext], Awaitable[None]]
