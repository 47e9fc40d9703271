"""get_or_load: hits, misses, "not found", expiry, single flight, leases, key scoping."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
from pydantic import BaseModel, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError

from azora.cache import Cache, KeySpace, open_cache
from azora.cache.backends import MemoryBackend
from azora.errors import ConfigurationError
from azora.settings import Settings


class Profile(BaseModel):
    name: str
    level: int


class Loads:
    """A loader that counts its calls and returns what the "database" holds now."""

    def __init__(self, value: Profile | None, delay: float = 0.0) -> None:
        self.value = value
        self.delay = delay
        self.calls = 0

    async def __call__(self) -> Profile | None:
        self.calls += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        return self.value


async def test_a_miss_loads_and_stores_then_hits(cache: Cache, space: KeySpace) -> None:
    loads = Loads(Profile(name="Ada", level=3))
    for _ in range(3):
        got = await cache.get_or_load(space.key(1), loads, ttl=60, schema=Profile)
        assert got == Profile(name="Ada", level=3)
    assert loads.calls == 1
    assert (cache.metrics.hits, cache.metrics.misses, cache.metrics.loads) == (2, 1, 1)
    assert cache.metrics.hit_ratio == pytest.approx(2 / 3)


async def test_not_found_is_cached_for_the_short_ttl(cache: Cache, space: KeySpace) -> None:
    cache._negative_ttl = 0.2
    loads = Loads(None)
    assert await cache.get_or_load(space.key("ghost"), loads, ttl=60, schema=Profile) is None
    assert await cache.get_or_load(space.key("ghost"), loads, ttl=60, schema=Profile) is None
    assert loads.calls == 1
    await asyncio.sleep(0.3)
    loads.value = Profile(name="Now here", level=1)
    got = await cache.get_or_load(space.key("ghost"), loads, ttl=60, schema=Profile)
    assert got == Profile(name="Now here", level=1)
    assert loads.calls == 2


async def test_an_entry_expires_after_its_ttl(cache: Cache, space: KeySpace) -> None:
    loads = Loads(Profile(name="Old", level=1))
    await cache.get_or_load(space.key(2), loads, ttl=0.2, schema=Profile)
    loads.value = Profile(name="New", level=2)
    await asyncio.sleep(0.3)  # the TTL plus its 10% jitter
    assert await cache.get_or_load(space.key(2), loads, ttl=60, schema=Profile) == loads.value
    assert loads.calls == 2


async def test_an_invalidated_entry_is_loaded_again(cache: Cache, space: KeySpace) -> None:
    loads = Loads(Profile(name="Before", level=1))
    await cache.get_or_load(space.key(3), loads, ttl=60, schema=Profile)
    loads.value = Profile(name="After", level=2)
    await cache.invalidate(space.key(3))
    assert await cache.get_or_load(space.key(3), loads, ttl=60, schema=Profile) == loads.value


async def test_a_thousand_concurrent_misses_load_once(cache: Cache, space: KeySpace) -> None:
    loads = Loads(Profile(name="Hot", level=9), delay=0.05)
    results = await asyncio.gather(
        *(cache.get_or_load(space.key("hot"), loads, ttl=60, schema=Profile) for _ in range(1000))
    )
    assert loads.calls == 1
    assert all(result == Profile(name="Hot", level=9) for result in results)


async def test_a_failed_load_reaches_every_waiter_and_caches_nothing(
    cache: Cache, space: KeySpace
) -> None:
    calls = 0

    async def failing() -> Profile:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.02)
        raise LookupError("database said no")

    outcomes = await asyncio.gather(
        *(cache.get_or_load(space.key(4), failing, ttl=60, schema=Profile) for _ in range(20)),
        return_exceptions=True,
    )
    assert calls == 1
    assert all(isinstance(outcome, LookupError) for outcome in outcomes)
    loads = Loads(Profile(name="Recovered", level=1))
    assert await cache.get_or_load(space.key(4), loads, ttl=60, schema=Profile) == loads.value


async def test_a_load_that_began_before_an_invalidation_is_not_stored(
    cache: Cache, space: KeySpace
) -> None:
    database = {"name": "old"}
    read_done, write_done = asyncio.Event(), asyncio.Event()

    async def slow_reader() -> Profile:
        value = Profile(name=database["name"], level=1)  # reads the old row...
        read_done.set()
        await write_done.wait()  # ...and is still busy when the write commits
        return value

    reader = asyncio.create_task(
        cache.get_or_load(space.key(5), slow_reader, ttl=60, schema=Profile)
    )
    await read_done.wait()
    database["name"] = "new"  # the write commits...
    await cache.invalidate(space.key(5))  # ...then invalidates
    write_done.set()
    assert (await reader).name == "old"  # the reader itself saw the old row
    assert cache.metrics.refused_fills == 1  # but did not store it
    fresh = Loads(Profile(name=database["name"], level=1))
    assert (await cache.get_or_load(space.key(5), fresh, ttl=60, schema=Profile)).name == "new"


async def test_two_caches_on_one_redis_load_a_cold_key_once(
    redis_url: str, space: KeySpace
) -> None:
    """Two processes' caches (nothing shared but Redis): the lease lets one load."""
    first, second = open_cache(_redis(redis_url)), open_cache(_redis(redis_url))
    try:
        loads = Loads(Profile(name="Shared", level=5), delay=0.05)
        results = await asyncio.gather(
            *(
                cache.get_or_load(space.key("shared"), loads, ttl=60, schema=Profile)
                for cache in (first, second)
                for _ in range(500)
            )
        )
        assert loads.calls == 1
        assert all(result == Profile(name="Shared", level=5) for result in results)
        assert first.metrics.waits + second.metrics.waits == 1
    finally:
        await first.invalidate(space.key("shared"))
        await first.aclose()
        await second.aclose()


