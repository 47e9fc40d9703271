"""What a client may send the gateway, checked before any handler sees it.

python-socketio and python-engineio trust their input: an empty or garbled frame, a
packet of an unknown type or an event that is not ``[NAME, ...]`` raises inside them,
and they log the traceback (or, for a bad Engine.IO frame, the server does and the
connection lingers until the heartbeat gives up); an event named ``connect`` or
``disconnect`` runs that handler again. :class:`GuardedServer` is the Socket.IO server
with the checks in front:

- **Frames** (Engine.IO, on either transport): a frame that is empty, binary (the
  gateway speaks JSON only), too large, not an Engine.IO packet or holding JSON nested
  too deeply to decode closes the connection at once; so does a Socket.IO message that
  does not decode, is of a type a client does not send (``CONNECT_ERROR``, binary
  events) or is an event that is not ``[NAME, ...]``.
- **Calls**: only the events in ``client_events`` reach handlers, each with exactly one
  argument; anything else (``connect``, ``disconnect``, an unknown name, no argument)
  is answered, when the client asked for an answer, with ``{"ok": false, "error":
  {"code": "invalid_request", ...}}``, and the connection stays. An integer of more than
  100 digits is read as :data:`OVERSIZED` (which no handler accepts) instead of failing
  the whole packet, so that call too gets its answer. Calls past the connection's rate
  (:attr:`GuardedServer.calls`) reach no handler either: they are answered ``{"ok":
  false, "error": {"code": "rate_limited", "retry_after_ms": N, ...}}``.

Every refusal is counted (:attr:`Mistakes.count`) and the first of each connection is
logged, in one line: a client cannot make the log grow faster than it connects.
"""

from __future__ import annotations

import functools
import json
import logging
import urllib.parse
from collections.abc import Awaitable, Callable, Collection
from typing import Any

import engineio.async_drivers.asgi
import engineio.exceptions
import socketio
import socketio.packet

from azora.errors import quoted
from azora.gateway.rates import RateLimit

log = logging.getLogger(__name__)

#: The Engine.IO packet types (their first character); anything else is not a frame.
_ENGINE_TYPES = frozenset("0123456")
#: Packets in one long-polling POST, at most (as python-engineio allows).
_MAX_POLLED = 16
#: The longest integer, in digits, read from a client's JSON (as python-engineio allows).
_MAX_DIGITS = 100


class _Oversized:
    """An integer of more than 100 digits, as the gateway reads it (see the module docs)."""

    def __repr__(self) -> str:
        return "<an integer of more than 100 digits>"


#: What an integer of more than 100 digits becomes.
OVERSIZED = _Oversized()


def _integer(digits: str) -> int | _Oversized:
    return int(digits) if len(digits) <= _MAX_DIGITS else OVERSIZED


class _Json:
    """The JSON of the gateway's Socket.IO packets (read with :func:`_integer`)."""

    @staticmethod
    def loads(text: str | bytes, **kwargs: Any) -> Any:
        return json.loads(text, parse_int=_integer)

    @staticmethod
    def dumps(value: Any, **kwargs: Any) -> str:
        return json.dumps(value, **kwargs)


class _Packet(socketio.packet.Packet):  # type: ignore[misc]  # python-socketio is untyped
    json = _Json


class Mistakes:
    """What clients sent that the gateway refused: :attr:`count` of them, and the first
    of each connection (Engine.IO session) logged, without a traceback."""

    def __init__(self) -> None:
        self.count = 0
        self._logged: set[str] = set()

    def note(self, session: str, what: str) -> None:
        """Count one refusal; log it if it is the first of ``session``."""
        self.count += 1
        if session in self._logged:
            return
        self._logged.add(session)
        log.info(
            "connection %s sent %s; what it sends wrong from now on is only counted", session, what
        )

    def forget(self, session: str) -> None:
        """``session`` has ended (its next refusal, if any, would be logged again)."""
        self._logged.discard(session)


class _Unreadable(Exception):
    """A message that is not a Socket.IO packet a client may send (the reason)."""


class _Refused(engineio.exceptions.EngineIOError):  # type: ignore[misc]  # untyped library
    """A long-polling POST with a malformed payload: python-engineio answers it with a
    400 (without logging); its session was closed already."""


