"""The queue behind every bus's :meth:`~azora.events.bus.Bus.tap`.

A bus feeds a :class:`QueueTap` from whatever receives its broker's messages (a callback
or a reading task); the reader iterates it. The queue is unbounded: a tap is read by one
task that only routes envelopes onwards, so it keeps up, and dropping envelopes silently
would break the gateway's promise more than memory growth would.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

from azora.events.envelope import Envelope
from azora.events.errors import BusUnavailable


class _End:
    """Put in the queue when the tap ends; ``error`` is raised to the reader, if any."""

    def __init__(self, error: BusUnavailable | None) -> None:
        self.error = error


class QueueTap:
    """A :class:`~azora.events.bus.Tap` fed by :meth:`put`; ``on_close`` releases the source."""

    def __init__(self, on_close: Callable[[], Awaitable[None]] | None = None) -> None:
        self._queue: asyncio.Queue[Envelope | _End] = asyncio.Queue()
        self._on_close = on_close
        self.closed = False

    def put(self, envelope: Envelope) -> None:
        """Hand ``envelope`` to the reader (ignored once the tap is closed)."""
        if not self.closed:
            self._queue.put_nowait(envelope)

    def end(self, error: BusUnavailable | None = None) -> None:
        """End the iteration after what is queued, raising ``error`` if one is given."""
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(_End(error))

    async def __aiter__(self) -> AsyncIterator[Envelope]:
        """The envelopes in the order they were put; ends when the tap is closed.

        Raises:
            BusUnavailable: the source failed for good.
        """
        while True:
            item = await self._queue.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    async def aclose(self) -> None:
        """Release the source and end the iteration."""
        if self._on_close is not None:
            on_close, self._on_close = self._on_close, None
            await on_close()
        self.end()
