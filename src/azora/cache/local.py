"""A small in-process layer (L1) in front of Redis, kept fresh over Redis pub/sub.

Every :class:`~azora.cache.backends.RedisBackend` invalidation deletes the keys and
publishes their names on :data:`~azora.cache.backends.INVALIDATION_CHANNEL` in one
round trip (``MULTI``). A process with a :class:`LocalLayer` runs one subscriber task
that drops the keys it hears from its layer, within milliseconds of the write.

What the layer guarantees:

* **Bounded staleness.** Entries live at most ``ttl_ms`` (a hard bound should a message
  ever be lost) and the layer keeps at most ``max_entries`` (least recently used go
  first). Entries hold the encoded bytes, so every hit decodes a fresh value: callers
  may mutate what they get without affecting other callers.
* **No stale set.** A reader takes a :class:`Ticket` before it reads Redis and may put
  what it read only if no invalidation of that key was applied since: every dropped key
  bumps a per-key generation, and the ticket records the generation it saw. The
  generation table is bounded: past its limit it is cleared and a global epoch is
  bumped, which refuses every older ticket.
* **Lost messages cannot leave stale entries.** While the subscription is down (Redis
  unreachable, connection dropped, no answer to a PING), the layer is empty and refuses
  every put; reads go to Redis or the loader as without the layer. The subscriber
  reconnects by itself with backoff and logs once per outage, like the circuit breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from azora.cache.backends import INVALIDATION_CHANNEL

logger = logging.getLogger(__name__)

#: Below this, the generation table is never cleared (clearing refuses in-flight puts).
_MIN_GENERATIONS = 1_024
#: The first reconnection delay; it doubles up to ``max_backoff_s`` while Redis is away.
_MIN_BACKOFF_S = 0.05


@dataclass(frozen=True, slots=True)
class Ticket:
    """What a reader saw before reading Redis: the layer's epoch and the key's generation."""

    epoch: int
    generation: int


class LocalLayer:
    """A bounded in-process LRU with a short TTL, invalidated over Redis pub/sub.

    Not thread-safe; one per event loop. See the module docstring for the guarantees.
    """

    def __init__(
        self,
        url: str,
        *,
        max_entries: int = 10_000,
        ttl_ms: int = 2_000,
        channel: str = INVALIDATION_CHANNEL,
        heartbeat_s: float = 1.0,
        connect_timeout_s: float = 1.0,
        max_backoff_s: float = 1.0,
    ) -> None:
        """A layer subscribed to ``channel`` on the Redis at ``url`` (once started).

        A silent subscription is PINGed every ``heartbeat_s``; no answer by the next
        beat counts as lost. Reconnection waits double from 50 ms up to ``max_backoff_s``.

        Raises:
            ValueError: a size, TTL or interval that is not positive.
        """
        if max_entries < 1 or ttl_ms < 1 or heartbeat_s <= 0 or max_backoff_s <= 0:
            raise ValueError("max_entries, ttl_ms, heartbeat_s and max_backoff_s must be > 0")
        self.channel = channel
        self._max_entries = max_entries
        self._ttl = ttl_ms / 1000
        self._heartbeat = heartbeat_s
        self._connect_timeout = connect_timeout_s
        self._max_backoff = max_backoff_s
        self._entries: OrderedDict[str, tuple[bytes, float]] = OrderedDict()
        self._generations: dict[str, int] = {}
        self._generation_limit = max(max_entries, _MIN_GENERATIONS)
        self._epoch = 0
        self._listening = asyncio.Event()
        self._outage = False
        self._backoff = _MIN_BACKOFF_S
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        # The subscription needs a connection of its own that may stay silent for long:
        # reads are bounded per call (the heartbeat), not by a socket timeout.
        self._client = aioredis.Redis.from_url(
            url,
            socket_connect_timeout=connect_timeout_s,
            socket_timeout=max(heartbeat_s, connect_timeout_s),
            retry=Retry(NoBackoff(), 0),
        )
        #: keys dropped because a message named them (for metrics and tests).
        self.heard = 0
        #: puts refused because the key was invalidated since the reader's ticket.
        self.refused_puts = 0

    # -- the entries ----------------------------------------------------------------

    @property
    def listening(self) -> bool:
        """True while the subscription is established (only then does the layer fill)."""
        return self._listening.is_set()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> bytes | None:
        """The bytes held for ``key``, or None (expired entries are dropped)."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[0]

    def ticket(self, key: str) -> Ticket | None:
        """Take before reading ``key`` from Redis; None while the layer must not fill."""
        if not self._listening.is_set():
            return None
        return Ticket(self._epoch, self._generations.get(key, 0))

    def put(self, key: str, value: bytes, ticket: Ticket | None, ttl_ms: int | None = None) -> bool:
        """Hold ``value`` for at most the layer's TTL (or ``ttl_ms`` if shorter).

        Refused (False) when ``ticket`` is None, the subscription is down, or ``key``
        was invalidated since the ticket was taken: the value may be older than that
        invalidation.
        """
        if ticket is None or not self._listening.is_set():
            return False
        if ticket.epoch != self._epoch or self._generations.get(key, 0) != ticket.generation:
            self.refused_puts += 1
            return False
        ttl = self._ttl if ttl_ms is None else min(self._ttl, ttl_ms / 1000)
        self._entries[key] = (value, time.monotonic() + ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
        return True

    def drop(self, keys: Iterable[str]) -> None:
        """Forget ``keys`` and refuse the puts of readers that took their ticket before."""
        for key in keys:
            self._entries.pop(key, None)
            self._generations[key] = self._generations.get(key, 0) + 1
        if len(self._generations) > self._generation_limit:
            self._generations.clear()
            self._epoch += 1

    def clear(self) -> None:
        """Forget every entry and refuse every put of a ticket taken before."""
        self._entries.clear()
        self._generations.clear()
        self._epoch += 1

    # -- the subscription -----------------------------------------------------------

    def start(self) -> None:
        """Start the subscriber task (idempotent; a closed layer stays closed).

        Must be called from a running event loop. The layer fills only once the
        subscription is confirmed (see :meth:`wait_listening`).
        """
        if self._task is None and not self._closed:
            self._task = asyncio.create_task(self._run(), name=f"azora-cache-l1:{self.channel}")

    @property
    def started(self) -> bool:
        """True once :meth:`start` has been called (or the layer was closed)."""
        return self._task is not None or self._closed

    async def wait_listening(self, within: float) -> bool:
        """Wait up to ``within`` seconds for the subscription; True when established."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await self._listening.wait()
        return self._listening.is_set()

    async def aclose(self) -> None:
        """Stop the subscriber, empty the layer and close its connection."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._listening.clear()
        self.clear()
        await self._client.aclose(close_connection_pool=True)

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except Exception as exc:  # any failure may have lost messages: see _lost
                self._lost(exc)
            await asyncio.sleep(self._backoff * random.uniform(0.5, 1.0))
            self._backoff = min(self._backoff * 2, self._max_backoff)

    async def _listen(self) -> None:
        """Subscribe and apply messages until the connection fails (raises then)."""
        pubsub = self._client.pubsub()
        try:
            async with asyncio.timeout(self._connect_timeout):
                await pubsub.subscribe(self.channel)
            awaiting_pong = False
            while True:
                message = await pubsub.get_message(timeout=self._heartbeat)
                if message is None:  # silence: make sure the connection is still there
                    if awaiting_pong:
                        raise RedisConnectionError("no answer to PING on the subscription")
                    await pubsub.ping()
                    awaiting_pong = True
                    continue
                awaiting_pong = False
                if message["type"] == "message":
                    self._apply(message["data"])
                elif message["type"] == "subscribe":
                    self._established()
        finally:
            self._listening.clear()
            await pubsub.aclose()  # type: ignore[no-untyped-call]  # unannotated in redis-py

    def _apply(self, data: Any) -> None:
        try:
            keys = json.loads(data)
            if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
                raise ValueError("not a list of key names")
        except ValueError:
            logger.warning("unreadable cache invalidation message %r; clearing the layer", data)
            self.clear()
            return
        self.drop(keys)
        self.heard += len(keys)

    def _established(self) -> None:
        self.clear()  # nothing read before this point may fill the layer
        self._listening.set()
        self._backoff = _MIN_BACKOFF_S
        if self._outage:
            self._outage = False
            logger.warning("cache invalidations heard again on %s; local layer on", self.channel)

    def _lost(self, error: BaseException) -> None:
        self._listening.clear()
        self.clear()
        if not self._outage:
            self._outage = True
            logger.warning(
                "cache invalidations on %s unavailable (%s: %s); local layer off until back",
                self.channel,
                type(error).__name__,
                error,
            )
