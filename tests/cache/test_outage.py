"""Redis down or gone: reads go to the loader, the breaker opens once and closes again."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from tests.servers import PrivateRedis

from azora.cache import Cache, KeySpace
from azora.cache.backends import RedisBackend
from azora.cache.breaker import CircuitBreaker


async def _load() -> int:
    return 42


async def test_reads_succeed_while_redis_is_down_and_the_cache_resumes_by_itself(
    space: KeySpace, private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on the private port yet: every cache call fails fast.
    cache = Cache(
        RedisBackend(private_redis.url, timeout_ms=100),
        timeout_ms=100,
        breaker=CircuitBreaker("cache", threshold=3, cooldown=0.3),
    )
    try:
        with caplog.at_level(logging.WARNING, logger="azora.cache.breaker"):
            for _ in range(50):
                assert await cache.get_or_load(space.key(1), _load, ttl=60, schema=int) == 42
            await cache.invalidate(space.key(1))  # a write during the outage still succeeds
        assert cache.breaker.is_open
        assert cache.breaker.openings == 1
        opened = [r for r in caplog.records if "failing" in r.getMessage()]
        assert len(opened) == 1  # logged once, not once per read
        assert cache.metrics.errors <= 4  # the breaker stopped the calls
        private_redis.start()
        await asyncio.sleep(0.4)  # the cooldown
        assert await cache.get_or_load(space.key(1), _load, ttl=60, schema=int) == 42
        assert not cache.breaker.is_open
        assert await cache.get_or_load(space.key(1), _load, ttl=60, schema=int) == 42
        assert cache.metrics.hits == 1
    finally:
        await cache.aclose()


async def test_a_slow_redis_counts_as_down(space: KeySpace, private_redis: PrivateRedis) -> None:
    private_redis.start()
    cache = Cache(RedisBackend(private_redis.url, timeout_ms=50), timeout_ms=50)
    stalling = RedisBackend(private_redis.url, timeout_ms=5000)
    try:
        # Redis busy for a second: every call times out, reads still answer.
        stall = asyncio.create_task(stalling.client.execute_command("DEBUG", "SLEEP", "1"))
        await asyncio.sleep(0.05)
        started = asyncio.get_running_loop().time()
        for _ in range(10):
            assert await cache.get_or_load(space.key(2), _load, ttl=60, schema=int) == 42
        assert asyncio.get_running_loop().time() - started < 0.9
        assert cache.breaker.is_open
        await stall
    finally:
        await stalling.aclose()
        await cache.aclose()


def test_a_failed_probe_opens_the_breaker_again() -> None:
    breaker = CircuitBreaker("x", threshold=2, cooldown=0.01)
    breaker.failed(OSError("down"))
    assert breaker.allow()
    breaker.failed(OSError("down"))
    assert breaker.is_open
    assert not breaker.allow()
    time.sleep(0.02)
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # only one probe at a time
    breaker.failed(OSError("still down"))
    assert not breaker.allow()
    time.sleep(0.02)
    assert breaker.allow()
    breaker.succeeded()
    assert not breaker.is_open
    assert breaker.openings == 1
