"""How many catch-ups a gateway process computes at once, and who waits.

A catch-up reads the history and sends up to ``AZORA_GATEWAY_CATCH_UP_LIMIT`` events:
cheap alone, ruinous by the hundred (every reconnecting client at once after a restart,
or one client reconnecting in a loop). The :class:`CatchUpGate` admits them:

- one at a time per connection, at most ``per_user`` at once (running or waiting) per
  user, and per user at most ``rate_per_user`` a second after a burst of
  ``burst_per_user`` (a client reconnecting in a loop gets its missed events a few
  times, then waits its turn like everyone else);
- at most ``running`` at once in the process, with at most ``waiting`` more queued in
  arrival order.

Beyond that it refuses at once with :class:`Busy`, which carries how long the client
should wait before it tries again (with jitter, so refused clients do not all come back
together).

The catch-ups admitted share a :class:`LoopShare`: together they use at most
``AZORA_GATEWAY_CATCH_UP_SHARE`` of the event loop's time (after a short burst), so live
delivery, ``GET /health`` and new connections keep the rest however many clients
reconnect, and however often.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable

from azora.gateway.rates import RateLimit


class Busy(Exception):
    """The gate is full: try again after ``retry_after_ms`` milliseconds."""

    def __init__(self, retry_after_ms: int) -> None:
        super().__init__(f"too many catch-ups; retry after {retry_after_ms} ms")
        self.retry_after_ms = retry_after_ms


class CatchUpGate:
    """Admits catch-ups (see the module docstring); ``retry_after_ms`` is the shortest
    back-off a refused client is told (it is told up to twice that)."""

    def __init__(
        self,
        *,
        running: int,
        waiting: int,
        per_user: int,
        rate_per_user: float = 0.0,
        burst_per_user: int = 1,
        retry_after_ms: int = 1_000,
    ) -> None:
        self._slots = asyncio.Semaphore(running)
        self._rate = RateLimit(rate_per_user, burst_per_user)
        self._capacity = running + waiting
        self._per_user = per_user
        self._retry_after_ms = retry_after_ms
        self._sids: set[str] = set()
        self._users: Counter[uuid.UUID] = Counter()
        #: Catch-ups computing now, and the most there ever were at once.
        self.running = 0
        self.peak = 0
        #: Catch-ups refused since the start.
        self.refused = 0

    @property
    def admitted(self) -> int:
        """Catch-ups inside the gate: running or waiting for their turn."""
        return len(self._sids)

    @contextlib.asynccontextmanager
    async def admit(self, sid: str, user_id: uuid.UUID) -> AsyncIterator[None]:
        """Wait for a turn to compute the catch-up of connection ``sid``; the block is it.

        Raises:
            Busy: at once, when the connection already has one, the user has
                ``per_user`` or has used up their rate, or the process has all its
                running and waiting places taken (nothing is queued).
        """
        if (
            sid in self._sids
            or self._users[user_id] >= self._per_user
            or len(self._sids) >= self._capacity
        ):
            self.refused += 1
            raise Busy(int(self._retry_after_ms * random.uniform(1.0, 2.0)))
        wait_ms = self._rate.acquire(user_id)
        if wait_ms:
            self.refused += 1
            raise Busy(int(max(wait_ms, self._retry_after_ms) * random.uniform(1.0, 1.5)))
        self._sids.add(sid)
        self._users[user_id] += 1
        try:
            async with self._slots:
                self.running += 1
                self.peak = max(self.peak, self.running)
                try:
                    yield
                finally:
                    self.running -= 1
        finally:
            self._sids.discard(sid)
            self._users[user_id] -= 1
            if not self._users[user_id]:
                del self._users[user_id]


class LoopShare:
    """A share of the event loop's time for one kind of work: on average at most
    ``share`` of it, after a burst of ``burst_s`` seconds.

    The work runs in slices between awaits of :meth:`pause`, each charged the time since
    the previous one (or since :meth:`start`); a slice that overdraws the budget makes
    :meth:`pause` sleep until the budget is back at zero. A slice must not await
    anything that lets other tasks run (its time would be charged for theirs).
    """

    def __init__(
        self, share: float, *, burst_s: float = 0.05, clock: Callable[[], float] = time.perf_counter
    ) -> None:
        self.share = share
        self.burst_s = burst_s
        self._clock = clock
        self._budget = burst_s
        self._at = clock()
        #: Seconds the work was made to wait so far.
        self.waited_s = 0.0

    def start(self) -> float:
        """Where a slice starts (pass it to :meth:`pause`)."""
        return self._clock()

    async def pause(self, started: float) -> float:
        """Charge the slice since ``started``, then yield to the event loop, for as long
        as the budget asks (at least one turn of the loop); where the next slice starts."""
        now = self._clock()
        # Idle until the slice began refills up to the burst; the slice earns its share
        # of its own time and spends all of it.
        idle = max(0.0, started - self._at)
        budget = min(self.burst_s, self._budget + idle * self.share)
        self._budget = min(self.burst_s, budget - (now - started) * (1 - self.share))
        self._at = now
        if self._budget < 0:
            wait = -self._budget / self.share
            self.waited_s += wait
            await asyncio.sleep(wait)
        else:
            await asyncio.sleep(0)
        return self._clock()


#: No budget: one turn of the event loop between slices, nothing more.
UNPACED = LoopShare(1.0, burst_s=math.inf)
