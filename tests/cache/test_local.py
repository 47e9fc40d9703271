"""The in-process layer in front of Redis: invalidated over pub/sub, never stale-set.

Two ``Cache`` objects on one Redis stand for two processes: they share nothing else.
The layer's TTL is 60 s in these tests unless said otherwise, so an entry can only
leave it because an invalidation message was heard (or the subscription was lost).
Each test publishes on a channel of its own: other runs on the shared Redis publish
their invalidations too, and pub/sub channels are not per database.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence

import pytest
from tests.cache.test_races import KEYS, _seed, _stale_keys, hammer
from tests.servers import PrivateRedis

from azora.cache import Cache, KeySpace, LocalLayer, open_cache
from azora.cache.backends import CacheBackend, RedisBackend
from azora.cache.breaker import CircuitBreaker
from azora.cache.local import Ticket
from azora.settings import Settings

LONG_TTL_MS = 60_000


def _layered(url: str, channel: str, backend: CacheBackend | None = None) -> Cache:
    """A cache on the Redis at ``url`` with a local layer whose TTL is 60 s."""
    return Cache(
        backend or RedisBackend(url, timeout_ms=500, channel=channel),
        timeout_ms=500,
        local=LocalLayer(url, max_entries=1_000, ttl_ms=LONG_TTL_MS, channel=channel),
    )


def _layer(cache: Cache) -> LocalLayer:
    assert cache.local is not None
    return cache.local


async def _listening(*caches: Cache) -> None:
    for cache in caches:
        await cache.start()
        assert await _layer(cache).wait_listening(5), "the subscription did not come up"


async def _until(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.002)


@pytest.fixture
def channel(space: KeySpace) -> str:
    """The invalidation channel of this test alone."""
    return f"azora:cache:invalidations:{space.namespace}"


@pytest.fixture
async def caches(redis_url: str, space: KeySpace, channel: str) -> AsyncIterator[Sequence[Cache]]:
    """Two processes' caches with local layers on the shared Redis; keys deleted after."""
    pair = (_layered(redis_url, channel), _layered(redis_url, channel))
    try:
        await _listening(*pair)
        yield pair
    finally:
        client = RedisBackend(redis_url).client
        keys = [key async for key in client.scan_iter(f"azora:{space.namespace}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose(close_connection_pool=True)
        for cache in pair:
            await cache.aclose()


async def test_an_invalidation_in_one_process_reaches_the_other_within_milliseconds(
    caches: Sequence[Cache], space: KeySpace
) -> None:
    reader, writer = caches
    database = {"name": "v1"}

    async def load() -> str:
        return database["name"]

    key = space.key("profile")
    for _ in range(3):  # a miss (fills Redis and the layer), then two local hits
        assert await reader.get_or_load(key, load, ttl=60, schema=str) == "v1"
    assert reader.metrics.local_hits == 2
    assert reader.metrics.hits == 2
    database["name"] = "v2"  # the write commits...
    started = time.perf_counter()
    await writer.invalidate(key)  # ...then invalidates, in the other process
    while await reader.get_or_load(key, load, ttl=60, schema=str) != "v2":
        # A bound far below the 60 s TTL (how fast it arrives is measured, not asserted).
        assert time.perf_counter() - started < 2.0, "the reader still serves v1 after 2 s"
        await asyncio.sleep(0.001)
    elapsed_ms = (time.perf_counter() - started) * 1000
    print(f"the other process served the new value after {elapsed_ms:.1f} ms")
    assert _layer(reader).heard == 1  # dropped by the message, not by the 60 s TTL


class PausingBackend:
    """The real Redis backend, but ``get`` can hold what it read until released."""

    def __init__(self, inner: RedisBackend) -> None:
        self.inner = inner
        self.holding = False
        self.fetched = asyncio.Event()
        self.release = asyncio.Event()

    async def get(self, key: str) -> bytes | None:
        raw = await self.inner.get(key)
        if self.holding:
            self.fetched.set()
            await self.release.wait()
        return raw

    async def acquire_lease(self, key: str, token: str, ttl_ms: int) -> bool:
        return await self.inner.acquire_lease(key, token, ttl_ms)

    async def fill(self, key: str, token: str, value: bytes, ttl_ms: int) -> bool:
        return await self.inner.fill(key, token, value, ttl_ms)

    async def invalidate(self, keys: Sequence[str]) -> None:
        await self.inner.invalidate(keys)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.mark.parametrize("writer_is", ["another process", "the same process"])
async def test_a_redis_read_older_than_an_invalidation_is_not_kept_locally(
    writer_is: str, redis_url: str, caches: Sequence[Cache], space: KeySpace, channel: str
) -> None:
    backend = PausingBackend(RedisBackend(redis_url, timeout_ms=500, channel=channel))
    reader = _layered(redis_url, channel, backend)
    writer = caches[0] if writer_is == "another process" else reader
    database = {"name": "old"}

    async def load() -> str:
        return database["name"]

    key = space.key("profile")
    try:
        await _listening(reader)
        assert await caches[1].get_or_load(key, load, ttl=60, schema=str) == "old"  # in Redis
        backend.holding = True
        read = asyncio.create_task(reader.get_or_load(key, load, ttl=60, schema=str))
        await backend.fetched.wait()  # the reader has "old" from Redis in hand...
        database["name"] = "new"  # ...when the write commits
        await writer.invalidate(key)  # the same process drops the key at once
        if writer is not reader:  # another process's invalidation: once its message is in
            await _until(lambda: _layer(reader).heard == 1, 1.0)
        backend.release.set()  # the Redis answer arrives after the invalidation
        assert await read == "old"  # the read itself began before the write
        assert _layer(reader).get(str(key)) is None  # but did not keep the old value
        assert _layer(reader).refused_puts == 1
        await _until(lambda: _layer(reader).heard == 1, 1.0)  # (our own message, too)
        backend.holding = False
        assert await reader.get_or_load(key, load, ttl=60, schema=str) == "new"
        assert _layer(reader).get(str(key)) is not None  # a fresh value is kept again
        assert await reader.get_or_load(key, load, ttl=60, schema=str) == "new"
        assert reader.metrics.local_hits == 1
    finally:
        await reader.aclose()


async def _forty_two() -> int:
    return 42


async def test_losing_the_subscription_empties_the_layer_until_it_is_back(
    space: KeySpace, private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    private_redis.start()
    cache = Cache(
        RedisBackend(private_redis.url, timeout_ms=200),
        timeout_ms=200,
        breaker=CircuitBreaker("cache", threshold=3, cooldown=0.2),
        local=LocalLayer(private_redis.url, ttl_ms=LONG_TTL_MS, heartbeat_s=0.2, max_backoff_s=0.2),
    )
    layer, key = _layer(cache), space.key(1)
    try:
        with caplog.at_level(logging.WARNING, logger="azora.cache.local"):
            await _listening(cache)
            for _ in range(3):
                assert await cache.get_or_load(key, _forty_two, ttl=60, schema=int) == 42
            assert (cache.metrics.local_hits, len(layer)) == (2, 1)

            await asyncio.to_thread(private_redis.stop)
            await _until(lambda: not layer.listening, 2.0)
            assert len(layer) == 0  # whatever it held may miss an invalidation now
            for _ in range(20):  # reads still answer, from the loader
                assert await cache.get_or_load(key, _forty_two, ttl=60, schema=int) == 42
            assert (cache.metrics.local_hits, len(layer)) == (2, 0)  # and the layer stays off

            await asyncio.to_thread(private_redis.start)
            assert await layer.wait_listening(5), "the subscription did not come back"
            await asyncio.sleep(0.25)  # the data connection's breaker cooldown
            for _ in range(3):  # the new server is empty: a miss, then local hits again
                assert await cache.get_or_load(key, _forty_two, ttl=60, schema=int) == 42
            assert (cache.metrics.local_hits, len(layer)) == (4, 1)
        messages = [record.getMessage() for record in caplog.records]
        assert len([m for m in messages if "unavailable" in m]) == 1  # once per outage
        assert len([m for m in messages if "heard again" in m]) == 1
    finally:
        await cache.aclose()


async def test_a_layer_whose_redis_is_down_stays_off_and_logs_once(
    space: KeySpace, private_redis: PrivateRedis, caplog: pytest.LogCaptureFixture
) -> None:
    # Nothing listens on the private port: every subscription attempt fails at once.
    cache = Cache(
        RedisBackend(private_redis.url, timeout_ms=100),
        timeout_ms=100,
        local=LocalLayer(private_redis.url, max_backoff_s=0.02),
    )
    try:
        with caplog.at_level(logging.WARNING, logger="azora.cache.local"):
            await cache.start()
            for _ in range(20):
                assert await cache.get_or_load(space.key(1), _forty_two, ttl=60, schema=int) == 42
                await asyncio.sleep(0.01)
        assert not _layer(cache).listening
        assert (cache.metrics.local_hits, len(_layer(cache))) == (0, 0)
        failures = [r for r in caplog.records if "unavailable" in r.getMessage()]
        assert len(failures) == 1
    finally:
        await cache.aclose()


class LateReplies(RedisBackend):
    """Redis, but a reply to ``get`` sometimes comes back a little late (a busy loop)."""

    def __init__(self, url: str, channel: str, seed: int) -> None:
        super().__init__(url, timeout_ms=500, channel=channel)
        self._random = random.Random(seed)

    async def get(self, key: str) -> bytes | None:
        raw = await super().get(key)
        await asyncio.sleep(self._random.choice((0.0, 0.0, 0.005, 0.01, 0.02, 0.03)))
        return raw


class UnguardedLayer(LocalLayer):
    """The textbook in-process layer: keeps whatever a reader offers (no ticket check)."""

    def put(self, key: str, value: bytes, ticket: Ticket | None, ttl_ms: int | None = None) -> bool:
        return super().put(key, value, self.ticket(key), ttl_ms)


async def _race(
    layer: type[LocalLayer], redis_url: str, space: KeySpace, channel: str, seconds: float
) -> list[tuple[int, int]]:
    """Two processes' layered caches in the race of test_races; the stale local entries.

    Stale means: held after quiescence (the last messages had time to arrive; the
    layer's TTL is 60 s, so nothing else drops an entry) and different from the
    "database". Also checks that Redis itself holds nothing stale.
    """
    seed = _seed()
    caches = [
        Cache(
            LateReplies(redis_url, channel, seed + n),
            timeout_ms=500,
            local=layer(redis_url, max_entries=1_000, ttl_ms=LONG_TTL_MS, channel=channel),
        )
        for n in range(2)
    ]
    try:
        await _listening(*caches)
        database = await hammer(caches[0], space, seed, seconds, more=caches[1:], yielding=True)

        def stale_local() -> list[tuple[int, int]]:
            stale = []
            for index, cache in enumerate(caches):
                for number, value in database.items():
                    raw = _layer(cache).get(str(space.key(number)))
                    if raw is not None and raw[:1] == b"\x01" and int(raw[1:]) != value:
                        stale.append((index, number))
            return stale

        for _ in range(100):  # up to 0.5 s for the last messages
            if not (stale := stale_local()):
                break
            await asyncio.sleep(0.005)
        print(
            f"{layer.__name__}: stale {stale}, refused {[_layer(c).refused_puts for c in caches]}"
        )
        assert await _stale_keys(caches[0], space, database) == []
        if not stale:  # then every read answers what the database holds
            for cache in caches:
                for number in range(KEYS):

                    async def load(number: int = number) -> int:
                        return database[number]

                    got = await cache.get_or_load(space.key(number), load, ttl=60, schema=int)
                    assert got == database[number]
            assert all(cache.metrics.local_hits > 0 for cache in caches)
        return stale
    finally:
        await caches[0].backend.invalidate([str(space.key(n)) for n in range(KEYS)])
        for cache in caches:
            await cache.aclose()


async def test_no_local_entry_is_stale_after_a_race_between_two_processes(
    redis_url: str, space: KeySpace, channel: str
) -> None:
    stale = await _race(LocalLayer, redis_url, space, channel, 2.0)
    assert stale == [], f"stale local entries (cache, key): {stale}"


async def test_a_layer_without_the_ticket_check_goes_stale_in_the_same_race(
    redis_url: str, space: KeySpace, channel: str
) -> None:
    for _ in range(3):  # a stale entry must outlive the last write of its key: rarely none
        if stale := await _race(UnguardedLayer, redis_url, space, channel, 1.0):
            break
    assert stale, "a layer that keeps any Redis read should have kept one older than a write"


async def test_the_layer_is_bounded_and_refuses_puts_older_than_a_cleared_table() -> None:
    layer = LocalLayer("redis://127.0.0.1:1/0", max_entries=2, ttl_ms=LONG_TTL_MS)
    try:
        assert layer.ticket("a") is None  # not subscribed: nothing may fill the layer
        layer._established()  # as when the subscription is confirmed
        for name in ("a", "b", "c"):
            assert layer.put(name, b"\x011", layer.ticket(name))
        assert (len(layer), layer.get("a")) == (2, None)  # the least recently used went
        early = layer.ticket("z")
        layer.drop(f"k{n}" for n in range(1_100))  # past the generation table's bound
        assert not layer.put("z", b"\x011", early)  # "z" might have been among them
        assert layer.put("z", b"\x011", layer.ticket("z"))
        short = layer.ticket("n")
        assert layer.put("n", b"\x00", short, ttl_ms=1)
        await asyncio.sleep(0.01)
        assert layer.get("n") is None  # a shorter TTL than the layer's is kept
    finally:
        await layer.aclose()


async def test_open_cache_adds_the_layer_only_to_redis_and_only_when_asked(
    redis_url: str,
) -> None:
    assert open_cache(Settings(cache_local_max_entries=100)).local is None  # memory://
    plain = open_cache(Settings(cache_url=redis_url))
    layered = open_cache(Settings(cache_url=redis_url, cache_local_max_entries=100))
    try:
        assert plain.local is None
        assert isinstance(layered.local, LocalLayer)
    finally:
        await plain.aclose()
        await layered.aclose()
