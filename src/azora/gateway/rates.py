"""Rate limits: how often one key (a user, a client address) may do something.

A :class:`RateLimit` is a token bucket per key: ``burst`` at once, then ``rate`` per
second. Its memory is bounded: past ``max_keys`` the keys idle longest are forgotten
(such a key starts again with a full bucket, which a client cannot choose to happen).

The gateway applies them to Engine.IO handshakes per client address (in its HTTP
protocol, :mod:`azora.gateway.protocols`) and to Socket.IO connects per address and per
user.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass

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

    def forget(self, key: Hashable) -> None:
        """Drop ``key``'s bucket (its owner is gone)."""
        self._buckets.pop(key, None)

    def __len__(self) -> int:
        return len(self._buckets)
