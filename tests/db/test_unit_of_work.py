"""The unit of work commits once on success, rolls back on error, and runs its hooks in order."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from azora.db.engines import Databases
from azora.db.uow import UnitOfWork
from azora.family.models import FamilyMember
from azora.types import ServiceName


def _member(name: str) -> FamilyMember:
    return FamilyMember(
        name=name, role="tester", traits=["patient"], background="b", relationships={}
    )


async def _count(databases: Databases) -> int:
    async with databases.owner_engine(ServiceName.FAMILY).connect() as connection:
        return int(await connection.scalar(select(func.count()).select_from(FamilyMember)) or 0)


async def test_leaving_the_block_commits(databases: Databases) -> None:
    async with UnitOfWork(databases, ServiceName.FAMILY) as uow:
        uow.session.add(_member("Ada"))
    assert uow.committed
    assert await _count(databases) == 1


async def test_an_exception_rolls_back_and_propagates(databases: Databases) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with UnitOfWork(databases, ServiceName.FAMILY) as uow:
            uow.session.add(_member("Ada"))
            await uow.session.flush()
            raise RuntimeError("boom")
    assert not uow.committed
    assert await _count(databases) == 0


async def test_hooks_run_inside_then_after_the_commit(databases: Databases) -> None:
    seen: list[str] = []

    async def inside(work: UnitOfWork) -> None:
        work.session.add(_member("Written-by-hook"))
        seen.append(f"before:{await _count(databases)}")

    async def after() -> None:
        seen.append(f"after:{await _count(databases)}")

    async with UnitOfWork(databases, ServiceName.FAMILY) as uow:
        uow.before_commit(inside)
        uow.after_commit(after)
        uow.session.add(_member("Ada"))
    # Inside the transaction another connection sees nothing yet; after it, both rows.
    assert seen == ["before:0", "after:2"]


async def test_after_commit_callbacks_are_dropped_on_rollback(databases: Databases) -> None:
    called = False

    async def after() -> None:
        nonlocal called
        called = True

    with pytest.raises(ValueError, match="nope"):
        async with UnitOfWork(databases, ServiceName.FAMILY) as uow:
            uow.after_commit(after)
            raise ValueError("nope")
    assert not called


async def test_a_failing_commit_rolls_back_everything(databases: Databases) -> None:
    async with UnitOfWork(databases, ServiceName.FAMILY) as uow:
        uow.session.add(_member("Ada"))
    with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
        async with UnitOfWork(databases, ServiceName.FAMILY) as uow:
            uow.session.add(_member("Grace"))
            uow.session.add(_member("Ada"))  # violates the unique name at flush/commit
    assert await _count(databases) == 1


async def test_session_outside_the_block_is_an_error(databases: Databases) -> None:
    uow = UnitOfWork(databases, ServiceName.FAMILY)
    with pytest.raises(RuntimeError, match="outside"):
        _ = uow.session
