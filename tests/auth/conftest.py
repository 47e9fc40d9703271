"""Fixtures of the auth tests: the service over migrated databases, a cache, a clock.

Every database test runs on SQLite with the in-process cache and on PostgreSQL with the
real Redis. Argon2 runs with cheap parameters here (the production ones are asserted in
``test_passwords.py``), and time is a :class:`FakeClock` the tests move forward instead
of sleeping.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from azora.auth.config import AuthConfig
from azora.auth.models import LoginAttempt
from azora.auth.passwords import Argon2Parameters, Passwords
from azora.auth.schemas import Registration
from azora.auth.service import AuthService
from azora.cache import Cache
from azora.db.engines import Databases
from azora.db.infra import AUDIT_TABLE, OUTBOX_TABLE
from azora.types import ServiceName
from tests.caches import paired_cache

PASSWORD = "a long enough passphrase"
IP = "203.0.113.7"
AGENT = "pytest-browser/1.0"
#: Cheap Argon2id for tests (the production parameters take ~100 ms per hash).
FAST = Argon2Parameters(time_cost=1, memory_cost_kib=1_024, parallelism=1)


class FakeClock:
    """A clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).replace(microsecond=0)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        """Move the time forward by ``delta`` (``seconds=``, ``minutes=``, ...)."""
        self.now += dt.timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    """The test's clock."""
    return FakeClock()


@pytest.fixture
async def cache(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    """The in-process cache with SQLite; the real Redis with PostgreSQL."""
    async with paired_cache(backend, request, ["azora:auth.*"]) as opened:
        yield opened


@pytest.fixture
def passwords() -> Passwords:
    """The cheap hasher the tests use."""
    return Passwords(FAST)


@pytest.fixture
def auth(databases: Databases, cache: Cache, clock: FakeClock, passwords: Passwords) -> AuthService:
    """The auth service over the test's databases, cache and clock."""
    config = AuthConfig.from_settings(databases.settings, clock=clock)
    return AuthService(databases, cache=cache, config=config, passwords=passwords)


def new_email() -> str:
    """An address no other test uses."""
    return f"user-{uuid.uuid4().hex[:10]}@example.org"


async def register(
    auth: AuthService, email: str | None = None, password: str = PASSWORD, **kwargs: Any
) -> Registration:
    """A new student account."""
    return await auth.register(email or new_email(), password, "Ama Mensah", **kwargs)


async def _rows(databases: Databases, table: Any, *where: Any) -> list[dict[str, Any]]:
    # As the owner: on PostgreSQL the application role would need a service scope.
    async with databases.owner_engine(ServiceName.AUTH).connect() as connection:
        result = await connection.execute(select(table).where(*where))
        return [dict(row._mapping) for row in result]


async def audit_rows(databases: Databases, action: str | None = None) -> list[dict[str, Any]]:
    """Rows of the auth audit log (of ``action`` only, if given), oldest first."""
    where = [] if action is None else [AUDIT_TABLE.c.action == action]
    rows = await _rows(databases, AUDIT_TABLE, *where)
    return sorted(rows, key=lambda row: (row["created_at"], row["id"]))


async def outbox_rows(databases: Databases, type_: str | None = None) -> list[dict[str, Any]]:
    """Rows of the auth outbox (of ``type_`` only, if given)."""
    where = [] if type_ is None else [OUTBOX_TABLE.c.type == type_]
    return await _rows(databases, OUTBOX_TABLE, *where)


async def attempts(databases: Databases) -> list[dict[str, Any]]:
    """Every recorded sign-in attempt, oldest first."""
    rows = await _rows(databases, LoginAttempt.__table__)
    return sorted(rows, key=lambda row: (row["created_at"], row["id"]))
