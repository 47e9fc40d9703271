"""The gateway's ASGI application: Socket.IO for live events, plus two HTTP routes.

The Socket.IO protocol, for a client (python-socketio, socket.io-client, ...):

- **Connect** with ``auth = {"token": ACCESS_TOKEN}``; optionally ``"subscribe":
  [PATTERN, ...]`` (public event patterns, as in ``subscribe`` below) and
  ``"last_event_id": ID`` when reconnecting. A missing, expired, revoked or forged
  token is refused (``connect_error``) with ``{"message": ..., "data": {"code":
  "unauthorized"}}``, a malformed request with the code ``invalid_request``; connecting
  too often (per address, per user: :mod:`azora.gateway.rates`) with ``rate_limited``
  and ``"retry_after_ms": N``. The
  connection joins its user: every event whose subject is that user is pushed to it,
  under the event's type as the Socket.IO event name, with the envelope (EVENTS.md) as
  its data.
- With ``last_event_id`` the client first receives what it missed (see
  :mod:`azora.gateway.history`): a ``gap`` event ``{"reason": "expired"|"truncated",
  "since": ID}`` if the history cannot give all of it, the missed events, then
  ``caught_up`` ``{"count": N}``; live events follow, none twice. Catch-ups are
  rationed (:mod:`azora.gateway.admission`: a few per user, ``AZORA_GATEWAY_CATCH_UP_*``
  per process); past that the client gets ``gap`` ``{"reason": "busy", "since": ID,
  "retry_after_ms": N}`` and ``caught_up`` ``{"count": 0}``, then live events: it
  should reconnect with ``last_event_id`` ``ID`` after that many milliseconds (or
  reload). It always gets ``caught_up``; an id from the future has nothing after it.
- ``subscribe`` / ``unsubscribe`` with ``{"patterns": [...]}`` add or remove public
  patterns (``finance.*``, ``system.>``, exact names; at most 64 per connection, each
  at most 200 characters). The answer (the Socket.IO ack) ``{"ok": true, "count": N}``
  (how many patterns the connection holds now) is sent only once the subscription is
  live, so no event published after it can be missed. Patterns select public events
  only: another user's events are never sent, and asking for a room or another user is
  refused (``{"ok": false, "error": {"code": "forbidden", ...}}``).
- Only ``subscribe``, ``unsubscribe`` and ``authenticate`` may be sent, each with one
  object; anything else (``connect`` or ``disconnect`` as an event included) is
  answered ``{"ok": false, "error": {"code": "invalid_request", ...}}``, and a frame
  that is not a Socket.IO packet closes the connection (:mod:`azora.gateway.guard`,
  which counts them: ``invalid_input`` in ``GET /health``). Error messages quote at
  most 40 characters of what was sent. Calls come at most
  ``AZORA_GATEWAY_CALL_RATE_PER_CONNECTION`` a second (after a burst); past it one is
  answered ``{"ok": false, "error": {"code": "rate_limited", "retry_after_ms": N}}``.
- Heartbeats are Engine.IO's pings (``AZORA_GATEWAY_PING_INTERVAL_S`` and
  ``..._TIMEOUT_S``): a client that stops answering is dropped.
- A connection lives as long as its access token and its session: every
  ``AZORA_GATEWAY_REVERIFY_S`` the gateway checks each connection's token again (through
  the auth cache) and ends those whose token expired or whose session was revoked, after
  a ``session_ended`` event ``{"reason": "token_expired"|"session_revoked"|...}``. A
  client keeps its connection by sending ``authenticate`` ``{"token": NEW_TOKEN}`` (the
  same user's fresher token) before the old one expires, or reconnects with
  ``last_event_id`` and loses nothing.

HTTP on the same server: ``GET /`` (name, version and :data:`LINKS`), ``GET /health``
(databases, bus, connections, refused input, catch-ups; 503 when a database is down)
and ``GET /events/types`` (every event type with its payload's JSON Schema).

Several gateway processes can serve behind one bus: each opens its own tap and serves
its own connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import json
import logging
import socket
import uuid
from collections.abc import Iterator, Mapping
from types import TracebackType
from typing import Any

import engineio.packet
import socketio
import socketio.packet
import uvicorn
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from azora import __version__
from azora.auth.service import AuthService
from azora.catalog import SERVICES
from azora.db.engines import Databases
from azora.db.health import RecentHealth
from azora.errors import AzoraError, quoted
from azora.events.bus import Bus, Tap
from azora.events.catalog import CATALOG
from azora.events.envelope import Envelope
from azora.gateway.admission import Busy, CatchUpGate, LoopShare
from azora.gateway.connections import ConnectionGuard
from azora.gateway.errors import AddressUnavailable, InvalidRequest
from azora.gateway.guard import GuardedServer
from azora.gateway.history import CatchUp, catch_up
from azora.gateway.hub import MAX_PATTERNS, Connection, Hub
from azora.gateway.limits import SessionLimits
from azora.gateway.protocols import TransportConfig
from azora.gateway.rates import RateLimit
from azora.settings import Settings

log = logging.getLogger(__name__)

#: The events a client may send (azora.gateway.guard refuses every other name).
CLIENT_EVENTS = ("subscribe", "unsubscribe", "authenticate")

#: Connects whose session is checked at once (the others wait their turn).
VERIFIED_AT_ONCE = 4

#: What ``GET /`` points to, by name.
LINKS = {"health": "/health", "events": "/events/types", "socket.io": "/socket.io/"}


def settle_memory() -> None:
    """Keep the garbage collector's pauses short in a serving process.

    Call once the process has started: everything allocated so far (the imported modules
    and the application, hundreds of thousands of objects) is exempted from collection
    scans (``gc.freeze``), and young collections run every 50,000 allocations instead of
    700, so the full collections that scan every live object come rarely. Most garbage is
    freed by reference counting anyway; the collector only finds cycles.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host``:``port`` (0 picks a free port), to hand to
    :meth:`GatewayServer.serve` (``sockets=[...]``), which closes it when it stops.

    Binding before anything else lets a command refuse a taken port before it starts.

    Raises:
        AddressUnavailable: the port is taken, not permitted, or the host is not local.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as error:
        raise AddressUnavailable(host, port, error) from None


