"""Cache-aside reads that are never stale after a write and never fail because of the cache.

    users = KeySpace("auth.user", version=1)
    view = await cache.get_or_load(users.key(user_id), load_user, ttl=300, schema=UserView)
    ...
    uow.after_commit(lambda: cache.invalidate(users.key(user_id)))

What ``get_or_load`` guarantees:

* **No stale set.** A miss takes a lease on the key before loading; ``invalidate``
  deletes the entry and the lease; the load's result is stored only if its lease is
  still there. A load that read the database before a write committed can therefore
  never put its old value back after the write's invalidation.
* **No stampede.** Concurrent lookups of one key in a process share one cache read
  and, on a miss, one load (single-flight); across processes the lease lets one load
  while the others wait briefly for its result (and load without storing if it does
  not come in time).
* **Never a failure because of the cache.** Every cache call is bounded by a timeout; a
  failure or timeout sends the read to the loader, and a circuit breaker stops calling
  a failing Redis for a while (logged once). Invalidations that could not be delivered
  are kept and delivered before the cache is read again; until then, reads of those
  keys bypass it.
* **Typed, versioned entries.** Values are validated pydantic types (any type a
  ``TypeAdapter`` accepts), stored as compact JSON by pydantic-core; keys carry their
  key space's schema version, so a deploy that changes a cached shape bumps the version
  and never reads old entries. "Not found" is cached too, for a short TTL. TTLs get
  ±10% jitter so entries written together do not expire together.
* **An optional in-process layer** (``local=LocalLayer(...)``, Redis only): hits are
  answered from this process's memory; every invalidation, from any process, reaches
  it over Redis pub/sub within milliseconds, a short TTL bounds staleness should a
  message be lost, and while the subscription is down the layer is off. The same
  no-stale-set rule holds for it (see :mod:`azora.cache.local`).

Why not cashews or aiocache: both offer TTL caching and (cashews) locks against
stampedes, but neither ties a fill to the invalidations that happened during the load,
which is the stale-set race this layer exists to close; the lease protocol is a few
lines of Lua over redis-py, and keeping it here keeps one behaviour on both backends.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis.exceptions
from pydantic import TypeAdapter

from azora.cache.backends import CacheBackend, MemoryBackend, RedisBackend
from azora.cache.breaker import CircuitBreaker
from azora.cache.local import LocalLayer, Ticket
from azora.errors import ConfigurationError
from azora.settings import Settings

T = TypeVar("T")

_VALUE, _NOT_FOUND = b"\x01", b"\x00"
#: What counts as "the cache is unavailable" (the read then goes to the loader).
_UNAVAILABLE = (redis.exceptions.RedisError, OSError, TimeoutError)


@dataclass(frozen=True)
class CacheKey:
    """A rendered cache key: ``azora:<namespace>:v<version>:<parts>``."""

    value: str

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class KeySpace:
    """The keys of one kind of cached value, with the schema version of its shape."""

    namespace: str
    version: int = 1

    def key(self, *parts: object) -> CacheKey:
        """The key of the value identified by ``parts``."""
        return CacheKey(f"azora:{self.namespace}:v{self.version}:{':'.join(map(str, parts))}")

    def user_key(self, user_id: object, *parts: object) -> CacheKey:
        """A key scoped to one user: no other user's lookup can ever produce it."""
        return self.key("user", user_id, *parts)


@dataclass
class CacheMetrics:
    """Counters of one cache (exported by the monitoring endpoint)."""

    hits: int = 0
    #: hits answered by the in-process layer (counted in ``hits`` too).
    local_hits: int = 0
    misses: int = 0
    loads: int = 0
    errors: int = 0
    refused_fills: int = 0
    waits: int = 0
    bypassed: int = 0
    coalesced: int = 0
    get_seconds: float = 0.0
    gets: int = 0
    _latencies: list[float] = field(default_factory=list, repr=False)

    @property
    def hit_ratio(self) -> float:
        """Hits over lookups (0 before the first lookup).

        A hit is a lookup answered without calling its loader: from the cache, or by
        sharing a concurrent lookup of the same key in this process (``coalesced``).
        Lookups that bypassed an unavailable cache count as neither.
        """
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    def observe_get(self, seconds: float) -> None:
        """Record the duration of one ``get_or_load``."""
        self.gets += 1
        self.get_seconds += seconds