class GuardedServer(socketio.AsyncServer):  # type: ignore[misc]  # python-socketio is untyped
    """A Socket.IO server (ASGI) that checks what clients send (see the module docstring).

    ``client_events`` names the events clients may send; :attr:`mistakes` counts what
    was refused. Other arguments are python-socketio's.
    """

    def __init__(
        self,
        *,
        client_events: Collection[str],
        calls: RateLimit | None = None,
        **options: Any,
    ) -> None:
        super().__init__(async_mode="asgi", serializer=_Packet, **options)
        self.client_events = frozenset(client_events)
        #: Calls per connection: past it a call is answered ``rate_limited`` unread.
        self.calls = calls if calls is not None else RateLimit(0, 1)
        self.mistakes = Mistakes()
        drivers = dict(self.eio._async)  # the module's own: copied, never changed
        drivers["websocket"] = functools.partial(_CheckedWebSocket, mistakes=self.mistakes)
        drivers["translate_request"] = _checking_posts(
            drivers["translate_request"], self.eio, self.mistakes
        )
        self.eio._async = drivers

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        """Dispatch one Socket.IO message, or close the connection if it is unreadable."""
        try:
            packet = self._read(data)
        except _Unreadable as problem:
            self.mistakes.note(eio_sid, str(problem))
            session = self.eio.sockets.get(eio_sid)
            if session is not None:
                # Not python-engineio's disconnect(): it waits until the client has
                # polled the CLOSE packet, and one that never polls would hold this.
                await session.close(wait=False, reason=self.eio.reason.TRANSPORT_ERROR)
            return
        if packet.packet_type == socketio.packet.CONNECT:
            await self._handle_connect(eio_sid, packet.namespace, packet.data)
        elif packet.packet_type == socketio.packet.DISCONNECT:
            await self._handle_disconnect(eio_sid, packet.namespace, self.reason.CLIENT_DISCONNECT)
        elif packet.packet_type == socketio.packet.EVENT:
            await self._handle_call(eio_sid, packet)
        else:  # an answer, though the gateway never asks clients anything
            self.mistakes.note(eio_sid, "an acknowledgement nothing asked for")

    async def _handle_eio_disconnect(self, eio_sid: str, reason: Any) -> None:
        self.mistakes.forget(eio_sid)
        self.calls.forget(eio_sid)
        await super()._handle_eio_disconnect(eio_sid, reason)

    def _read(self, data: Any) -> Any:
        if not isinstance(data, str) or not data:
            raise _Unreadable("an empty or binary message")
        try:
            packet = self.packet_class(encoded_packet=data)
        except (ValueError, RecursionError):
            raise _Unreadable("a message that is not a Socket.IO packet") from None
        kind = packet.packet_type
        if kind not in (
            socketio.packet.CONNECT,
            socketio.packet.DISCONNECT,
            socketio.packet.EVENT,
            socketio.packet.ACK,
        ):
            raise _Unreadable(f"a Socket.IO packet of type {quoted(kind)}")
        if kind == socketio.packet.EVENT and not (
            isinstance(packet.data, list) and packet.data and isinstance(packet.data[0], str)
        ):
            raise _Unreadable("an event that is not [NAME, ...]")
        return packet

    async def _handle_call(self, eio_sid: str, packet: Any) -> None:
        name, arguments = packet.data[0], packet.data[1:]
        namespace = packet.namespace or "/"
        sid = self.manager.sid_from_eio_sid(eio_sid, namespace)
        if sid is None or not self.manager.is_connected(sid, namespace):
            self.mistakes.note(eio_sid, "an event before connecting")
            return
        if name not in self.client_events:
            problem = (
                f"{quoted(name)} is not an event a client can send"
                f" (those are: {', '.join(sorted(self.client_events))})"
            )
        elif len(arguments) != 1:
            problem = f"{name} takes one argument, an object"
        elif wait_ms := self.calls.acquire(eio_sid):
            await self._answer(eio_sid, namespace, packet.id, _too_often(wait_ms))
            return
        else:
            await self._handle_event(eio_sid, packet.namespace, packet.id, packet.data)
            return
        self.mistakes.note(eio_sid, f"a malformed call: {problem}")
        answer = {"ok": False, "error": {"code": "invalid_request", "message": problem}}
        await self._answer(eio_sid, namespace, packet.id, answer)

    async def _answer(
        self, eio_sid: str, namespace: str, call_id: int | None, answer: dict[str, Any]
    ) -> None:
        if call_id is not None:  # a call that asks for no answer gets none
            await self._send_packet(
                eio_sid,
                self.packet_class(
                    socketio.packet.ACK, namespace=namespace, id=call_id, data=[answer]
                ),
            )