class GatewayServer(uvicorn.Server):
    """uvicorn serving a gateway's ASGI app; :attr:`ready` is set once it listens.

    ``port`` 0 picks a free port (see :attr:`port`); or pass a socket from :func:`listen`
    to :meth:`serve`. The gateway itself (its tap) must be started around :meth:`serve`.
    Signals are the caller's: it stops when :attr:`should_exit` is set (or through
    :meth:`handle_exit`).

    Hostile clients meet the limits of :mod:`azora.gateway.protocols` (requests, timeouts,
    websocket send bounds), :attr:`connections` (per address, in all, stalled sends) and
    the gateway's :class:`~azora.gateway.limits.SessionLimits`, swept while it serves.
    """

    def __init__(self, gateway: Gateway, host: str, port: int) -> None:
        self.connections = ConnectionGuard(
            gateway.limits.settings, opens=gateway.opens, handshakes=gateway.handshakes
        )
        super().__init__(
            TransportConfig(
                gateway.asgi,
                self.connections,
                host=host,
                port=port,
                lifespan="off",
                log_level="warning",
                access_log=False,
            )
        )
        self.ready = asyncio.Event()
        self._limits = gateway.limits
        self._sweepers: list[asyncio.Task[None]] = []

    @property
    def port(self) -> int:
        """The port it listens on (once :attr:`ready`)."""
        port: int = self.servers[0].sockets[0].getsockname()[1]
        return port

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """Start listening and sweeping, then set :attr:`ready` (not if binding failed)."""
        await super().startup(sockets)
        if not self.should_exit:
            self._sweepers = [
                asyncio.create_task(self.connections.run(), name="gateway-stalled-sends"),
                asyncio.create_task(self._limits.run(), name="gateway-unconnected-sessions"),
            ]
            self.ready.set()

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """Stop serving, then sweeping (a stalled connection must not hold the stop up)."""
        try:
            await super().shutdown(sockets)
        finally:
            for sweeper in self._sweepers:
                sweeper.cancel()
            await asyncio.gather(*self._sweepers, return_exceptions=True)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave signal handling alone.

        uvicorn's own would restore the disposition the process inherited once stopped
        and raise the signal again: ignored SIGINT (a background job's) made a stopped
        server look like a clean exit, and SIGTERM killed the process before it closed
        its databases. ``azora serve`` installs its own handlers instead.
        """
        yield


class Gateway:
    """One gateway process: the hub, its tap on ``bus``, and the ASGI app :attr:`asgi`.

    Use it as an async context manager (or :meth:`start` / :meth:`stop`) around serving
    :attr:`asgi`: the tap opens before the first connection is accepted.
    """

    def __init__(
        self, databases: Databases, bus: Bus, auth: AuthService, settings: Settings
    ) -> None:
        self._databases = databases
        self._bus = bus
        self._auth = auth
        self._catch_up_limit = settings.gateway_catch_up_limit
        self._reverify_s = settings.gateway_reverify_s
        self._tokens: dict[str, str] = {}  # sid -> the access token it presented last
        self._verifying = asyncio.Semaphore(VERIFIED_AT_ONCE)
        # How often sessions may start (azora.gateway.rates): refused before costing more
        # (handshakes by GatewayServer's HTTP protocol, connects in _connect).
        self.opens = RateLimit(
            settings.gateway_connection_rate_per_ip, settings.gateway_connection_burst_per_ip
        )
        self.handshakes = RateLimit(
            settings.gateway_handshake_rate_per_ip, settings.gateway_handshake_burst_per_ip
        )
        self.connects_per_address = RateLimit(
            settings.gateway_connect_rate_per_ip, settings.gateway_connect_burst_per_ip
        )
        self.connects_per_user = RateLimit(
            settings.gateway_connect_rate_per_user, settings.gateway_connect_burst_per_user
        )
        self.sio = GuardedServer(  # azora.gateway.guard: what clients may send
            client_events=CLIENT_EVENTS,
            calls=RateLimit(
                settings.gateway_call_rate_per_connection,
                settings.gateway_call_burst_per_connection,
            ),
            cors_allowed_origins=list(settings.gateway_cors_origins),
            ping_interval=settings.gateway_ping_interval_s,
            ping_timeout=settings.gateway_ping_timeout_s,
            logger=False,
            engineio_logger=_ClientMistakesAtDebug(logging.getLogger("engineio.server")),
        )
        self.hub = Hub(self._emit, recent_bytes=settings.gateway_recent_bytes)
        self.catch_ups = CatchUpGate(
            running=settings.gateway_catch_up_concurrency,
            waiting=settings.gateway_catch_up_queue,
            per_user=settings.gateway_catch_up_per_user,
            rate_per_user=settings.gateway_catch_up_rate_per_user,
            burst_per_user=settings.gateway_catch_up_burst_per_user,
        )
        self.catch_up_pace = LoopShare(settings.gateway_catch_up_share)
        self._catching_up: dict[str, asyncio.Task[None]] = {}  # sid -> its catch-up
        self.limits = SessionLimits(self.sio, self.hub, settings)  # azora.gateway.limits
        self._database_health = RecentHealth(
            databases,
            [spec.migrations for spec in SERVICES.values()],
            max_age_s=settings.gateway_health_max_age_s,
        )
        self._tap: Tap | None = None
        self._task: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._register_handlers()
        http = Starlette(
            routes=[
                Route("/", self._landing, methods=["GET"]),
                Route("/health", self._health, methods=["GET"]),
                Route("/events/types", self._types, methods=["GET"]),
            ]
        )
        self.asgi = socketio.ASGIApp(self.sio, other_asgi_app=http)

    async def start(self) -> None:
        """Open the tap and start routing; connections are served correctly from now on.

        Raises:
            BusUnavailable: the bus cannot be reached.
        """
        self._tap = await self._bus.tap(">")
        self._task = asyncio.create_task(self.hub.run(self._tap), name="gateway-hub")
        self._sweeper = asyncio.create_task(self._reverify_forever(), name="gateway-reverify")

    async def stop(self) -> None:
        """Disconnect every client and close the tap."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self._database_health.aclose()
        for sid in list(self.hub.connections):
            with contextlib.suppress(Exception):  # a client already gone
                await self.sio.disconnect(sid)
        # Their connections have left: the catch-ups still running stop at the next slice.
        await asyncio.gather(*self._catching_up.values(), return_exceptions=True)
        if self._tap is not None:
            await self._tap.aclose()
        if self._task is not None:
            with contextlib.suppress(Exception):  # ended by the closed tap
                await self._task

    async def __aenter__(self) -> Gateway:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- Socket.IO ----------------------------------------------------------------------

    def _register_handlers(self) -> None:
        self.sio.on("connect", self._connect)
        self.sio.on("disconnect", self._disconnect)
        self.sio.on("subscribe", self._subscribe)
        self.sio.on("unsubscribe", self._unsubscribe)
        self.sio.on("authenticate", self._authenticate)

    async def _emit(self, envelope: Envelope, encoded_envelope: str, sids: list[str]) -> None:
        # The Socket.IO packet is made once, from the envelope's JSON the hub keeps anyway,
        # and queued on each recipient's Engine.IO socket directly: python-socketio's own
        # emit encodes again and makes one task per recipient, which dominates a broadcast
        # to thousands of connections. (An EVENT of the default namespace: 2[NAME,DATA].)
        encoded = f"{socketio.packet.EVENT}[{json.dumps(envelope.type)},{encoded_envelope}]"
        message = engineio.packet.Packet(engineio.packet.MESSAGE, encoded)
        eio_sid_of = self.sio.manager.eio_sid_from_sid
        for sid in sids:
            eio_sid = eio_sid_of(sid, "/")
            if eio_sid is not None:  # not gone meanwhile
                await self.sio.eio.send_packet(eio_sid, message)

    async def _connect(self, sid: str, environ: Mapping[str, Any], auth: Any) -> None:
        # The rate limits come first, each before the work it spares: the address's before
        # the token is read, the user's before its session is (the database or the cache).
        wait_ms = self.connects_per_address.acquire(_client_address(environ))
        if wait_ms:
            raise _rate_limited(wait_ms)
        if not isinstance(auth, Mapping) or not isinstance(auth.get("token"), str):
            raise _refused("unauthorized", "connect with auth={'token': ACCESS_TOKEN}")
        try:
            user_id = self._auth.read_access_token(auth["token"]).user_id
        except AzoraError as error:
            raise _refused("unauthorized", error.message) from None
        wait_ms = self.connects_per_user.acquire(user_id)
        if wait_ms:
            raise _rate_limited(wait_ms)
        try:
            # A few at a time: a burst of connects (every client back after a restart)
            # then takes turns with live events instead of crowding them out.
            async with self._verifying:
                principal = await self._auth.verify_access_token(auth["token"])
        except AzoraError as error:
            raise _refused("unauthorized", error.message) from None
        try:
            patterns = _patterns(auth.get("subscribe", []))
            after = _event_id(auth.get("last_event_id"))
            self.limits.admit_user(sid, principal.user_id)  # refuses past the cap; joins next
            connection = self.hub.join(
                sid, principal.user_id, patterns, catching_up=after is not None
            )
        except AzoraError as error:
            raise _refused("invalid_request", error.message) from None
        self._tokens[sid] = auth["token"]
        if after is not None:
            task = asyncio.create_task(self._catch_up(connection, after), name="gateway-catch-up")
            self._catching_up[sid] = task
            task.add_done_callback(lambda _: self._catching_up.pop(sid, None))

    async def _catch_up(self, connection: Connection, after: uuid.UUID) -> None:
        """Send ``connection`` what it missed since ``after`` once the gate admits it (a
        ``busy`` gap if it does not), then ``caught_up``: always, unless it has left."""
        missed = CatchUp([])
        gap: dict[str, Any] | None = None
        try:
            async with self.catch_ups.admit(connection.sid, connection.user_id):
                if connection.active:
                    missed = await catch_up(
                        self._databases,
                        self.hub,
                        connection,
                        after,
                        limit=self._catch_up_limit,
                        pace=self.catch_up_pace,
                    )
        except Busy as busy:
            gap = {"reason": "busy", "since": str(after), "retry_after_ms": busy.retry_after_ms}
        except SQLAlchemyError as error:  # the history is down: every reconnect finds it so
            log.warning("catch-up for %s failed: %s", connection.sid, type(error).__name__)
            gap = {"reason": "unavailable", "since": str(after)}
        except Exception:
            log.exception("catch-up for %s failed", connection.sid)
            gap = {"reason": "unavailable", "since": str(after)}
        else:
            if missed.gap is not None:
                gap = {"reason": str(missed.gap), "since": str(after)}
        if not connection.active:
            return
        if gap is not None:
            await self.sio.emit("gap", gap, to=connection.sid)
        await self.hub.finish_catch_up(connection, missed.events, self.catch_up_pace)
        await self.sio.emit("caught_up", {"count": len(missed.events)}, to=connection.sid)

    async def _disconnect(self, sid: str, reason: Any = None) -> None:
        self.hub.leave(sid)
        self._tokens.pop(sid, None)

    async def _authenticate(self, sid: str, data: Any) -> dict[str, Any]:
        connection = self.hub.connections.get(sid)
        token = data.get("token") if isinstance(data, Mapping) else None
        if connection is None or not isinstance(token, str):
            return _refusal("invalid_request", "send {'token': ACCESS_TOKEN}")
        try:
            principal = await self._auth.verify_access_token(token)
        except AzoraError as error:
            return _refusal(error.code, error.message)
        if principal.user_id != connection.user_id:
            return _refusal("forbidden", "a connection stays with the user it was opened for")
        self._tokens[sid] = token
        return {"ok": True, "expires_at": principal.expires_at.isoformat()}

    async def reverify(self) -> int:
        """Check every connection's token again; end those no longer valid. How many ended."""
        ended = 0
        for count, (sid, token) in enumerate(list(self._tokens.items()), start=1):
            try:
                await self._auth.verify_access_token(token)
            except AzoraError as error:
                ended += 1
                with contextlib.suppress(Exception):  # the client may be gone already
                    await self.sio.emit(
                        "session_ended", {"reason": error.code, "message": error.message}, to=sid
                    )
                    await self.sio.disconnect(sid)
                self.hub.leave(sid)
                self._tokens.pop(sid, None)
            if count % 50 == 0:
                await asyncio.sleep(0)  # let events flow: a few ms per batch at most
        return ended

    async def _reverify_forever(self) -> None:
        while True:
            await asyncio.sleep(self._reverify_s)
            try:
                await self.reverify()
            except Exception:  # the next round tries again
                log.exception("re-verifying the gateway's connections failed")

    async def _subscribe(self, sid: str, data: Any) -> dict[str, Any]:
        return self._change(sid, data, self.hub.subscribe)

    async def _unsubscribe(self, sid: str, data: Any) -> dict[str, Any]:
        return self._change(sid, data, self.hub.unsubscribe)

    def _change(self, sid: str, data: Any, change: Any) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            return _refusal("invalid_request", "send {'patterns': [PATTERN, ...]}")
        if set(data) - {"patterns"}:
            return _refusal(
                "forbidden",
                "only public event patterns can be subscribed to; "
                "your own events come to you without asking",
            )
        try:
            patterns = _patterns(data.get("patterns"))
            current: list[str] = change(sid, patterns)
        except AzoraError as error:
            return _refusal(error.code, error.message)
        except KeyError:
            return _refusal("not_connected", "this connection is not registered")
        # How many, not which: the client knows what it asked for.
        return {"ok": True, "count": len(current)}

    # -- HTTP ---------------------------------------------------------------------------

    async def _landing(self, request: Request) -> JSONResponse:
        return JSONResponse({"name": "Azora", "version": __version__, "links": LINKS})

    async def _health(self, request: Request) -> JSONResponse:
        # No integrity check here: monitoring asks often, and SQLite's reads every page
        # (`azora db health` runs it). Checked at most once per AZORA_GATEWAY_HEALTH_MAX_AGE_S.
        results, age_s = await self._database_health.results()
        up = all(r.up for r in results)
        body = {
            "status": "ok" if up else "degraded",
            "version": __version__,
            "checked_ms_ago": round(age_s * 1000),
            "databases": {
                str(r.service): {"up": r.up, "latency_ms": r.latency_ms, "revision": r.revision}
                | ({} if r.up else {"error": r.error})
                for r in results
            },
            "bus": {"tapping": self._task is not None and not self._task.done()},
            "connections": len(self.hub.connections),
            "events_routed": self.hub.routed,
            # What clients sent that was refused (azora.gateway.guard), and catch-ups.
            "invalid_input": self.sio.mistakes.count,
            "rate_limited": {
                "connections": self.opens.refused,
                "handshakes": self.handshakes.refused,
                "connects": self.connects_per_address.refused + self.connects_per_user.refused,
                "calls": self.sio.calls.refused,
            },
            "catch_ups": {
                "running": self.catch_ups.running,
                "waiting": self.catch_ups.admitted - self.catch_ups.running,
                "refused": self.catch_ups.refused,
                "paced_ms": round(self.catch_up_pace.waited_s * 1000),
            },
        }
        return JSONResponse(body, status_code=200 if up else 503)

    async def _types(self, request: Request) -> JSONResponse:
        return JSONResponse({"types": _catalog_listing()})


class _ClientMistakesAtDebug(logging.LoggerAdapter[logging.Logger]):
    """Engine.IO's log with what clients get wrong at debug level.

    Engine.IO logs a bad request (``GET /socket.io/`` without its parameters, an unknown
    session, a refused connection) as an error or a warning; the client gets its 400 and
    the server has nothing to act on. Failures logged with their traceback keep their
    level.
    """

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        """Log ``msg`` at ``level`` if it carries a traceback, else at debug level."""
        super().log(level if kwargs.get("exc_info") else logging.DEBUG, msg, *args, **kwargs)


@functools.cache
def _catalog_listing() -> list[dict[str, Any]]:
    """Every event type with its JSON Schema (the registry is fixed once imported)."""
    types = (CATALOG.get(name) for name in CATALOG.names())
    return [
        {
            "name": t.name,
            "audience": str(t.audience),
            "version": t.version,
            "description": t.description,
            "schema": t.json_schema(),
        }
        for t in types
    ]


def _patterns(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list) and len(value) > MAX_PATTERNS:
        raise InvalidRequest(f"at most {MAX_PATTERNS} patterns per connection")
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise InvalidRequest("patterns must be a list of strings, e.g. ['system.>']")
    return value


def _event_id(value: Any) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        event_id = uuid.UUID(str(value))
    except ValueError:
        raise InvalidRequest(f"last_event_id must be an event id, not {quoted(value)}") from None
    if event_id.version != 7:
        raise InvalidRequest("last_event_id must be an event id (a UUIDv7)")
    return event_id


def _refused(code: str, message: str) -> Exception:
    # The client receives {"message": message, "data": {"code": code}}.
    refusal: Exception = socketio.exceptions.ConnectionRefusedError(message, {"code": code})
    return refusal


def _client_address(environ: Mapping[str, Any]) -> str | None:
    # python-engineio's REMOTE_ADDR is always 127.0.0.1 under ASGI: the scope has it.
    client = environ.get("asgi.scope", {}).get("client")
    return str(client[0]) if client else None


def _rate_limited(wait_ms: int) -> Exception:
    # {"message": ..., "data": {"code": "rate_limited", "retry_after_ms": wait_ms}}
    refusal: Exception = socketio.exceptions.ConnectionRefusedError(
        "too many connects: retry later", {"code": "rate_limited", "retry_after_ms": wait_ms}
    )
    return refusal


def _refusal(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}
