"""Failure tests of the outbox relay, each with a real NATS JetStream and PostgreSQL.

- The relay process is SIGKILLed 20 times while 5,000 events flow: nothing is lost, each
  subject's order holds, the nexus archive has every event once, a durable consumer's
  effect happens exactly once per event, and each user's Socket.IO connection receives
  each of its events once, in order.
- The broker is down for 10 s while writes go on: the outbox grows, the relay backs off,
  and when the broker is back the outbox drains in order.
- A rolled-back transaction's event is seen nowhere.

Every test uses a stream and subject prefix of its own (deleted after) and stops every
process it started, by PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import aclosing
from pathlib import Path
from typing import Any

import nats
import nats.js.errors
import pytest
import socketio
from sqlalchemy import func, select

from azora.auth.passwords import Argon2Parameters, Passwords
from azora.auth.service import AuthService
from azora.db.engines import Databases
from azora.db.infra import OUTBOX_TABLE
from azora.db.outbox import EventMessage
from azora.db.uow import UnitOfWork
from azora.events.buses import NatsBus
from azora.events.consumers import ConsumerRunner, consumer
from azora.events.envelope import Envelope
from azora.events.relay import Relay
from azora.gateway.server import Gateway, GatewayServer
from azora.nexus.models import EventRecord
from azora.notifications.models import Notification
from azora.settings import Settings
from azora.types import ServiceName
from tests.events.outbox_rows import unpublished
from tests.servers import PrivateNats, free_port

NOTIFICATIONS = ServiceName.NOTIFICATIONS
NEXUS = ServiceName.NEXUS
ROOT = Path(__file__).resolve().parents[2]
Order = dict[uuid.UUID | None, list[uuid.UUID]]
FAST = Argon2Parameters(time_cost=1, memory_cost_kib=1_024, parallelism=1)
PASSWORD = "a long enough passphrase"


@pytest.fixture
def names() -> tuple[str, str]:
    """A JetStream stream name and subject prefix of this test alone."""
    tag = uuid.uuid4().hex[:12]
    return f"AZORA_FAIL_{tag}", f"azorafail.{tag}"


@pytest.fixture
async def shared_stream(nats_url: str, names: tuple[str, str]) -> AsyncIterator[tuple[str, str]]:
    """The test's stream on the shared NATS, deleted afterwards."""
    yield names
    client = await nats.connect(nats_url)
    try:
        await client.jetstream().delete_stream(names[0])
    except nats.js.errors.NotFoundError:
        pass
    finally:
        await client.close()


def _bus(url: str, names: tuple[str, str], **options: Any) -> NatsBus:
    stream, prefix = names
    return NatsBus(url, stream=stream, subject_prefix=prefix, max_age=600, **options)


def _read(user: uuid.UUID) -> EventMessage:
    payload = {"user_id": user, "notification_id": uuid.uuid4()}
    return EventMessage("notification.read", "notifications", payload, subject=user)


async def _emit(databases: Databases, events: list[EventMessage], order: Order) -> None:
    """Commit ``events`` in one unit of work; then note them in ``order`` (commit order)."""
    async with UnitOfWork(databases, NOTIFICATIONS) as uow:
        for event in events:
            uow.emit(event)
    for event in events:
        order[event.subject].append(event.id)


async def _published(databases: Databases) -> int:
    return await _count(databases) - await unpublished(databases, NOTIFICATIONS)


async def _count(databases: Databases) -> int:
    async with databases.owner_engine(NOTIFICATIONS).connect() as connection:
        count: Any = await connection.scalar(select(func.count()).select_from(OUTBOX_TABLE))
    return int(count)


async def _archive(databases: Databases) -> list[uuid.UUID]:
    async with databases.owner_engine(NEXUS).connect() as connection:
        return list((await connection.execute(select(EventRecord.event_id))).scalars())


async def _until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {seconds} s: {what}")
        await asyncio.sleep(0.05)


async def _published_beyond(databases: Databases, count: int) -> bool:
    return await _published(databases) > count


async def _until_or_not(condition: Any, seconds: float) -> bool:
    """Whether ``condition`` came true within ``seconds`` (polled every 50 ms)."""
    deadline = time.monotonic() + seconds
    while not await condition():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


