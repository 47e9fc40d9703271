"""The cache's counters as the Prometheus endpoint will serve them."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from azora.cache import Cache, KeySpace
from azora.cache.backends import MemoryBackend
from azora.cache.metrics import register_cache_metrics


async def _load() -> int:
    return 7


async def test_lookups_show_up_in_the_exposition(space: KeySpace) -> None:
    cache = Cache(MemoryBackend())
    registry = CollectorRegistry()
    register_cache_metrics(cache, registry, name="users")
    for _ in range(4):
        assert await cache.get_or_load(space.key(1), _load, ttl=60, schema=int) == 7

    def sample(name: str) -> float | None:
        return registry.get_sample_value(name, {"cache": "users"})

    assert sample("azora_cache_hits_total") == 3
    assert sample("azora_cache_misses_total") == 1
    assert sample("azora_cache_loads_total") == 1
    assert sample("azora_cache_hit_ratio") == 0.75
    assert sample("azora_cache_get_seconds_count") == 4
    assert (sample("azora_cache_get_seconds_sum") or 0) > 0
    assert sample("azora_cache_breaker_open") == 0
    assert b'azora_cache_hits_total{cache="users"} 3.0' in generate_latest(registry)


async def test_caches_are_told_apart_by_name_and_a_name_is_taken_once(space: KeySpace) -> None:
    registry = CollectorRegistry()
    users, courses = Cache(MemoryBackend()), Cache(MemoryBackend())
    register_cache_metrics(users, registry, name="users")
    register_cache_metrics(courses, registry, name="courses")
    await users.get_or_load(space.key(1), _load, ttl=60, schema=int)
    assert registry.get_sample_value("azora_cache_misses_total", {"cache": "users"}) == 1
    assert registry.get_sample_value("azora_cache_misses_total", {"cache": "courses"}) == 0
    with pytest.raises(ValueError, match="'users' is registered already"):
        register_cache_metrics(Cache(MemoryBackend()), registry, name="users")
