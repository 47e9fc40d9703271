"""The relay wakes on commit: writers' throttled NOTIFY (outside their transactions), LISTEN."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest
from sqlalchemy import text

from azora.db.engines import Databases
from azora.db.outbox import EventMessage
from azora.db.uow import UnitOfWork
from azora.events.notify import CHANNEL, OutboxNotifier, driver_dsn
from azora.events.relay import Relay
from azora.mint.service import MintService
from azora.types import Currency, ServiceName
from tests.events.test_relay import RecordingBus

NOTIFICATIONS = ServiceName.NOTIFICATIONS


def _read(user: uuid.UUID) -> EventMessage:
    payload = {"user_id": user, "notification_id": uuid.uuid4()}
    return EventMessage("notification.read", "notifications", payload, subject=user)


async def _emit(databases: Databases, *events: EventMessage) -> None:
    async with UnitOfWork(databases, NOTIFICATIONS) as uow:
        for event in events:
            uow.emit(event)


class Heard:
    """A LISTEN of its own on the notifications database: the payloads and when they came."""

    def __init__(self) -> None:
        self.notes: list[tuple[float, str]] = []
        self.arrived = asyncio.Event()

    def __call__(self, _connection: object, _pid: int, _channel: str, payload: str) -> None:
        self.notes.append((time.monotonic(), payload))
        self.arrived.set()


async def _listen(databases: Databases, service: ServiceName) -> tuple[asyncpg.Connection, Heard]:
    connection = await asyncpg.connect(driver_dsn(databases, service))
    listener = Heard()
    await connection.add_listener(CHANNEL, listener)
    return connection, listener


@pytest.fixture
async def heard(pg: Databases) -> AsyncIterator[Heard]:
    connection, listener = await _listen(pg, NOTIFICATIONS)
    try:
        yield listener
    finally:
        await connection.close()


async def _wait_until(condition: Callable[[], object], seconds: float) -> float:
    """Poll ``condition()`` until true; how long it took (fails after ``seconds``)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > seconds:
            pytest.fail(f"not within {seconds} s")
        await asyncio.sleep(0.005)
    return time.monotonic() - started


async def test_a_commit_that_emitted_notifies_and_a_rollback_or_a_plain_commit_does_not(
    pg: Databases, heard: Heard
) -> None:
    with pytest.raises(RuntimeError):
        async with UnitOfWork(pg, NOTIFICATIONS) as uow:
            uow.emit(_read(uuid.uuid4()))
            raise RuntimeError("rolled back")
    async with UnitOfWork(pg, NOTIFICATIONS) as uow:
        await uow.session.execute(text("SELECT 1"))
    await asyncio.sleep(0.3)
    assert heard.notes == []

    await _emit(pg, _read(uuid.uuid4()))

    await _wait_until(lambda: heard.notes, 1.0)
    await asyncio.sleep(0.1)
    assert [payload for _, payload in heard.notes] == ["notifications"]


async def test_a_ledger_transfer_in_the_database_function_notifies(pg: Databases) -> None:
    mint = MintService(pg)
    assert mint._posts_in_database  # the transfer runs as mint_move, outside a unit of work
    alice, bob = uuid.uuid4(), uuid.uuid4()
    for user in (alice, bob):
        await mint.open_wallet(user, Currency.AZR)
    await mint.mint(Currency.AZR, 10, alice)
    connection, heard = await _listen(pg, ServiceName.MINT)
    try:
        await asyncio.sleep(0.1)  # the notifies of the set-up are out
        heard.notes.clear()

        await mint.transfer(alice, bob, Currency.AZR, 3, "wake-1")

        await _wait_until(lambda: heard.notes, 1.0)
        assert {payload for _, payload in heard.notes} == {"mint"}
    finally:
        await connection.close()


async def test_pokes_are_throttled_with_a_leading_and_a_trailing_notify(
    pg: Databases, heard: Heard
) -> None:
    notifier = OutboxNotifier(pg, interval=0.1, linger=0.5)
    started = time.monotonic()
    last_poke = started
    for _ in range(60):
        notifier.poke(NOTIFICATIONS)
        last_poke = time.monotonic()
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.4)

    times = [at for at, _ in heard.notes]
    assert times, "no notify at all"
    assert times[0] - started < 0.1  # leading edge: at once, not after the interval
    assert times[-1] >= last_poke  # trailing: the last poke is announced after it
    assert len(times) <= (last_poke - started) / 0.1 + 2
    assert all(b - a >= 0.09 for a, b in itertools.pairwise(times))
    await asyncio.sleep(0.6)  # lingered, then let its connection go
    assert notifier._senders[NOTIFICATIONS].task is None


