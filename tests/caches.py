"""The cache a database test pairs with its backend: in-process with SQLite, the real
Redis with PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import pytest

from azora.cache import Cache
from azora.cache.backends import MemoryBackend, RedisBackend


@asynccontextmanager
async def paired_cache(
    backend: str, request: pytest.FixtureRequest, forget: Sequence[str]
) -> AsyncIterator[Cache]:
    """The in-process cache with SQLite; the real Redis with PostgreSQL, whose keys
    matching the ``forget`` patterns are deleted afterwards (ids are fresh per test, so
    entries cannot collide across tests; they are dropped anyway)."""
    if backend == "sqlite":
        yield Cache(MemoryBackend())
        return
    redis_backend = RedisBackend(request.getfixturevalue("redis_url"), timeout_ms=500)
    opened = Cache(redis_backend, timeout_ms=500)
    try:
        yield opened
    finally:
        keys = [key for pattern in forget async for key in redis_backend.client.scan_iter(pattern)]
        if keys:
            await redis_backend.client.delete(*keys)
        await opened.aclose()
