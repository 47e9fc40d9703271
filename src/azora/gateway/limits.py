"""What one client may hold of a gateway: Socket.IO connections per user, time to
connect, and what waits to be sent to it.

A :class:`SessionLimits` is built with the gateway's Socket.IO server:

- :meth:`~SessionLimits.admit_user` refuses a user's connection past
  ``gateway_max_connections_per_user`` (``connect_error`` with the code
  ``too_many_connections``); the gateway's connect handler calls it;
- :meth:`~SessionLimits.run` closes the Engine.IO sessions that have not connected a
  Socket.IO namespace within ``gateway_connect_timeout_s`` (a session costs a socket and
  a task even before it signs in);
- every Engine.IO session's outgoing queue is an :class:`Outbox`: at most
  ``gateway_send_queue_messages`` packets and ``gateway_send_queue_bytes`` bytes wait in
  it. For a client past either bound (it stopped polling, say) what waits is dropped:
  it gets a ``gap`` event ``{"reason": "overflow"}`` and Engine.IO's CLOSE instead, and
  is disconnected; it reconnects with its ``last_event_id`` and catches up. A websocket
  client that stops reading meets the bound of :mod:`azora.gateway.protocols` first,
  where the bytes are written: its connection is aborted (a ``gap`` could not reach it).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import engineio.packet
import socketio
import socketio.packet

from azora.gateway.hub import Hub
from azora.settings import Settings

log = logging.getLogger(__name__)

#: The most sessions closed per sweep before letting other work run.
_BATCH = 50


def packet_size(packet: Any) -> int:
    """The bytes an Engine.IO packet takes once encoded (the encoding is cached by the
    packet, and sent as it is)."""
    encoded = packet.encode()
    if isinstance(encoded, str) and not encoded.isascii():
        return len(encoded.encode())
    return len(encoded)


class Outbox(asyncio.Queue[Any]):
    """An Engine.IO session's outgoing queue, bounded in packets and bytes.

    Past a bound nothing more is queued: ``overflow`` is called once with the outbox,
    and the packets are dropped until :meth:`finish`. ``None`` (Engine.IO's "stop")
    always gets in. Once half full, each put lets other tasks run first, so that a burst
    of events reaches the writers of the clients that keep up before their bound does.
    """

    def __init__(
        self, max_packets: int, max_bytes: int, overflow: Callable[[Outbox], None]
    ) -> None:
        super().__init__()
        self._max_packets = max_packets
        self._max_bytes = max_bytes
        self._overflow = overflow
        self._sizes: deque[int] = deque()
        self.bytes = 0
        self.overflowed = False

    async def put(self, item: Any) -> None:
        """Queue ``item`` (see the class docs)."""
        if self.qsize() >= self._max_packets // 2 or self.bytes >= self._max_bytes // 2:
            await asyncio.sleep(0)
        self.put_nowait(item)

    def put_nowait(self, item: Any) -> None:
        """Queue ``item`` unless past a bound (see the class docs)."""
        if item is not None:
            if self.overflowed:
                return
            if self.qsize() >= self._max_packets or self.bytes >= self._max_bytes:
                self.overflowed = True
                self._overflow(self)
                return
        super().put_nowait(item)

    def finish(self, packets: Iterable[Any]) -> None:
        """Drop what waits, then queue ``packets`` and ``None``, bounds aside."""
        while not self.empty():
            self.get_nowait()
            self.task_done()
        for packet in (*packets, None):
            super().put_nowait(packet)

    def _put(self, item: Any) -> None:
        size = 0 if item is None else packet_size(item)
        self._sizes.append(size)
        self.bytes += size
        super()._put(item)

    def _get(self) -> Any:
        self.bytes -= self._sizes.popleft()
        return super()._get()


class SessionLimits:
    """The per-client limits of one gateway (see the module docs).

    ``sio`` is the gateway's Socket.IO server (its Engine.IO sessions get an
    :class:`Outbox` each from now on), ``hub`` its routing tables (which connections are
    live).
    """

    def __init__(self, sio: socketio.AsyncServer, hub: Hub, settings: Settings) -> None:
        self.settings = settings
        self._sio = sio
        self._hub = hub
        self._unconnected: dict[str, float] = {}  # Engine.IO sid -> first seen so
        self._tasks: set[asyncio.Task[None]] = set()
        #: Sessions ended: never connected in time, or fell too far behind.
        self.timed_out = 0
        self.overflowed = 0
        eio = sio.eio
        eio.max_http_buffer_size = settings.gateway_max_message_bytes
        eio.create_queue = self._outbox  # how Engine.IO makes each session's queue

    def admit_user(self, sid: str, user_id: uuid.UUID) -> None:
        """Admit connection ``sid`` of ``user_id``, which joins the hub next (with nothing
        awaited in between: two connects cannot both take the last place, the hub counts).

        Raises:
            socketio.exceptions.ConnectionRefusedError: the user has as many connections
                as allowed (``connect_error`` code ``too_many_connections``).
        """
        cap = self.settings.gateway_max_connections_per_user
        if self._hub.connections_of(user_id) >= cap:
            raise socketio.exceptions.ConnectionRefusedError(
                f"at most {cap} connections per user; close one first",
                {"code": "too_many_connections"},
            )

    async def sweep(self, now: float) -> int:
        """Close the Engine.IO sessions without a connected namespace for the connect
        timeout (``now`` on :func:`time.monotonic`'s clock); how many."""
        timeout = self.settings.gateway_connect_timeout_s
        sockets: dict[str, Any] = self._sio.eio.sockets
        manager = self._sio.manager
        namespaces = list(manager.get_namespaces())
        for gone in self._unconnected.keys() - sockets.keys():
            del self._unconnected[gone]
        late = []
        for eio_sid, session in list(sockets.items()):
            if session.closing or session.closed:
                continue
            if any(manager.sid_from_eio_sid(eio_sid, ns) is not None for ns in namespaces):
                self._unconnected.pop(eio_sid, None)
            elif now - self._unconnected.setdefault(eio_sid, now) >= timeout:
                late.append(session)
        for count, session in enumerate(late, start=1):
            self._unconnected.pop(session.sid, None)
            await self._end(session)
            if count % _BATCH == 0:
                await asyncio.sleep(0)
        self.timed_out += len(late)
        return len(late)

    async def run(self) -> None:
        """Sweep (:meth:`sweep`) a few times per connect timeout, until cancelled."""
        interval = min(1.0, self.settings.gateway_connect_timeout_s / 4)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.sweep(time.monotonic())
            except Exception:  # the next round tries again
                log.exception("closing the sessions that never connected failed")

    def _outbox(self) -> Outbox:
        return Outbox(
            self.settings.gateway_send_queue_messages,
            self.settings.gateway_send_queue_bytes,
            self._overflowed,
        )

    def _overflowed(self, outbox: Outbox) -> None:
        session = next((s for s in self._sio.eio.sockets.values() if s.queue is outbox), None)
        if session is None:  # not registered yet, or gone: nothing to end
            outbox.finish([])
            return
        self.overflowed += 1
        task = asyncio.get_running_loop().create_task(self._overflow(session))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _overflow(self, session: Any) -> None:
        """Replace what waits by a ``gap`` event and Engine.IO's CLOSE, and disconnect the
        namespace (its handlers learn it is gone). The session itself stays until its
        client takes them, the transport ends, or the connect timeout sweeps it: a
        polling client can fetch nothing from a closed session."""
        log.info("ending Engine.IO session %s: it fell too far behind", session.sid)
        sid = self._sio.manager.sid_from_eio_sid(session.sid, "/")
        last = [engineio.packet.Packet(engineio.packet.CLOSE)]
        if sid is not None:
            encoded = self._sio.packet_class(
                socketio.packet.EVENT, namespace="/", data=["gap", {"reason": "overflow"}]
            ).encode()
            last.insert(0, engineio.packet.Packet(engineio.packet.MESSAGE, encoded))
        session.queue.finish(last)
        if sid is not None:
            await self._sio.disconnect(sid)

    async def _end(self, session: Any) -> None:
        """End an Engine.IO session now: its handlers learn it is gone, its transport
        sends Engine.IO's CLOSE (if it can) and stops."""
        await session.close(wait=False, abort=True, reason=self._sio.eio.reason.SERVER_DISCONNECT)
        session.queue.finish([engineio.packet.Packet(engineio.packet.CLOSE)])