async def _collect(bus: NatsBus, consumer: str, total: int, seconds: float) -> list[Envelope]:
    """Deliveries of a durable consumer (acknowledged) until ``total`` distinct ids came.

    nats-py's ``fetch`` can raise a bare ``asyncio.TimeoutError`` that the bus does not
    expect (it ends the subscription); the durable consumer then simply goes on.
    """
    received: list[Envelope] = []
    seen: set[uuid.UUID] = set()
    deadline = time.monotonic() + seconds
    while len(seen) < total:
        try:
            async with aclosing(bus.subscribe(consumer, "notification.>")) as deliveries:
                async for delivery in deliveries:
                    received.append(delivery.envelope)
                    seen.add(delivery.envelope.id)
                    await delivery.ack()
                    if len(seen) >= total:
                        break
                    if time.monotonic() > deadline:
                        pytest.fail(f"{len(seen)} of {total} events came within {seconds} s")
        except TimeoutError:
            if time.monotonic() > deadline:
                raise
    return received


def _first_deliveries(received: Iterable[Envelope]) -> Order:
    """Per subject, the event ids in the order of their first delivery."""
    order: Order = defaultdict(list)
    seen: set[uuid.UUID] = set()
    for envelope in received:
        if envelope.id not in seen:
            seen.add(envelope.id)
            order[envelope.subject].append(envelope.id)
    return order


# -- 1. SIGKILLed relay processes -------------------------------------------------------


def _relay_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZORA_")}
    assert settings.database_url is not None
    env.update(
        AZORA_ENV="test",
        AZORA_DATABASE_URL=settings.database_url,
        AZORA_DB_NAME_PREFIX=settings.db_name_prefix,
        PYTHONUNBUFFERED="1",
    )
    if settings.db_app_password is not None:
        env["AZORA_DB_APP_PASSWORD"] = settings.db_app_password.get_secret_value()
    return env


class RelayProcesses:
    """Relay processes of one test, started and killed by PID (only these)."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self._argv, self._env, self._log = argv, env, log
        self.pids: list[int] = []
        self._alive: dict[int, subprocess.Popen[bytes]] = {}

    def start(self) -> int:
        with self._log.open("ab") as log:
            process = subprocess.Popen(
                self._argv, cwd=ROOT, env=self._env, stdout=log, stderr=subprocess.STDOUT
            )
        self.pids.append(process.pid)
        self._alive[process.pid] = process
        return process.pid

    async def kill(self, pid: int) -> None:
        os.kill(pid, signal.SIGKILL)
        await asyncio.to_thread(self._alive.pop(pid).wait)

    async def stop(self, pid: int) -> None:
        process = self._alive.pop(pid)
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, 10)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)

    def kill_all(self) -> None:
        for pid, process in list(self._alive.items()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            process.wait()
            del self._alive[pid]


@pytest.fixture
def relay_processes(
    postgres_settings: Settings,
    nats_url: str,
    shared_stream: tuple[str, str],
    tmp_path: Path,
) -> Iterator[RelayProcesses]:
    stream, prefix = shared_stream
    argv = [sys.executable, "-m", "tests.events.relay_runner", nats_url, stream, prefix]
    processes = RelayProcesses(
        [*argv, NOTIFICATIONS.value], _relay_env(postgres_settings), tmp_path / "relay.log"
    )
    try:
        yield processes
    finally:
        processes.kill_all()


async def _users(databases: Databases, count: int) -> list[tuple[uuid.UUID, str]]:
    """``count`` registered, signed-in users: their ids and access tokens."""
    auth = AuthService(databases, passwords=Passwords(FAST))
    users = []
    for _ in range(count):
        email = f"fail-{uuid.uuid4().hex[:10]}@example.org"
        await auth.register(email, PASSWORD, "Adjoa Asante")
        signed = await auth.login(email, PASSWORD, "127.0.0.1", "pytest")
        users.append((signed.user_id, signed.access_token))
    return users


@consumer("failure-effects", "notification.read", service=NOTIFICATIONS)
async def _count_effect(uow: UnitOfWork, event: Envelope) -> None:
    """The effect whose count must be exactly one per event: a row titled by its id."""
    assert event.subject is not None
    uow.session.add(
        Notification(user_id=event.subject, title=str(event.id), message="effect of a read")
    )


async def _effects(databases: Databases) -> list[str]:
    async with databases.owner_engine(NOTIFICATIONS).connect() as connection:
        titles = await connection.execute(select(Notification.__table__.c.title))
        return list(titles.scalars())


async def _socket(url: str, token: str, received: list[str]) -> socketio.AsyncClient:
    client = socketio.AsyncClient(reconnection=False)

    async def record(name: str, data: Any = None) -> None:
        if name == "notification.read":
            received.append(data["id"])

    client.on("*", record)
    # socketio's default wait for the namespace is 1 s: too short on a loaded machine.
    await client.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=10)
    return client


@contextlib.asynccontextmanager
async def _consumer_and_sockets(
    databases: Databases,
    nats_url: str,
    names: tuple[str, str],
    users: list[tuple[uuid.UUID, str]],
) -> AsyncIterator[dict[uuid.UUID, list[str]]]:
    """The counting consumer running, and a served gateway with one socket per user;
    yields what each user's socket received (event ids, in order)."""
    consumer_bus = _bus(nats_url, names, fetch_timeout=0.2, batch=256)
    gateway_bus = _bus(nats_url, names)
    runner = ConsumerRunner(
        databases, consumer_bus, [_count_effect], backoff_base=0.1, backoff_max=1.0
    )
    stop = asyncio.Event()
    consuming = asyncio.create_task(runner.run(stop))
    gateway = Gateway(databases, gateway_bus, AuthService(databases), databases.settings)
    server = GatewayServer(gateway, "127.0.0.1", 0)
    clients: list[socketio.AsyncClient] = []
    await gateway.start()
    serving = asyncio.create_task(server.serve())
    try:
        await asyncio.wait_for(server.ready.wait(), 10)
        url = f"http://127.0.0.1:{server.port}"
        sockets: dict[uuid.UUID, list[str]] = {user: [] for user, _ in users}
        for user, token in users:
            clients.append(await _socket(url, token, sockets[user]))
        yield sockets
    finally:
        stop.set()
        for client in clients:
            await client.disconnect()
        server.should_exit = True
        await serving
        await gateway.stop()
        await consuming
        await consumer_bus.aclose()
        await gateway_bus.aclose()


