"""The gateway server's open connections: how many, from where, and which ones stalled.

One :class:`ConnectionGuard` per server. Its protocols (:mod:`azora.gateway.protocols`)
ask :meth:`~ConnectionGuard.admit` as a connection opens and call
:meth:`~ConnectionGuard.release` when it is gone:

- from one client address at most ``gateway_connection_rate_per_ip`` open a second
  (after a burst): the next are reset at once, before a byte is read (the cheapest
  refusal there is, for a client opening connections in a loop);
- from one client address at most ``gateway_max_connections_per_ip`` are open; the next
  is refused (answered 503);
- in all at most the *budget*: ``gateway_max_connections``, and never more than the
  process's open-file limit minus :data:`RESERVED_FILES` (the databases, logs and the
  operators keep those). Past the budget :data:`HEALTH_HEADROOM` more are let in for
  ``GET /health`` only, so that monitoring still gets its answer; past those a new
  connection is closed at once.

:meth:`~ConnectionGuard.run` ends the connections whose unsent data has not moved for
``gateway_send_timeout_s`` (a client that stopped reading its response, a close that
cannot be delivered): their TCP connection is aborted, which frees its buffers at once.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import sys
from dataclasses import dataclass

from azora.gateway.rates import RateLimit
from azora.settings import Settings

if sys.platform != "win32":
    import resource

log = logging.getLogger(__name__)

#: Open files kept out of the connection budget.
RESERVED_FILES = 256
#: Connections let in past the budget, for ``GET /health`` only.
HEALTH_HEADROOM = 16


class Admission(enum.Enum):
    """What a new connection may do."""

    OPEN = "open"  # anything
    HEALTH_ONLY = "health_only"  # past the budget: GET /health, nothing else (503)
    BUSY = "busy"  # its address holds too many: answered 503
    FULL = "full"  # past the headroom too: closed at once


def connection_budget(configured: int) -> int:
    """How many connections the process may hold: ``configured`` (0: as many as the
    open-file limit allows), so that with the headroom at least :data:`RESERVED_FILES`
    open files stay free."""
    if sys.platform == "win32":
        return configured or 10_000
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return configured or 100_000
    budget = max(1, soft - RESERVED_FILES - HEALTH_HEADROOM)
    return min(configured, budget) if configured else budget


@dataclass(eq=False)
class _Open:
    address: str | None  # None: refused, not counted against its address
    unsent: int = 0  # the write buffer's size when last looked at
    stalled_since: float | None = None  # since when it has not shrunk (None: empty)


class ConnectionGuard:
    """The server's connection counts and its send-stall sweep (see the module docs)."""

    def __init__(
        self,
        settings: Settings,
        *,
        opens: RateLimit | None = None,
        handshakes: RateLimit | None = None,
    ) -> None:
        self.settings = settings
        #: New connections per client address: those past it are reset before anything
        #: is read (see :meth:`opens_too_often`); None: not limited.
        self.opens = opens
        #: Engine.IO handshakes per client address (azora.gateway.protocols refuses
        #: those past it with 429); None: not limited.
        self.handshakes = handshakes
        self.budget = connection_budget(settings.gateway_max_connections)
        self._open: dict[asyncio.Transport, _Open] = {}
        self._per_address: dict[str, int] = {}
        #: Connections aborted because their unsent data stopped moving.
        self.stalled = 0
        #: Bytes read and dropped from refused requests (see azora.gateway.protocols).
        self.dropped = 0

    @property
    def count(self) -> int:
        """Connections open now (the refused ones still closing included)."""
        return len(self._open)

    def from_address(self, address: str) -> int:
        """Connections open now from one client address (refused ones not counted)."""
        return self._per_address.get(address, 0)

    def opens_too_often(self, address: str | None) -> bool:
        """Whether a connection just opened from ``address`` is past its address's rate
        (it is then not counted: reset it at once)."""
        return self.opens is not None and address is not None and bool(self.opens.acquire(address))

    def admit(self, transport: asyncio.Transport, address: str | None) -> Admission:
        """Decide what a new connection may do; it is counted unless :attr:`Admission.FULL`
        (until :meth:`release`)."""
        if len(self._open) >= self.budget + HEALTH_HEADROOM:
            return Admission.FULL
        cap = self.settings.gateway_max_connections_per_ip
        if address is not None and cap and self._per_address.get(address, 0) >= cap:
            self._open[transport] = _Open(None)
            return Admission.BUSY
        self._open[transport] = _Open(address)
        if address is not None:
            self._per_address[address] = self._per_address.get(address, 0) + 1
        return Admission.HEALTH_ONLY if len(self._open) > self.budget else Admission.OPEN

    def release(self, transport: asyncio.Transport) -> None:
        """Forget a connection that is gone (unknown ones are ignored)."""
        known = self._open.pop(transport, None)
        if known is None or known.address is None:
            return
        left = self._per_address[known.address] - 1
        if left:
            self._per_address[known.address] = left
        else:
            del self._per_address[known.address]

    def sweep(self, now: float) -> int:
        """Abort the connections whose unsent data has not shrunk for the send timeout;
        how many. ``now`` is the event loop's clock."""
        timeout = self.settings.gateway_send_timeout_s
        aborted = 0
        for transport, known in list(self._open.items()):
            unsent = transport.get_write_buffer_size()
            if unsent == 0:
                known.stalled_since = None
            elif known.stalled_since is None or unsent < known.unsent:
                known.stalled_since = now  # new data waiting, or some of it went out
            elif now - known.stalled_since >= timeout:
                log.debug("aborting a connection: %d bytes unsent for %.0f s", unsent, timeout)
                transport.abort()
                aborted += 1
            known.unsent = unsent
        self.stalled += aborted
        return aborted

    async def run(self) -> None:
        """Sweep (:meth:`sweep`) a few times per send timeout, until cancelled."""
        loop = asyncio.get_running_loop()
        interval = min(1.0, self.settings.gateway_send_timeout_s / 4)
        while True:
            await asyncio.sleep(interval)
            self.sweep(loop.time())
