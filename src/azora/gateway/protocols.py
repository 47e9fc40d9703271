"""uvicorn's HTTP (httptools) and websocket (websockets' sans-I/O) protocols, with the
limits a server facing hostile clients needs and uvicorn leaves out.

HTTP (:class:`LimitedHttpProtocol`):

- the request target, the header section (count, and bytes with the request line) and
  the body are bounded while they are read: past a limit the client gets 414, 431 or 413
  and the connection closes (a body must announce its length: 411 otherwise). The bytes
  are counted before the parser sees them, because httptools keeps an unfinished header
  in memory whatever its length;
- a request must arrive whole (line, headers, body) within ``gateway_request_timeout_s``
  of its first byte, else 408; a connection with no request under way, a new one too,
  closes after ``gateway_keep_alive_s``;
- each connection is counted by the server's :class:`~azora.gateway.connections.ConnectionGuard`,
  which may refuse it (503), close it at once, or let it ask for ``GET /health`` only;
- an Engine.IO handshake (a request under ``/socket.io/`` without a ``sid``: a new
  session, polling or websocket) past its address's budget
  (:attr:`~azora.gateway.connections.ConnectionGuard.handshakes`) is answered 429 with
  ``Retry-After`` as soon as its head is read: before the websocket handshake is parsed
  again or the application is called, so a client opening sessions in a loop costs
  little more than its connections.

A refused request is answered, then what the client still sends is read and dropped for
at most :data:`LINGER_S` before closing: closing with unread data resets the connection,
and the client could lose the answer. At most :data:`LINGER_BYTES` are dropped so: past
them reading pauses until the close, so a client streaming without end costs the server
nothing more (:attr:`~azora.gateway.connections.ConnectionGuard.dropped` counts them).

Websockets (:class:`LimitedWebSocketProtocol`): a send never waits for the client to
read. uvicorn's would, while the Engine.IO queue in front of it grew without bound;
here the data not yet taken by the client's TCP connection is bounded instead
(``gateway_send_queue_bytes``): past it the connection is aborted (reset), which frees
its buffers at once. The kernel's own send buffer of each connection is bounded too
(``gateway_socket_send_buffer_bytes``; Linux grows it up to 4 MiB otherwise), so a
client that stops reading holds at most both. The Engine.IO session ends with it; the
client reconnects with its ``last_event_id`` and catches up. Messages from the client are bounded by
``gateway_max_message_bytes`` (uvicorn's ``ws_max_size``; larger closes with 1009).
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import parse_qs

import httptools
import uvicorn
from uvicorn._types import ASGISendEvent
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from azora.gateway.connections import Admission, ConnectionGuard

log = logging.getLogger(__name__)

#: How long a refused request's remaining bytes are read (and dropped) before closing.
LINGER_S = 2.0
#: How many of a refused request's remaining bytes are read (and dropped), at most.
LINGER_BYTES = 65_536


class TransportConfig(uvicorn.Config):
    """uvicorn's configuration with the gateway's protocols and the guard they share."""

    def __init__(self, app: Any, guard: ConnectionGuard, **options: Any) -> None:
        settings = guard.settings
        super().__init__(
            app,
            http=LimitedHttpProtocol,
            ws=LimitedWebSocketProtocol,
            ws_max_size=settings.gateway_max_message_bytes,
            timeout_keep_alive=settings.gateway_keep_alive_s,
            **options,
        )
        self.guard = guard


#: Where Engine.IO sessions start (a request there without a ``sid`` is a handshake).
ENGINE_IO_PATH = b"/socket.io/"


class _Refusal(Exception):
    """Raised in a parser callback: answer ``status`` (with ``retry_after_s``, if any)
    and close."""

    def __init__(self, status: HTTPStatus, retry_after_s: int | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.retry_after_s = retry_after_s


def _answer(status: HTTPStatus, retry_after_s: int | None = None) -> bytes:
    body = status.phrase.encode()
    retry = f"retry-after: {retry_after_s}\r\n" if retry_after_s is not None else ""
    return (
        f"HTTP/1.1 {status.value} {status.phrase}\r\n"
        f"content-type: text/plain; charset=utf-8\r\n{retry}"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with limits and timeouts (see the module docs)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = cast(TransportConfig, config).guard
        settings = self.guard.settings
        self._max_line = settings.gateway_max_request_line_bytes
        self._max_head = settings.gateway_max_header_bytes
        self._max_headers = settings.gateway_max_headers
        self._max_body = settings.gateway_max_message_bytes
        self._request_timeout = settings.gateway_request_timeout_s
        self._in_head = True  # between requests or reading one's head
        self._head_bytes = 0
        self._header_count = 0
        self._health_only = False
        self._lingering = False
        self._dropped = 0  # bytes read and dropped since the refusal
        self._request_timer: asyncio.TimerHandle | None = None

    # -- the connection -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection; refuse it, or wait for its first request."""
        peer = transport.get_extra_info("peername")
        if self.guard.opens_too_often(peer[0] if isinstance(peer, tuple) else None):
            self.transport = transport  # for connection_lost
            transport.abort()
            return
        super().connection_made(transport)
        admission = self.guard.admit(transport, self.client[0] if self.client else None)
        if admission is Admission.FULL:
            transport.abort()
        elif admission is Admission.BUSY:
            self._refuse(HTTPStatus.SERVICE_UNAVAILABLE)
        else:
            self._health_only = admission is Admission.HEALTH_ONLY
            send_buffer = self.guard.settings.gateway_socket_send_buffer_bytes
            sock = transport.get_extra_info("socket")
            if send_buffer and sock is not None:
                # The kernel would let a client that stops reading hold up to 4 MiB.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
            # uvicorn waits for the first request without limit.
            self.timeout_keep_alive_task = self.loop.call_later(
                self.timeout_keep_alive, self.timeout_keep_alive_handler
            )

    def connection_lost(self, exc: Exception | None) -> None:
        """Stop the timers and uncount the connection."""
        self._stop_request_timer()
        self.guard.release(self.transport)
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Parse ``data``, counting the bytes of a request's head before the parser
        keeps them."""
        if self._lingering:  # what a refused client still sends: dropped, up to a bound
            self._dropped += len(data)
            self.guard.dropped += len(data)
            if self._dropped >= LINGER_BYTES:
                self.transport.pause_reading()  # until the close
            return
        self._unset_keepalive_if_required()
        self._start_request_timer()
        if not self._in_head:
            self._feed(data)
            return
        room = self._max_head - self._head_bytes
        if len(data) <= room:
            self._head_bytes += len(data)
            self._feed(data)
            return
        # Parse what fits: the head may end within it, the rest is then body or the
        # next request.
        self._head_bytes = self._max_head
        if not self._feed(data[:room]):
            return
        if self._in_head:
            self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
            return
        self.data_received(data[room:])

    def _feed(self, data: bytes) -> bool:
        """Parse ``data``; False once the connection is refused, closing, or handed over
        to the websocket protocol."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            refusal = error.__context__
            if isinstance(refusal, _Refusal):
                self._refuse(refusal.status, refusal.retry_after_s)
            else:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            return False
        except httptools.HttpParserError:
            self.logger.warning("Invalid HTTP request received.")
            self.send_400_response("Invalid HTTP request received.")
            return False
        except httptools.HttpParserUpgrade:
            self._stop_request_timer()
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return False
        return not self.transport.is_closing()

    def _refuse(self, status: HTTPStatus, retry_after_s: int | None = None) -> None:
        """Answer ``status`` and close (the module docs say why not at once)."""
        self._stop_request_timer()
        self._unset_keepalive_if_required()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the application's answer, if any, is dropped
            cycle.message_event.set()
            if cycle.response_started:  # too late to answer
                self.transport.close()
                return
        self.transport.write(_answer(status, retry_after_s))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._lingering = True
        self.flow.resume_reading()
        self.loop.call_later(LINGER_S, self.transport.close)

    # -- the request timeout ------------------------------------------------------------

    def _start_request_timer(self) -> None:
        if self._request_timer is None:
            self._request_timer = self.loop.call_later(
                self._request_timeout, self._request_timed_out
            )

    def _stop_request_timer(self) -> None:
        if self._request_timer is not None:
            self._request_timer.cancel()
            self._request_timer = None

    def _request_timed_out(self) -> None:
        self._request_timer = None
        if not self.transport.is_closing():
            self._refuse(HTTPStatus.REQUEST_TIMEOUT)

    # -- parser callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        """A request starts: its limits count from zero, its timeout runs."""
        super().on_message_begin()
        self._header_count = 0
        self._start_request_timer()

    def on_url(self, url: bytes) -> None:
        """Refuse a request target longer than the limit (414)."""
        if len(self.url) + len(url) > self._max_line:
            raise _Refusal(HTTPStatus.REQUEST_URI_TOO_LONG)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        """Refuse more headers than the limit (431)."""
        self._header_count += 1
        if self._header_count > self._max_headers:
            raise _Refusal(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """Refuse a body larger than the limit (413) or of unannounced length (411: no
        route takes a streamed body), anything but ``GET /health`` on a connection past
        the budget (503), and a handshake past its address's budget (429); else start
        the request."""
        self._in_head = False
        if self._health_only and not self._asks_for_health():
            raise _Refusal(HTTPStatus.SERVICE_UNAVAILABLE)
        handshakes = self.guard.handshakes
        if handshakes is not None and handshakes.rate and self._is_handshake():
            wait_ms = handshakes.acquire(self.client[0] if self.client else None)
            if wait_ms:
                raise _Refusal(HTTPStatus.TOO_MANY_REQUESTS, math.ceil(wait_ms / 1000))
        for name, value in self.headers:
            if name == b"content-length" and int(value) > self._max_body:
                raise _Refusal(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            if name == b"transfer-encoding":
                raise _Refusal(HTTPStatus.LENGTH_REQUIRED)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The request arrived whole: its timeout stops, the next one's head counts."""
        self._stop_request_timer()
        self._in_head = True
        self._head_bytes = 0
        super().on_message_complete()

    def _is_handshake(self) -> bool:
        target = httptools.parse_url(self.url)
        return target.path.startswith(ENGINE_IO_PATH) and b"sid" not in parse_qs(
            target.query or b""
        )

    def _asks_for_health(self) -> bool:
        return (
            self.parser.get_method() == b"GET"
            and not self.parser.should_upgrade()
            and httptools.parse_url(self.url).path == b"/health"
        )


class LimitedWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websocket protocol whose unsent data is bounded (see the module docs)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.guard = cast(TransportConfig, config).guard
        self._max_unsent = self.guard.settings.gateway_send_queue_bytes
        #: Set once the client fell further behind than the bound.
        self.overflowed = False

    def pause_writing(self) -> None:
        """Go on sending: :meth:`send` bounds what waits instead."""

    def resume_writing(self) -> None:
        """Nothing waits for it (see :meth:`pause_writing`)."""

    async def send(self, message: ASGISendEvent) -> None:
        """Send as uvicorn does, without waiting; a client already further behind than
        the bound is cut off (the connection aborted) instead.

        Raises:
            ClientDisconnected: the connection is gone, or was cut off.
        """
        if (
            message["type"] == "websocket.send"
            and self.handshake_complete
            and not self.close_sent
            and self.transport.get_write_buffer_size() >= self._max_unsent
        ):
            if not self.overflowed:
                self.overflowed = True
                log.info("cutting off a websocket client that stopped reading")
                self.transport.abort()
            raise ClientDisconnected()
        await super().send(message)

    def connection_lost(self, exc: Exception | None) -> None:
        """Uncount the connection."""
        self.guard.release(self.transport)
        super().connection_lost(exc)
