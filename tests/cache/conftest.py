"""Cache fixtures: each cache test runs on the in-process backend and on the real Redis.

Every test uses its own key space and deletes its keys. The Redis fixtures (``redis_url``,
``private_redis``) are the suite's, in ``tests/conftest.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from azora.cache import Cache, KeySpace
from azora.cache.backends import MemoryBackend, RedisBackend


@pytest.fixture
def space() -> KeySpace:
    """A key space of this test alone."""
    return KeySpace(f"test-{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest, space: KeySpace) -> AsyncIterator[Cache]:
    """A cache on each backend; the test's keys are deleted afterwards."""
    if request.param == "memory":
        yield Cache(MemoryBackend())
        return
    url = request.getfixturevalue("redis_url")
    backend = RedisBackend(url, timeout_ms=500)
    cache = Cache(backend, timeout_ms=500)
    try:
        yield cache
    finally:
        keys = [key async for key in backend.client.scan_iter(f"azora:{space.namespace}:*")]
        if keys:
            await backend.client.delete(*keys)
        await cache.aclose()