class Cache:
    """Cache-aside over a :class:`CacheBackend` (see the module docstring)."""

    def __init__(
        self,
        backend: CacheBackend,
        *,
        timeout_ms: int | None = None,
        lease_ms: int = 5_000,
        wait_ms: int = 200,
        negative_ttl: float = 5.0,
        breaker: CircuitBreaker | None = None,
        local: LocalLayer | None = None,
    ) -> None:
        self.backend = backend
        self.local = local
        self.metrics = CacheMetrics()
        self.breaker = breaker or CircuitBreaker("cache")
        self._timeout = timeout_ms / 1000 if timeout_ms else None
        self._lease_ms = lease_ms
        self._wait = wait_ms / 1000
        self._negative_ttl = negative_ttl
        self._flights: dict[str, asyncio.Future[Any]] = {}
        self._pending_invalidations: set[str] = set()
        self._adapters: dict[Any, TypeAdapter[Any]] = {}

    # -- reads ----------------------------------------------------------------------

    async def get_or_load(
        self,
        key: CacheKey,
        loader: Callable[[], Awaitable[T | None]],
        *,
        ttl: float,
        schema: Any,
    ) -> T | None:
        """The value under ``key``, loading and caching it on a miss.

        ``loader`` returns the value from the database, or None for "not found" (cached
        for ``negative_ttl``). ``schema`` is the value's type (a pydantic model or any
        type a ``TypeAdapter`` accepts).

        Raises:
            Whatever ``loader`` raises (nothing is cached then). Cache failures never
            reach the caller.
        """
        started = time.perf_counter()
        try:
            name, adapter, local = str(key), self._adapter(schema), self.local
            # With invalidations pending, the cache is read only after they are delivered.
            if local is not None and not self._pending_invalidations:
                if not local.started:
                    local.start()
                raw = local.get(name)
                if raw is not None:
                    self.metrics.hits += 1
                    self.metrics.local_hits += 1
                    hit: T | None = self._decode(raw, adapter)
                    return hit
            return await self._get_or_load(name, loader, ttl, adapter)
        finally:
            self.metrics.observe_get(time.perf_counter() - started)

    async def _get_or_load(
        self,
        key: str,
        loader: Callable[[], Awaitable[T | None]],
        ttl: float,
        adapter: TypeAdapter[Any],
    ) -> T | None:
        flight = self._flights.get(key)
        if flight is not None:  # the same lookup is under way in this process: share it
            self.metrics.coalesced += 1
            self.metrics.hits += 1
            shared: T | None = await asyncio.shield(flight)
            return shared
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._flights[key] = future
        try:
            value = await self._lookup(key, loader, ttl, adapter)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: joined waiters re-raise it themselves
            raise
        else:
            future.set_result(value)
            return value
        finally:
            if self._flights.get(key) is future:
                del self._flights[key]

    async def _lookup(
        self,
        key: str,
        loader: Callable[[], Awaitable[T | None]],
        ttl: float,
        adapter: TypeAdapter[Any],
    ) -> T | None:
        if not await self._deliver_pending() and key in self._pending_invalidations:
            self.metrics.bypassed += 1
            return await loader()
        # Taken before the read: an invalidation applied after it refuses the local put.
        ticket = self.local.ticket(key) if self.local is not None else None
        ok, raw = await self._call(self.backend.get(key))
        if ok and raw is not None:
            self.metrics.hits += 1
            self._keep_local(key, raw, ticket)
            hit: T | None = self._decode(raw, adapter)
            return hit
        if not ok:
            self.metrics.bypassed += 1
            return await loader()
        self.metrics.misses += 1
        return await self._load(key, loader, ttl, adapter, ticket)

    async def _load(
        self,
        key: str,
        loader: Callable[[], Awaitable[T | None]],
        ttl: float,
        adapter: TypeAdapter[Any],
        ticket: Ticket | None,
    ) -> T | None:
        token = secrets.token_hex(8)
        ok, leased = await self._call(self.backend.acquire_lease(key, token, self._lease_ms))
        if ok and not leased:
            # Another process is loading it: wait a little for its result.
            self.metrics.waits += 1
            deadline = time.monotonic() + self._wait
            delay = 0.002
            while time.monotonic() < deadline:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.025)
                ok, raw = await self._call(self.backend.get(key))
                if not ok:
                    break
                if raw is not None:
                    self.metrics.hits += 1
                    self._keep_local(key, raw, ticket)
                    waited: T | None = self._decode(raw, adapter)
                    return waited
        self.metrics.loads += 1
        value = await loader()
        if ok and leased:
            encoded, ttl_ms = self._encode(value, ttl, adapter)
            ok, stored = await self._call(self.backend.fill(key, token, encoded, ttl_ms))
            if ok and not stored:
                self.metrics.refused_fills += 1  # invalidated while loading
            elif ok:
                self._keep_local(key, encoded, ticket, ttl_ms)
        return value

    def _keep_local(
        self, key: str, raw: bytes, ticket: Ticket | None, ttl_ms: int | None = None
    ) -> None:
        """Offer what Redis holds to the local layer (refused if invalidated since)."""
        if self.local is not None:
            self.local.put(key, raw, ticket, ttl_ms)

    # -- writes ---------------------------------------------------------------------

    async def invalidate(self, *keys: CacheKey) -> None:
        """Forget ``keys`` everywhere; call it after the write committed.

        Never raises: when the cache cannot be reached, the keys are kept and delivered
        before the cache is read again (reads of them bypass the cache until then). This
        process's local layer forgets them at once; other processes' layers hear of them
        over Redis pub/sub once delivered.
        """
        names = [str(key) for key in keys]
        for name in names:
            self._flights.pop(name, None)  # later readers must not join an older load
        if self.local is not None:
            self.local.drop(names)
        self._pending_invalidations.update(names)
        await self._deliver_pending()
        if self.local is not None:
            # A read of ours that began after the first drop may have seen the old entry
            # before the DEL: refuse its put too (our own message would also drop it).
            self.local.drop(names)

    async def _deliver_pending(self) -> bool:
        """Deliver the kept invalidations; True when none is left."""
        if not self._pending_invalidations:
            return True
        batch = list(self._pending_invalidations)
        ok, _ = await self._call(self.backend.invalidate(batch))
        if ok:
            self._pending_invalidations.difference_update(batch)
        return ok and not self._pending_invalidations

    # -- plumbing -------------------------------------------------------------------

    async def _call(self, operation: Awaitable[T]) -> tuple[bool, T | None]:
        """Run one backend call under the breaker and the timeout: (ok, result)."""
        if not self.breaker.allow():
            _close(operation)
            return False, None
        try:
            if self._timeout is None:
                result = await operation
            else:
                async with asyncio.timeout(self._timeout):
                    result = await operation
        except _UNAVAILABLE as exc:
            self.metrics.errors += 1
            self.breaker.failed(exc)
            return False, None
        self.breaker.succeeded()
        return True, result

    def _adapter(self, schema: Any) -> TypeAdapter[Any]:
        adapter = self._adapters.get(schema)
        if adapter is None:
            adapter = self._adapters[schema] = TypeAdapter(schema)
        return adapter

    def _encode(self, value: Any, ttl: float, adapter: TypeAdapter[Any]) -> tuple[bytes, int]:
        if value is None:
            return _NOT_FOUND, max(1, int(self._negative_ttl * 1000))
        jittered = ttl * random.uniform(0.9, 1.1)
        return _VALUE + adapter.dump_json(value), max(1, int(jittered * 1000))

    @staticmethod
    def _decode(raw: bytes, adapter: TypeAdapter[Any]) -> Any:
        if raw[:1] == _NOT_FOUND:
            return None
        return adapter.validate_json(raw[1:])

    async def start(self) -> None:
        """Start the local layer's subscriber (otherwise the first read starts it)."""
        if self.local is not None:
            self.local.start()

    async def aclose(self) -> None:
        """Stop the local layer's subscriber and close the backend's connections."""
        if self.local is not None:
            await self.local.aclose()
        await self.backend.aclose()


