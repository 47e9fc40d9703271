"""Single-row reads that bypass the ORM: the same rows as SQLAlchemy, on both backends."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import bindparam, select

from azora.auth.models import Role, User
from azora.db.engines import Databases
from azora.db.reads import RowQuery
from azora.db.uow import UnitOfWork
from azora.types import ServiceName

BY_EMAIL = RowQuery(
    select(User.id, User.role, User.created_at).where(
        User.email == bindparam("email"), User.is_active == bindparam("active")
    )
)


async def test_a_row_query_returns_the_row_or_none(databases: Databases) -> None:
    async with UnitOfWork(databases, ServiceName.AUTH) as uow:
        user = User(email="r@example.org", name="R", role=Role.EDUCATOR, password_hash="x")
        uow.session.add(user)

    for _ in range(2):  # the second call runs the statement compiled by the first
        row = await BY_EMAIL.fetch(databases, ServiceName.AUTH, email="r@example.org", active=True)
        assert row is not None
        assert uuid.UUID(str(row["id"])) == user.id
        assert str(row["role"]) == "educator"
        assert row["created_at"].replace(tzinfo=None) == user.created_at.replace(tzinfo=None)
    assert (
        await BY_EMAIL.fetch(databases, ServiceName.AUTH, email="r@example.org", active=False)
        is None
    )
    with pytest.raises(KeyError):
        await BY_EMAIL.fetch(databases, ServiceName.AUTH, email="r@example.org")
