"""The facade with Redis down, and the reads that must never come from the cache."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from azora.cache import Cache
from azora.cache.backends import MemoryBackend, RedisBackend
from azora.cache.breaker import CircuitBreaker
from azora.db.engines import Databases
from azora.education.errors import AlreadyEnrolled
from azora.errors import InvalidInput
from azora.integration import Integration
from azora.mint.errors import InsufficientFunds
from azora.types import ServiceName
from tests.servers import PrivateRedis

from .conftest import PASSWORD, fund_reward_pool, new_course, new_student, outbox


async def test_every_operation_succeeds_while_redis_is_down_and_the_cache_resumes(
    databases: Databases, private_redis: PrivateRedis
) -> None:
    # Nothing listens on the private port until the server is started below.
    cache = Cache(
        RedisBackend(private_redis.url, timeout_ms=100),
        timeout_ms=100,
        breaker=CircuitBreaker("cache", threshold=3, cooldown=0.3),
    )
    azora = Integration(databases, cache)
    try:
        user = await azora.create_user(email="down@example.org", password=PASSWORD, name="Ama")
        assert (await azora.get_user(user.id)).id == user.id
        assert (await azora.get_user_with_cache(user.id)).name == "Ama"
        assert (await azora.rename_user(user.id, "Ama Owusu")).name == "Ama Owusu"
        assert (await azora.get_user_with_cache(user.id)).name == "Ama Owusu"
        course_id = await new_course(databases)
        assert len((await azora.get_course(course_id)).modules) == 3
        enrollment = await azora.enroll_course(user.id, course_id)
        assert (await azora.update_enrollment_progress(enrollment.id, 100, user.id)).progress == 100
        await fund_reward_pool(azora)
        await azora.update_balance(user.id, "AZR", "2", reason="r", idempotency_key="k")
        assert (await azora.get_wallet(user.id, "AZR")).balance == 2
        assert cache.breaker.is_open
        assert cache.breaker.openings == 1

        private_redis.start()
        await asyncio.sleep(0.4)  # the breaker's cooldown
        await azora.rename_user(user.id, "Ama Mensah")
        assert (await azora.get_user_with_cache(user.id)).name == "Ama Mensah"
        assert not cache.breaker.is_open
        assert (await azora.get_user_with_cache(user.id)).name == "Ama Mensah"
        assert cache.metrics.hits >= 1  # served by Redis again
    finally:
        await cache.aclose()


class _RecordingBackend(MemoryBackend):
    """The in-process backend, remembering every key read or invalidated (a fake for pure logic)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def get(self, key: str) -> bytes | None:
        self.calls.append(key)
        return await super().get(key)

    async def invalidate(self, keys: Sequence[str]) -> None:
        self.calls.extend(f"invalidate:{key}" for key in keys)
        await super().invalidate(keys)


async def test_money_is_never_read_from_the_cache(databases: Databases) -> None:
    backend = _RecordingBackend()
    azora = Integration(databases, Cache(backend))
    user_id, friend_id = await new_student(azora), await new_student(azora)
    await fund_reward_pool(azora, "5")
    backend.calls.clear()

    with pytest.raises(InsufficientFunds):  # the balance check is the database's
        await azora.update_balance(user_id, "AZR", "6", reason="r", idempotency_key="k1")
    await azora.update_balance(user_id, "AZR", "5", reason="r", idempotency_key="k2")
    with pytest.raises(InsufficientFunds):  # a debit checks the balance in the database
        await azora.mint.transfer(user_id, friend_id, "AZR", "5.00000001", "k3")
    await azora.mint.transfer(user_id, friend_id, "AZR", "2", "k4")
    assert (await azora.get_wallet(user_id, "AZR")).balance == 3
    assert (await azora.get_wallet(friend_id, "AZR")).balance == 2
    assert backend.calls == []


async def test_a_refused_change_publishes_and_invalidates_nothing(databases: Databases) -> None:
    backend = _RecordingBackend()
    azora = Integration(databases, Cache(backend))
    user_id = await new_student(azora)
    course_id = await new_course(databases)
    await azora.enroll_course(user_id, course_id)
    backend.calls.clear()

    with pytest.raises(AlreadyEnrolled):
        await azora.enroll_course(user_id, course_id)
    with pytest.raises(InvalidInput):
        await azora.rename_user(user_id, "")
    assert backend.calls == []
    assert len(await outbox(databases, ServiceName.EDUCATION, "education.course.enrolled")) == 1