def _redis(url: str) -> Settings:
    return Settings(cache_url=url, cache_timeout_ms=500)


class _FlakyBackend(MemoryBackend):
    """In-memory, but the next ``invalidate`` calls fail as an unreachable Redis would."""

    def __init__(self) -> None:
        super().__init__()
        self.failing_invalidations = 0

    async def invalidate(self, keys: Sequence[str]) -> None:
        if self.failing_invalidations:
            self.failing_invalidations -= 1
            raise RedisConnectionError("connection refused")
        await super().invalidate(keys)


async def test_an_undelivered_invalidation_bypasses_the_entry_until_delivered(
    space: KeySpace,
) -> None:
    backend = _FlakyBackend()
    cache = Cache(backend)
    loads = Loads(Profile(name="v1", level=1))
    await cache.get_or_load(space.key(6), loads, ttl=60, schema=Profile)
    loads.value = Profile(name="v2", level=2)
    backend.failing_invalidations = 2  # the invalidation and the next delivery attempt fail
    await cache.invalidate(space.key(6))  # does not raise
    # The stale v1 is still stored, but it is never served while its invalidation waits.
    assert (await cache.get_or_load(space.key(6), loads, ttl=60, schema=Profile)).name == "v2"
    assert cache.metrics.bypassed == 1
    # The next read delivers the invalidation first, then caches normally again.
    assert (await cache.get_or_load(space.key(6), loads, ttl=60, schema=Profile)).name == "v2"
    assert await backend.get(str(space.key(6))) is not None
    assert not cache._pending_invalidations


def test_keys_carry_their_schema_version_and_scope_users_apart() -> None:
    v1, v2 = KeySpace("auth.user", version=1), KeySpace("auth.user", version=2)
    assert str(v1.key(7)) == "azora:auth.user:v1:7"
    assert v1.key(7) != v2.key(7)
    assert str(v1.user_key("alice", "wallet")) == "azora:auth.user:v1:user:alice:wallet"
    assert v1.user_key("alice", "wallet") != v1.user_key("bob", "wallet")


def test_the_cache_url_chooses_the_backend() -> None:
    assert isinstance(open_cache(Settings()).backend, MemoryBackend)
    with pytest.raises(ValidationError, match="unsupported scheme 'memcached'"):
        Settings(cache_url="memcached://localhost")  # refused when the settings are read
    # open_cache's own guard, for settings made without validation
    with pytest.raises(ConfigurationError, match="unsupported scheme"):
        open_cache(Settings.model_construct(cache_url="memcached://localhost"))