async def test_a_relay_killed_20_times_loses_nothing_keeps_order_and_archives_once(
    pg: Databases,
    nats_url: str,
    shared_stream: tuple[str, str],
    relay_processes: RelayProcesses,
) -> None:
    """Also through a durable consumer (its effect exactly once) and the Socket.IO
    gateway (each user's socket gets each of its events once)."""
    rng = random.Random(2026)
    writers, per_writer, batch, total = 2, 250, 10, 5000
    users = await _users(pg, writers * 25)
    started = time.monotonic()
    subjects = [[user for user, _ in users[k * 25 : (k + 1) * 25]] for k in range(writers)]
    async with _consumer_and_sockets(pg, nats_url, shared_stream, users) as sockets:
        expected: Order = defaultdict(list)
        writes_done = asyncio.Event()

        async def write(k: int) -> None:
            # Each writer has subjects of its own, so its commit order is theirs.
            for i in range(per_writer):
                events = [_read(subjects[k][(i * 3 + j) % 25]) for j in range(batch)]
                await _emit(pg, events, expected)
                await asyncio.sleep(rng.uniform(0.02, 0.1))

        async def write_all() -> None:
            await asyncio.gather(*(write(k) for k in range(writers)))
            writes_done.set()

        subscriber = _bus(nats_url, shared_stream, fetch_timeout=0.2, batch=256)
        try:
            receiving = asyncio.create_task(_collect(subscriber, "checker", total, 85))
            writing = asyncio.create_task(write_all())
            killed_at_work = 0
            for _ in range(20):
                before = await _published(pg)
                pid = relay_processes.start()
                if writes_done.is_set():
                    await asyncio.sleep(rng.uniform(0.6, 1.8))  # starting up ~0.6 s, or idle
                else:
                    # Killed at work, however long it took to start on a busy machine.
                    await _until_or_not(functools.partial(_published_beyond, pg, before), 15)
                    await asyncio.sleep(rng.uniform(0.0, 0.3))
                await relay_processes.kill(pid)
                killed_at_work += await _published(pg) > before
            last = relay_processes.start()
            await writing

            async def drained() -> bool:
                return await unpublished(pg, NOTIFICATIONS) == 0

            await _until(drained, 30, "the outbox drained after the last restart")
            received = await receiving
            await relay_processes.stop(last)
        finally:
            await subscriber.aclose()

        assert sum(len(ids) for ids in expected.values()) == total
        assert len(relay_processes.pids) == 21
        assert killed_at_work >= 10, killed_at_work  # most were killed with events flowing
        print(f"{killed_at_work} of 20 relays were killed at work; {len(received)} deliveries")
        assert _first_deliveries(received) == expected
        archived = await _archive(pg)
        assert len(archived) == total
        assert set(archived) == {i for ids in expected.values() for i in ids}

        # Every event reached the consumer, and its effect happened exactly once.
        async def all_effects() -> bool:
            return len(await _effects(pg)) >= total

        await _until(all_effects, 60, "the consumer handled every event")
        await asyncio.sleep(0.5)  # a duplicate effect would show now
        effects = await _effects(pg)
        assert len(effects) == total
        assert set(effects) == {str(i) for ids in expected.values() for i in ids}

        # Each user's socket got each of its events, once, in commit order.
        async def all_pushed() -> bool:
            return sum(len(ids) for ids in sockets.values()) >= total

        await _until(all_pushed, 30, "the gateway pushed every event")
        await asyncio.sleep(0.5)
        for user, ids in sockets.items():
            assert ids == [str(i) for i in expected[user]]
        assert time.monotonic() - started < 120


