"""Fixtures of the facade tests: the embedded pairing (SQLite + in-process cache) and
the server pairing (PostgreSQL + the real Redis)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from azora.cache import Cache
from azora.db.engines import Databases
from azora.db.infra import OUTBOX_TABLE
from azora.db.seeding import SYSTEM_REWARD_POOL_ID
from azora.db.uow import UnitOfWork
from azora.education.models import Course, Module
from azora.integration import Integration
from azora.types import Currency, ServiceName
from tests.caches import paired_cache

PASSWORD = "correct horse battery"


@pytest.fixture
async def cache(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    """The in-process cache with SQLite; the real Redis with PostgreSQL."""
    forget = ["azora:auth.user:*", "azora:education.course:*"]
    async with paired_cache(backend, request, forget) as opened:
        yield opened


@pytest.fixture
def azora(databases: Databases, cache: Cache) -> Integration:
    """The facade over the test's migrated databases and its cache."""
    return Integration(databases, cache)


async def new_student(azora: Integration, name: str = "Ama Mensah") -> uuid.UUID:
    """A registered student (with student record and AZR wallet)."""
    email = f"{uuid.uuid4().hex[:10]}@example.org"
    user = await azora.create_user(email=email, password=PASSWORD, name=name)
    return user.id


async def new_course(
    databases: Databases, *, modules: int = 3, published: bool = True
) -> uuid.UUID:
    """A course with ``modules`` modules, written straight to the education database."""
    async with UnitOfWork(databases, ServiceName.EDUCATION, as_service=True) as uow:
        course = Course(
            title="Data layers",
            instructor_id=uuid.uuid4(),
            category="engineering",
            published=published,
            price=Decimal("0"),
        )
        uow.session.add(course)
        await uow.session.flush()
        for position in range(modules, 0, -1):  # inserted out of order on purpose
            uow.session.add(Module(course_id=course.id, title=f"M{position}", position=position))
    return course.id


async def fund_reward_pool(azora: Integration, amount: str = "1000") -> None:
    """Issue ``amount`` AZR into the reward pool."""
    await azora.mint.mint(Currency.AZR, amount, SYSTEM_REWARD_POOL_ID)


async def outbox(databases: Databases, service: ServiceName, type_: str) -> list[dict[str, Any]]:
    """The payloads of ``type_`` events in ``service``'s outbox, oldest first."""
    async with databases.owner_engine(service).connect() as connection:
        rows = await connection.execute(
            select(OUTBOX_TABLE.c.payload)
            .where(OUTBOX_TABLE.c.type == type_)
            .order_by(OUTBOX_TABLE.c.id)
        )
        return [dict(row[0]) for row in rows]


async def count(databases: Databases, service: ServiceName, model: Any) -> int:
    """Rows of ``model`` in ``service``'s database."""
    async with databases.owner_engine(service).connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(model))).scalar_one())