def _close(operation: Awaitable[Any]) -> None:
    close = getattr(operation, "close", None)
    if close is not None:
        close()  # a coroutine that will not be awaited


def open_cache(settings: Settings) -> Cache:
    """The cache ``AZORA_CACHE_URL`` names: ``memory://`` or ``redis://...``.

    With Redis and ``AZORA_CACHE_LOCAL_MAX_ENTRIES`` > 0, the cache has a local layer
    (in memory, the cache is local already).

    Raises:
        ConfigurationError: an unsupported URL scheme.
    """
    url = settings.cache_url
    if url.startswith("memory://"):
        return Cache(MemoryBackend(settings.cache_max_entries))
    if url.startswith(("redis://", "rediss://", "unix://")):
        local = None
        if settings.cache_local_max_entries:
            local = LocalLayer(
                url,
                max_entries=settings.cache_local_max_entries,
                ttl_ms=settings.cache_local_ttl_ms,
            )
        return Cache(
            RedisBackend(url, timeout_ms=settings.cache_timeout_ms),
            timeout_ms=settings.cache_timeout_ms,
            local=local,
        )
    raise ConfigurationError(
        f"AZORA_CACHE_URL has an unsupported scheme: {url.split('://')[0]!r}",
        hint="use memory:// (embedded) or redis://host:6379/0",
    )
