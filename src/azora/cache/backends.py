"""Where cached bytes live: Redis, or this process's memory (the embedded default).

Both backends offer the same four operations, with the same lease semantics:

* ``get(key)``: the stored bytes or ``None``.
* ``acquire_lease(key, token, ttl_ms)``: become the one loader of a missing key (``SET
  NX``); False when another loader holds the lease.
* ``fill(key, token, value, ttl_ms)``: store ``value`` only if ``token`` still holds the
  lease, and release it. An invalidation in between deletes the lease, so a load that
  began before a write can never store what it read (no stale set).
* ``invalidate(keys)``: delete the entries and their leases.

Redis runs ``fill`` as one Lua script, so the check and the write are atomic. Its
``invalidate`` also publishes the key names (a JSON list) on
:data:`INVALIDATION_CHANNEL`, in the same ``MULTI`` as the ``DEL``: processes with an
in-process layer (:mod:`azora.cache.local`) drop them within milliseconds.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Protocol

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

LEASE_SUFFIX = ":lease"
#: Where every Redis invalidation announces the keys it deleted.
INVALIDATION_CHANNEL = "azora:cache:invalidations"

_FILL = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    redis.call('DEL', KEYS[2])
    return 1
end
return 0
"""


class CacheBackend(Protocol):
    """Byte storage with leases (see the module docstring)."""

    async def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or None."""
        ...

    async def acquire_lease(self, key: str, token: str, ttl_ms: int) -> bool:
        """Take the load lease of ``key`` for ``ttl_ms``; False when someone holds it."""
        ...

    async def fill(self, key: str, token: str, value: bytes, ttl_ms: int) -> bool:
        """Store ``value`` if ``token`` still holds the lease (and release it)."""
        ...

    async def invalidate(self, keys: Sequence[str]) -> None:
        """Delete ``keys`` and their leases."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class MemoryBackend:
    """The cache in this process: an LRU of at most ``max_entries`` entries with TTLs."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._max_entries = max_entries
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._leases: dict[str, tuple[str, float]] = {}

    async def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or None (expired entries are dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        value, expires = entry
        if expires <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return value

    async def acquire_lease(self, key: str, token: str, ttl_ms: int) -> bool:
        """Take the load lease of ``key``; False while another unexpired lease exists."""
        now = time.monotonic()
        held = self._leases.get(key)
        if held is not None and held[1] > now:
            return False
        self._leases[key] = (token, now + ttl_ms / 1000)
        return True

    async def fill(self, key: str, token: str, value: bytes, ttl_ms: int) -> bool:
        """Store ``value`` if ``token`` still holds the lease of ``key``."""
        now = time.monotonic()
        held = self._leases.get(key)
        if held is None or held[0] != token or held[1] <= now:
            return False
        del self._leases[key]
        self._entries[key] = (value, now + ttl_ms / 1000)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return True

    async def invalidate(self, keys: Sequence[str]) -> None:
        """Delete ``keys`` and their leases."""
        for key in keys:
            self._entries.pop(key, None)
            self._leases.pop(key, None)

    async def aclose(self) -> None:
        """Nothing to release."""


class RedisBackend:
    """The cache in Redis; every call is bounded by ``timeout_ms``."""

    def __init__(
        self,
        url: str,
        timeout_ms: int = 100,
        max_connections: int = 64,
        channel: str = INVALIDATION_CHANNEL,
    ) -> None:
        self.channel = channel
        timeout = timeout_ms / 1000
        # A bounded pool that makes callers wait (up to the timeout) for a connection,
        # rather than opening one per concurrent call or failing at once.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=timeout,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
        )
        self._client = aioredis.Redis(connection_pool=pool, retry=Retry(NoBackoff(), 0))
        self._fill = self._client.register_script(_FILL)

    @property
    def client(self) -> aioredis.Redis:
        """The redis-py client (for the invalidation channel and measurements)."""
        return self._client

    async def get(self, key: str) -> bytes | None:
        """The bytes stored under ``key``, or None."""
        value = await self._client.get(key)
        return value if value is None or isinstance(value, bytes) else str(value).encode()

    async def acquire_lease(self, key: str, token: str, ttl_ms: int) -> bool:
        """``SET key:lease token NX PX ttl_ms``."""
        return bool(await self._client.set(key + LEASE_SUFFIX, token, nx=True, px=ttl_ms))

    async def fill(self, key: str, token: str, value: bytes, ttl_ms: int) -> bool:
        """Store ``value`` if ``token`` still holds the lease (atomically, in Lua)."""
        stored = await self._fill(keys=[key, key + LEASE_SUFFIX], args=[token, value, ttl_ms])
        return bool(stored)

    async def invalidate(self, keys: Sequence[str]) -> None:
        """``DEL`` the keys and their leases and publish their names, atomically.

        One round trip (``MULTI``/``EXEC``): the subscribers hear of exactly the keys
        deleted, in the same step.
        """
        if keys:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.delete(*keys, *(key + LEASE_SUFFIX for key in keys))
                pipe.publish(self.channel, json.dumps(list(keys)))
                await pipe.execute()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose(close_connection_pool=True)
