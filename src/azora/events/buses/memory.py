"""The in-process bus (``memory://``): the embedded default, and the model the others match.

One append-only log per bus object (so per process), de-duplicated by event id. Each
durable consumer name keeps an offset into it and a table of deliveries awaiting their
acknowledgement; subscribers of one name take turns on them. A delivery that is not
settled within ``ack_wait`` seconds, that is nak'd (after its delay) or whose subscriber
goes away comes back with ``attempt`` one higher. A tap receives each new envelope as it
is appended. Nothing survives the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from azora.errors import InvalidInput
from azora.events.bus import Delivery
from azora.events.buses.names import validate_consumer
from azora.events.buses.tap import QueueTap
from azora.events.envelope import Envelope
from azora.events.errors import BusUnavailable
from azora.events.patterns import matches, validate_pattern


@dataclass
class _Pending:
    attempt: int
    due: float  # monotonic time at which it may be delivered again


@dataclass
class _Group:
    pattern: str
    cursor: int = 0  # the next log position this consumer has not looked at
    pending: dict[int, _Pending] = field(default_factory=dict)  # by log position

    def take(self, log: Sequence[Envelope], now: float, ack_wait: float) -> tuple[int, int] | None:
        """The next (position, attempt) to deliver, marked in flight; ``None`` when idle."""
        due = [position for position, entry in self.pending.items() if entry.due <= now]
        if due:
            position = min(due)
            entry = self.pending[position]
            entry.attempt += 1
            entry.due = now + ack_wait
            return position, entry.attempt
        while self.cursor < len(log):
            position = self.cursor
            self.cursor += 1
            if matches(self.pattern, log[position].type):
                self.pending[position] = _Pending(attempt=1, due=now + ack_wait)
                return position, 1
        return None

    def next_due(self) -> float | None:
        return min((entry.due for entry in self.pending.values()), default=None)


class MemoryBus:
    """A :class:`~azora.events.bus.Bus` inside this process.

    ``ack_wait`` is how long a delivery may stay unsettled before it is handed out again.
    """

    def __init__(self, *, ack_wait: float = 30.0) -> None:
        self._ack_wait = ack_wait
        self._log: list[Envelope] = []
        self._ids: set[uuid.UUID] = set()
        self._groups: dict[str, _Group] = {}
        self._changed = asyncio.Event()
        self._taps: dict[QueueTap, str] = {}  # open tap -> its pattern
        self._closed = False

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def publish_many(self, envelopes: Sequence[Envelope]) -> None:
        """Append the envelopes not seen before, in order, and wake the subscribers.

        Raises:
            BusUnavailable: the bus is closed.
        """
        if self._closed:
            raise BusUnavailable("the in-process event bus is closed")
        for envelope in envelopes:
            if envelope.id not in self._ids:
                self._ids.add(envelope.id)
                self._log.append(envelope)
                for tap, pattern in self._taps.items():
                    if matches(pattern, envelope.type):
                        tap.put(envelope)
        self._notify()

    async def tap(self, pattern: str) -> QueueTap:
        """A live view of the envelopes matching ``pattern`` appended from now on.

        Raises:
            InvalidPattern: a malformed pattern.
            BusUnavailable: the bus is closed.
        """
        validate_pattern(pattern)
        if self._closed:
            raise BusUnavailable("the in-process event bus is closed")

        async def forget() -> None:
            self._taps.pop(tap, None)

        tap = QueueTap(forget)
        self._taps[tap] = pattern
        return tap

    async def subscribe(self, consumer: str, pattern: str) -> AsyncIterator[Delivery]:
        """Deliveries for ``consumer`` from the start of the log (a new name sees history).

        The first subscription of a name fixes its pattern; later ones share its work.

        Raises:
            InvalidInput: a malformed consumer name or pattern, or ``consumer`` already
                subscribes to another pattern.
        """
        validate_consumer(consumer)
        group = self._groups.setdefault(consumer, _Group(validate_pattern(pattern)))
        if group.pattern != pattern:
            raise InvalidInput(
                f"consumer {consumer!r} already subscribes to {group.pattern!r}",
                hint="a consumer name is bound to one pattern; use another name",
            )
        held: dict[int, int] = {}  # position -> attempt handed out by this subscription
        try:
            while not self._closed:
                now = time.monotonic()
                taken = group.take(self._log, now, self._ack_wait)
                if taken is None:
                    await self._wait(group, now)
                    continue
                position, attempt = taken
                held[position] = attempt
                ack, nak = self._settlers(group, held, position, attempt)
                yield Delivery(self._log[position], attempt, ack, nak)
        finally:
            # What this subscriber took and did not settle goes to the next one at once.
            for position, attempt in held.items():
                entry = group.pending.get(position)
                if entry is not None and entry.attempt == attempt:
                    entry.due = time.monotonic()
            if held:
                self._notify()

    async def _wait(self, group: _Group, now: float) -> None:
        changed = self._changed
        next_due = group.next_due()
        timeout = self._ack_wait if next_due is None else max(next_due - now, 0.0)
        # A timeout means a pending delivery is due again.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(changed.wait(), timeout)

    def _settlers(
        self, group: _Group, held: dict[int, int], position: int, attempt: int
    ) -> tuple[Callable[[], Awaitable[None]], Callable[[float], Awaitable[None]]]:
        async def ack() -> None:
            held.pop(position, None)
            group.pending.pop(position, None)

        async def nak(delay: float) -> None:
            held.pop(position, None)
            entry = group.pending.get(position)
            if entry is not None and entry.attempt == attempt:  # not already handed out again
                entry.due = time.monotonic() + max(delay, 0.0)
                self._notify()

        return ack, nak

    async def aclose(self) -> None:
        """End every subscription and tap; later publishes raise BusUnavailable."""
        self._closed = True
        for tap in list(self._taps):
            tap.end()
        self._taps.clear()
        self._notify()
