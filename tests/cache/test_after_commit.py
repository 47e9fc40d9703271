"""Invalidation rides on the unit of work: after a commit, never after a rollback."""

from __future__ import annotations

import pytest

from azora.cache import Cache, KeySpace
from azora.db.engines import Databases
from azora.db.uow import UnitOfWork
from azora.types import ServiceName


async def _cached_value(cache: Cache, space: KeySpace) -> bytes | None:
    return await cache.backend.get(str(space.key("profile")))


async def _fill(cache: Cache, space: KeySpace) -> None:
    async def load() -> str:
        return "stored"

    await cache.get_or_load(space.key("profile"), load, ttl=60, schema=str)


async def test_a_rolled_back_write_invalidates_nothing(
    cache: Cache, space: KeySpace, databases: Databases
) -> None:
    await _fill(cache, space)
    with pytest.raises(RuntimeError, match="refused"):
        async with UnitOfWork(databases, ServiceName.AUTH) as uow:
            uow.after_commit(lambda: cache.invalidate(space.key("profile")))
            raise RuntimeError("refused")
    assert await _cached_value(cache, space) is not None
    async with UnitOfWork(databases, ServiceName.AUTH) as uow:
        uow.after_commit(lambda: cache.invalidate(space.key("profile")))
    assert await _cached_value(cache, space) is None


async def test_the_unit_of_work_invalidates_its_keys_after_the_commit_only(
    cache: Cache, space: KeySpace, databases: Databases
) -> None:
    await _fill(cache, space)
    with pytest.raises(RuntimeError, match="refused"):
        async with UnitOfWork(databases, ServiceName.AUTH, cache=cache) as uow:
            uow.invalidate(space.key("profile"))
            raise RuntimeError("refused")
    assert await _cached_value(cache, space) is not None
    seen_by_callback: list[bytes | None] = []

    async def after() -> None:
        seen_by_callback.append(await _cached_value(cache, space))

    async with UnitOfWork(databases, ServiceName.AUTH, cache=cache) as uow:
        uow.invalidate(space.key("profile"))
        uow.after_commit(after)
        assert await _cached_value(cache, space) is not None  # not before the commit
    assert await _cached_value(cache, space) is None
    assert seen_by_callback == [None]  # invalidated before the after-commit callbacks