def _too_often(wait_ms: int) -> dict[str, Any]:
    message = "too many calls on this connection: retry later"
    return {
        "ok": False,
        "error": {"code": "rate_limited", "message": message, "retry_after_ms": wait_ms},
    }


def _frame_problem(frame: Any, limit: int) -> str | None:
    """Why ``frame`` is not an Engine.IO frame the gateway accepts, or None."""
    if not isinstance(frame, str):
        return "binary data"
    if not frame:
        return "an empty frame"
    if len(frame) > limit:
        return f"a frame of more than {limit} characters"
    if frame[0] == "b":  # base64, on long-polling
        return "binary data"
    if frame[0] not in _ENGINE_TYPES:
        return "a frame that is not an Engine.IO packet"
    if len(frame) > 1 and not frame[1].isnumeric() and _too_deep(frame[1:]):
        return "a frame nested too deeply"
    return None


def _too_deep(data: str) -> bool:
    """True if ``data`` is JSON nested too deeply to decode.

    python-engineio reads the data of an Engine.IO packet not starting with a digit as
    JSON and lets only ``ValueError`` pass: a ``RecursionError`` would end the connection
    with a traceback in the log.
    """
    try:
        json.loads(data)
    except ValueError:
        return False
    except RecursionError:
        return True
    return False


class _CheckedWebSocket(engineio.async_drivers.asgi.WebSocket):  # type: ignore[misc]
    """python-engineio's ASGI WebSocket whose :meth:`wait` hands on only acceptable
    frames: on any other it closes the Engine.IO session and raises ``OSError``, which
    ends the connection. It also ends it once the session was closed."""

    def __init__(self, handler: Any, server: Any, *, mistakes: Mistakes) -> None:
        super().__init__(handler, server)
        self._session = getattr(handler, "__self__", None)  # the Engine.IO socket
        self._limit: int = server.max_http_buffer_size
        self._mistakes = mistakes

    async def wait(self) -> Any:
        session = self._session
        if session is not None and session.closed:
            raise OSError("the session is closed")
        frame = await super().wait()
        problem = _frame_problem(frame, self._limit)
        if problem is None:
            return frame
        if session is not None:
            self._mistakes.note(session.sid, problem)
            await session.close(wait=False, reason=session.server.reason.TRANSPORT_ERROR)
        raise OSError(problem)


class _CheckedBody:
    """A long-polling POST's body that refuses (:class:`_Refused`) a malformed payload,
    closing its Engine.IO session first.

    (python-engineio would close it too, but waits until the client has polled what is
    queued for it: a client that never polls would hold the request forever.)
    """

    def __init__(self, body: Any, session: Any, mistakes: Mistakes) -> None:
        self._body = body
        self._session = session
        self._mistakes = mistakes

    async def read(self, length: int | None = None) -> bytes:
        data: bytes = await self._body.read(length)
        problem = _payload_problem(data)
        if problem is not None:
            self._mistakes.note(self._session.sid, problem)
            await self._session.close(
                wait=False, reason=self._session.server.reason.TRANSPORT_ERROR
            )
            raise _Refused(problem)
        return data


def _payload_problem(data: bytes) -> str | None:
    """Why ``data`` is not a long-polling payload the gateway accepts, or None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "a payload that is not UTF-8"
    if not text:
        return None
    frames = text.split("\x1e")
    if len(frames) > _MAX_POLLED:
        return f"more than {_MAX_POLLED} packets in one payload"
    for frame in frames:
        problem = _frame_problem(frame, len(text))
        if problem is not None:
            return problem
    return None


def _checking_posts(
    translate: Callable[..., Awaitable[dict[str, Any]]], eio: Any, mistakes: Mistakes
) -> Callable[..., Awaitable[dict[str, Any]]]:
    """python-engineio's request translation, with the body of each POST to a session
    of ``eio`` checked."""

    async def translated(*args: Any, **kwargs: Any) -> dict[str, Any]:
        environ = await translate(*args, **kwargs)
        if environ.get("REQUEST_METHOD") == "POST" and "wsgi.input" in environ:
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            session = eio.sockets.get(query.get("sid", [""])[0])
            if session is not None:  # else python-engineio refuses it unread
                environ["wsgi.input"] = _CheckedBody(environ["wsgi.input"], session, mistakes)
        return environ

    return translated