# -- 2. The broker down for 10 s --------------------------------------------------------


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[PrivateNats]:
    if not os.access(PrivateNats.binary, os.X_OK):
        pytest.fail(f"{PrivateNats.binary} is not installed")
    server = PrivateNats(free_port(), tmp_path / "jetstream")
    try:
        yield server
    finally:
        server.stop()


async def test_a_broker_down_for_10_s_grows_the_outbox_then_drains_it_in_order(
    pg: Databases, private_nats: PrivateNats, names: tuple[str, str]
) -> None:
    started = time.monotonic()
    private_nats.start()
    users = [uuid.uuid4() for _ in range(5)]
    expected: Order = defaultdict(list)
    bus = _bus(private_nats.url, names, timeout=1.0)
    relay = Relay(pg, bus, services=[NOTIFICATIONS], backoff_base=0.2, backoff_max=2.0)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        for i in range(10):
            await _emit(pg, [_read(users[i % 5]), _read(users[(i + 1) % 5])], expected)

        async def drained() -> bool:
            return await unpublished(pg, NOTIFICATIONS) == 0

        await _until(drained, 10, "the first events were published")

        private_nats.stop()
        down_at, written, backed_off, grown = time.monotonic(), 0, False, []
        while time.monotonic() - down_at < 10:
            i = written
            await _emit(pg, [_read(users[i % 5]), _read(users[(i + 2) % 5])], expected)
            written += 1
            backed_off = backed_off or relay.backing_off(NOTIFICATIONS)
            if written % 10 == 0:
                grown.append(await unpublished(pg, NOTIFICATIONS))
            await asyncio.sleep(0.1)
        assert (
            await unpublished(pg, NOTIFICATIONS) == 2 * written
        )  # nothing left while the broker was away
        assert grown == sorted(grown)
        assert grown[-1] > grown[0]
        assert backed_off
        async with pg.owner_engine(NOTIFICATIONS).connect() as connection:
            attempts: Any = await connection.scalar(select(func.max(OUTBOX_TABLE.c.attempts)))
        assert attempts >= 2  # the same rows were retried, backing off in between

        private_nats.start()
        await _until(drained, 15, "the outbox drained once the broker was back")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await bus.aclose()

    total = sum(len(ids) for ids in expected.values())
    assert total == 20 + 2 * written
    subscriber = _bus(private_nats.url, names, fetch_timeout=0.2, batch=256)
    try:
        received = await _collect(subscriber, "checker", total, 10)
    finally:
        await subscriber.aclose()
    assert _first_deliveries(received) == expected
    assert sorted(await _archive(pg)) == sorted(i for ids in expected.values() for i in ids)
    assert time.monotonic() - started < 40


# -- 3. A rolled-back transaction ------------------------------------------------------


async def test_a_rolled_back_event_is_never_seen_in_the_outbox_on_the_bus_or_in_the_archive(
    pg: Databases, nats_url: str, shared_stream: tuple[str, str]
) -> None:
    user = uuid.uuid4()
    bus = _bus(nats_url, shared_stream, timeout=2.0)
    relay = Relay(pg, bus, services=[NOTIFICATIONS])
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    expected: Order = defaultdict(list)
    lost = _read(user)
    try:
        await _emit(pg, [_read(user)], expected)
        with pytest.raises(RuntimeError):
            async with UnitOfWork(pg, NOTIFICATIONS) as uow:
                uow.emit(lost)
                await uow.session.flush()
                raise RuntimeError("the change failed")
        await _emit(pg, [_read(user)], expected)

        async def drained() -> bool:
            return await unpublished(pg, NOTIFICATIONS) == 0

        await _until(drained, 10, "the committed events were published")
        await asyncio.sleep(0.5)  # the relay keeps running: still nothing of the lost one
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await bus.aclose()

    subscriber = _bus(nats_url, shared_stream, fetch_timeout=0.2)
    try:
        received = await _collect(subscriber, "checker", 2, 10)
        info = await (await subscriber._jetstream()).stream_info(shared_stream[0])
    finally:
        await subscriber.aclose()
    assert _first_deliveries(received) == expected
    assert info.state.messages == 2
    async with pg.owner_engine(NOTIFICATIONS).connect() as connection:
        ids = set((await connection.execute(select(OUTBOX_TABLE.c.id))).scalars())
    assert ids == set(expected[user])
    assert lost.id not in ids
    assert set(await _archive(pg)) == set(expected[user])
