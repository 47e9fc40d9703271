"""Rate limits: how often one key (a user, a client address) may do something.

A :class:`RateLimit` is a token bucket per key: ``burst`` at once, then ``rate`` per
second. Its memory is bounded: past ``max_keys`` the keys idle longest are forgotten
(such a key starts again with a full bucket, which a client cannot choose to happen).

:class:`HandshakeLimit` applies one to Engine.IO handshakes per client address.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

#: Keys a limit remembers, at most.
MAX_KEYS = 100_000


@dataclass
class _Bucket:
    tokens: float
    at: float  # when ``tokens`` was last brought up to date


class RateLimit:
    """A token bucket per key; ``rate`` 0 lets everything through."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._max_keys = max_keys
        self._clock = clock
        # Least recently used first: a key is moved to the end whenever it acts.
        self._buckets: dict[Hashable, _Bucket] = {}
        #: Attempts refused so far.
        self.refused = 0

    def acquire(self, key: Hashable) -> int:
        """Take one token from ``key``'s bucket: 0 if there was one, else how many
        milliseconds until there is (nothing is taken then)."""
        if not self.rate:
            return 0
        now = self._clock()
        bucket = self._buckets.pop(key, None)
        if bucket is None:
            bucket = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        self._buckets[key] = bucket
        if len(self._buckets) > self._max_keys:
            del self._buckets[next(iter(self._buckets))]
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0
        self.refused += 1
        return max(1, math.ceil((1 - bucket.tokens) / self.rate * 1000))

    def __len__(self) -> int:
        return len(self._buckets)


class HandshakeLimit:
    """ASGI middleware: Engine.IO handshakes (requests under ``path`` without a ``sid``:
    new sessions) from one client address are rate limited by ``limit``; past it a
    polling handshake is answered 429 and a websocket one refused (403), before the
    application sees either."""

    def __init__(self, app: ASGIApp, limit: RateLimit, *, path: str = "/socket.io/") -> None:
        self.app = app
        self.limit = limit
        self._path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on, unless it is a handshake past its address's budget."""
        if (
            scope["type"] in ("http", "websocket")
            and self.limit.rate
            and scope["path"].startswith(self._path)
            and b"sid" not in parse_qs(scope.get("query_string", b""))
        ):
            client = scope.get("client")
            wait = self.limit.acquire(client[0] if client else None)
            if wait:
                await _refuse(scope, send, wait)
                return
        await self.app(scope, receive, send)


async def _refuse(scope: Scope, send: Send, wait_ms: int) -> None:
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1013})
        return
    retry_after = str(math.ceil(wait_ms / 1000)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", b"17"),
                (b"retry-after", retry_after),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b"Too Many Requests"})
