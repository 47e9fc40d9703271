"""Fixtures of the gateway tests: a gateway served on a free port, users with tokens,
and real Socket.IO clients (python-socketio over aiohttp) that record what they receive.

Every test that reads a database runs on SQLite and on PostgreSQL (with the real Redis as
the auth cache there); the bus is the in-process one unless a test asks for NATS.
``logs`` captures the log (uvicorn's too) for :func:`assert_no_traceback`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import gc
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
import socketio

from azora.auth.config import AuthConfig
from azora.auth.passwords import Argon2Parameters, Passwords
from azora.auth.service import AuthService
from azora.cache import Cache
from azora.db.engines import Databases
from azora.events.bus import Bus
from azora.events.buses import MemoryBus
from azora.events.envelope import Envelope
from azora.gateway.server import Gateway, GatewayServer
from tests.caches import paired_cache

WAIT = 5.0
FAST = Argon2Parameters(time_cost=1, memory_cost_kib=1_024, parallelism=1)


@dataclass
class User:
    id: uuid.UUID
    token: str


@dataclass
class Recorder:
    """A connected Socket.IO client and every event it received, in order."""

    client: socketio.AsyncClient
    events: list[tuple[str, Any]] = field(default_factory=list)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    def envelopes(self, event_type: str | None = None) -> list[dict[str, Any]]:
        return [
            data
            for name, data in self.events
            if name not in {"gap", "caught_up"} and (event_type is None or name == event_type)
        ]

    def ids(self) -> list[str]:
        return [data["id"] for data in self.envelopes()]

    def named(self, name: str) -> list[Any]:
        return [data for received, data in self.events if received == name]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Until ``predicate()`` holds; fails after WAIT seconds."""
        async with asyncio.timeout(WAIT):
            while not predicate():
                self.arrived.clear()
                await self.arrived.wait()


def envelope(user: uuid.UUID | None, event_type: str | None = None) -> Envelope:
    """A valid event: a ``notification.created`` for ``user``, or for ``user`` None a
    public ``system.alert`` (or ``system.health.check`` when asked for)."""
    now = dt.datetime.now(dt.UTC)
    if user is None:
        if event_type == "system.health.check":
            payload: dict[str, Any] = {"component": "mint", "status": "ok"}
        else:
            event_type, payload = "system.alert", {"severity": "info", "message": "hello"}
        return Envelope(type=event_type, source="health", payload=payload, occurred_at=now)
    return Envelope(
        type=event_type or "notification.created",
        source="notifications",
        subject=user,
        payload={
            "user_id": str(user),
            "notification_id": str(uuid.uuid4()),
            "kind": "system",
            "title": "hi",
        },
        occurred_at=now,
    )


@pytest.fixture
async def cache(backend: str, request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    """The in-process cache with SQLite; the real Redis with PostgreSQL."""
    async with paired_cache(backend, request, ["azora:auth.*"]) as opened:
        yield opened


@pytest.fixture
def auth(databases: Databases, cache: Cache) -> AuthService:
    """The auth service (cheap Argon2 parameters) over the test's databases."""
    config = AuthConfig.from_settings(databases.settings)
    return AuthService(databases, cache=cache, config=config, passwords=Passwords(FAST))


@pytest.fixture
def new_user(auth: AuthService) -> Callable[[], Awaitable[User]]:
    """Registers and signs in a new user; returns its id and access token."""

    async def make() -> User:
        email = f"gw-{uuid.uuid4().hex[:10]}@example.org"
        await auth.register(email, "a long enough passphrase", "Kofi Boateng")
        signed = await auth.login(email, "a long enough passphrase", "127.0.0.1", "pytest")
        return User(signed.user_id, signed.access_token)

    return make


@pytest.fixture
def bus() -> Bus:
    """The in-process bus."""
    return MemoryBus()


@contextlib.asynccontextmanager
async def served(gateway: Gateway) -> AsyncIterator[GatewayServer]:
    """Serve ``gateway`` on a free loopback port; yields its server."""
    server = GatewayServer(gateway, "127.0.0.1", 0)
    async with gateway:
        task = asyncio.create_task(server.serve())
        try:
            await asyncio.wait_for(server.ready.wait(), WAIT)
            yield server
        finally:
            server.should_exit = True
            await task


@contextlib.asynccontextmanager
async def serving(gateway: Gateway) -> AsyncIterator[str]:
    """Serve ``gateway`` on a free loopback port; yields its base URL."""
    async with served(gateway) as server:
        yield f"http://127.0.0.1:{server.port}"


@pytest.fixture
def gateway(databases: Databases, bus: Bus, auth: AuthService) -> Gateway:
    """A gateway over the test's databases and bus (not yet serving)."""
    return Gateway(databases, bus, auth, databases.settings)


@pytest.fixture
def limited(databases: Databases, bus: Bus, auth: AuthService) -> Callable[..., Gateway]:
    """A gateway on the test's bus with some settings replaced."""

    def make(**settings: Any) -> Gateway:
        return Gateway(databases, bus, auth, databases.settings.model_copy(update=settings))

    return make


@pytest.fixture
async def url(gateway: Gateway) -> AsyncIterator[str]:
    """The gateway, served; its base URL."""
    async with serving(gateway) as base:
        yield base


class Refused(Exception):
    """The gateway refused the connection; ``reason`` is what it said."""

    def __init__(self, reason: Any) -> None:
        super().__init__(f"refused: {reason}")
        self.reason = reason


@pytest.fixture
async def connect() -> AsyncIterator[Callable[..., Awaitable[Recorder]]]:
    """Connects recording clients (websocket transport); disconnects them afterwards."""
    clients: list[socketio.AsyncClient] = []

    async def open_client(base: str, auth: Any, *, wait: bool = True) -> Recorder:
        client = socketio.AsyncClient(reconnection=False)
        recorder = Recorder(client)

        async def record(name: str, data: Any = None) -> None:
            recorder.events.append((name, data))
            recorder.arrived.set()

        refusals: list[Any] = []

        async def refused(data: Any = None) -> None:
            refusals.append(data)

        client.on("*", record)
        client.on("connect_error", refused)
        clients.append(client)
        try:
            await client.connect(
                base, auth=auth, transports=["websocket"], wait_timeout=WAIT, retry=False
            )
        except socketio.exceptions.ConnectionError as error:
            raise Refused(refusals[0] if refusals else str(error)) from error
        return recorder

    yield open_client
    for client in clients:
        with contextlib.suppress(Exception):
            await client.disconnect()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record from INFO up, uvicorn's included (it does not propagate)."""
    caplog.set_level(logging.INFO)
    server_log = logging.getLogger("uvicorn")
    server_log.addHandler(caplog.handler)
    yield caplog
    server_log.removeHandler(caplog.handler)


def assert_no_traceback(logs: pytest.LogCaptureFixture) -> None:
    """No record of ``logs`` carries a traceback."""
    gc.collect()  # a task's unretrieved exception is logged when the task is collected
    with_traceback = [r.getMessage() for r in logs.records if r.exc_info or r.exc_text]
    assert with_traceback == []
    assert "Traceback" not in logs.text


async def health(base: str) -> dict[str, Any]:
    """``GET /health`` of the gateway at ``base``: answered 200; its body."""
    async with aiohttp.ClientSession() as http, http.get(f"{base}/health") as response:
        assert response.status == 200
        body: dict[str, Any] = await response.json()
        return body
