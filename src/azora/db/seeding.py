"""The contract between the seed command and each service's ``seed.py``.

A service seed receives the session of its own unit of work and a shared
:class:`SeedContext`. It must be idempotent: it looks rows up by their natural key
(email, title, name, ...) and creates only what is missing. Seeds run in a fixed
order (auth first) so later services can read the user ids auth recorded.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import func, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from azora.db.engines import Databases
from azora.db.errors import OperationRefused
from azora.db.lifecycle import explained, require_head
from azora.db.migrate import MigrationSource
from azora.db.uow import UnitOfWork
from azora.types import Environment

#: Well-known owner ids of the system wallets (treasury, reward pool, escrow).
SYSTEM_TREASURY_ID = uuid.UUID("00000000-0000-7000-8000-000000000001")
SYSTEM_REWARD_POOL_ID = uuid.UUID("00000000-0000-7000-8000-000000000002")
SYSTEM_ESCROW_ID = uuid.UUID("00000000-0000-7000-8000-000000000003")

#: Development seed accounts (email → role); their password is DEV_SEED_PASSWORD.
DEV_STUDENT_EMAIL = "student@azora.world"
DEV_EDUCATOR_EMAIL = "educator@azora.world"
DEV_EMPLOYER_EMAIL = "employer@azora.world"
DEV_ADMIN_EMAIL = "admin@azora.world"
DEV_SEED_PASSWORD = "Azora2025!"


@dataclass
class SeedContext:
    """What seeds share across databases during one ``azora db seed`` run."""

    production: bool
    #: password for the studio admin account; generated (and shown once) when None.
    admin_password: str | None = None
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


@dataclass(frozen=True)
class SeedReport:
    """Row counts of one database before and after its seed ran."""

    service: str
    rows_before: int
    rows_after: int

    @property
    def created(self) -> int:
        """Rows the seed added."""
        return self.rows_after - self.rows_before


async def count_rows(databases: Databases, source: MigrationSource) -> int:
    """Rows in all of the service's model tables together."""
    tables = list(source.metadata.sorted_tables)
    counts = union_all(*(select(func.count()).select_from(t) for t in tables)).subquery()
    async with databases.owner_engine(source.service).connect() as connection:
        total = await connection.scalar(select(func.sum(counts.c[0])))
    return int(total or 0)


async def run_seeds(
    databases: Databases,
    plan: Sequence[tuple[MigrationSource, SeedFunction]],
    *,
    production: bool,
    admin_password: str | None = None,
    on_done: Callable[[SeedReport], None] | None = None,
) -> tuple[list[SeedReport], SeedContext]:
    """Run each service's seed in its own unit of work, in the order given.

    Every database is checked to be at head before anything is written; ``on_done``
    hears of each database as its seed commits. A seed that
    fails rolls its own database back; databases seeded before it keep their rows, and
    since seeds are idempotent, running again completes the set.

    The development set (``production=False``) holds accounts whose passwords are
    published; it is refused whenever the settings say ``AZORA_ENV=production``,
    whichever command asks for it.

    Raises:
        OperationRefused: the development set was asked for in production.
        DatabaseMissing, DatabaseNotMigrated: a database is not set up.
        DatabaseError: a database failed while seeding.
    """
    if not production and databases.settings.env is Environment.PRODUCTION:
        raise OperationRefused(
            "refusing to load the development seed when AZORA_ENV=production: its accounts"
            " have published passwords",
            hint="production loads only the production set (`azora db seed --prod`)",
        )
    for source, _ in plan:
        await require_head(databases, source)
    ctx = SeedContext(production=production, admin_password=admin_password)
    reports = []
    for source, seed in plan:
        async with explained(databases, source):
            before = await count_rows(databases, source)
            async with UnitOfWork(databases, source.service, as_service=True) as uow:
                await seed(uow.session, ctx)
            after = await count_rows(databases, source)
        report = SeedReport(source.service, before, after)
        reports.append(report)
        if on_done is not None:
            on_done(report)
    return reports, ctx
