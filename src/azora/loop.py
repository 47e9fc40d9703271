"""The event loop long-running processes run on (``azora serve``, the relay, consumers)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


def serving_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's loop factory where uvloop is installed (not on Windows), else ``None``
    (asyncio's own loop); for ``asyncio.Runner(loop_factory=...)``.

    uvloop runs the same asyncio code with less CPU per I/O event, which shortens the
    gateway's latency tail and broadcasts (``benchmarks/events.py``).
    """
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