async def test_a_commit_wakes_an_idle_relay_at_once(pg: Databases) -> None:
    bus, stop = RecordingBus(), asyncio.Event()
    relay = Relay(pg, bus, services=[NOTIFICATIONS], busy_interval=30.0, idle_interval=30.0)
    task = asyncio.create_task(relay.run(stop))
    try:
        await _wait_until(lambda: NOTIFICATIONS in relay.listening, 5.0)
        await asyncio.sleep(0.3)  # the first rounds are done; the next poll is far away
        for n in range(3):
            await _emit(pg, _read(uuid.uuid4()))
            took = await _wait_until(lambda n=n: len(bus.published) == n + 1, 1.0)
            assert took < 1.0
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert not relay.listening


async def test_without_listening_the_same_relay_waits_for_its_poll(pg: Databases) -> None:
    """The control of the test above: there, only the notify can have woken the relay."""
    bus, stop = RecordingBus(), asyncio.Event()
    relay = Relay(
        pg, bus, services=[NOTIFICATIONS], busy_interval=30.0, idle_interval=30.0, listen=False
    )
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(0.3)
        await _emit(pg, _read(uuid.uuid4()))
        await asyncio.sleep(1.0)
        assert bus.published == []
        assert not relay.listening
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def _kill_listener(databases: Databases) -> int:
    """Terminate the relay's listener backend on the notifications database; its pid."""
    database = databases.target(NOTIFICATIONS).url.database
    async with databases.owner_engine(NOTIFICATIONS).connect() as connection:
        pids = (
            await connection.execute(
                text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE application_name = 'azora-relay-listener' AND datname = :db"
                ),
                {"db": database},
            )
        ).scalars()
        killed = list(pids)
        for pid in killed:
            await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    assert len(killed) == 1, killed
    return killed[0]


async def test_a_killed_listener_falls_back_to_polling(pg: Databases) -> None:
    bus, stop = RecordingBus(), asyncio.Event()
    relay = Relay(pg, bus, services=[NOTIFICATIONS], idle_interval=0.2, listen_retry=60.0)
    task = asyncio.create_task(relay.run(stop))
    try:
        await _wait_until(lambda: NOTIFICATIONS in relay.listening, 5.0)
        await _kill_listener(pg)
        await _wait_until(lambda: NOTIFICATIONS not in relay.listening, 2.0)

        await _emit(pg, _read(uuid.uuid4()))
        await _wait_until(lambda: len(bus.published) == 1, 2.0)
        assert NOTIFICATIONS not in relay.listening  # published by the poll
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_a_killed_listener_listens_again_and_catches_up(pg: Databases) -> None:
    bus, stop = RecordingBus(), asyncio.Event()
    relay = Relay(
        pg, bus, services=[NOTIFICATIONS], busy_interval=30.0, idle_interval=30.0, listen_retry=0.3
    )
    task = asyncio.create_task(relay.run(stop))
    try:
        await _wait_until(lambda: NOTIFICATIONS in relay.listening, 5.0)
        await asyncio.sleep(0.3)
        first_pid = await _kill_listener(pg)
        await _wait_until(lambda: NOTIFICATIONS not in relay.listening, 2.0)
        await _emit(pg, _read(uuid.uuid4()))  # announced while nobody listens

        await _wait_until(lambda: len(bus.published) == 1, 3.0)  # caught up on re-listen
        assert NOTIFICATIONS in relay.listening
        await asyncio.sleep(0.3)
        await _emit(pg, _read(uuid.uuid4()))
        await _wait_until(lambda: len(bus.published) == 2, 1.0)
        assert await _kill_listener(pg) != first_pid
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_on_sqlite_nothing_is_notified_and_the_relay_polls(databases: Databases) -> None:
    notifier = OutboxNotifier.of(databases)
    bus, stop = RecordingBus(), asyncio.Event()
    relay = Relay(databases, bus, services=[NOTIFICATIONS], idle_interval=0.1)
    task = asyncio.create_task(relay.run(stop))
    try:
        await _emit(databases, _read(uuid.uuid4()))
        await _wait_until(lambda: len(bus.published) == 1, 3.0)
        assert not relay.listening
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert notifier.sent == 0
    assert notifier._senders == {}
