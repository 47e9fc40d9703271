"""The outbox relay publishes committed events in order per subject, once marked, archived once."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.exc import OperationalError

from azora.db.engines import Databases
from azora.db.infra import OUTBOX_TABLE
from azora.db.outbox import EventMessage
from azora.db.uow import UnitOfWork
from azora.events import relay as relay_module
from azora.events.bus import Delivery
from azora.events.envelope import Envelope
from azora.events.errors import BusUnavailable
from azora.events.history import RECORDS, from_record
from azora.events.relay import Relay
from azora.nexus.models import EventRecord
from azora.types import ServiceName
from tests.events.outbox_rows import outbox_rows, unpublished

NOTIFICATIONS = ServiceName.NOTIFICATIONS
NEXUS = ServiceName.NEXUS
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


class RecordingBus:
    """Keeps what it is given, in order; ``down`` makes it refuse like a dead broker."""

    def __init__(self, *, max_pause: float = 0.0) -> None:
        self.published: list[Envelope] = []
        self.calls = 0
        self.down = False
        self.stored = asyncio.Event()
        self._max_pause = max_pause
        self._random = random.Random(5)

    async def publish_many(self, envelopes: Sequence[Envelope]) -> None:
        self.calls += 1
        if self._max_pause:
            # A broker's latency varies: a later call may be stored before an earlier one.
            await asyncio.sleep(self._random.uniform(0, self._max_pause))
        if self.down:
            raise BusUnavailable("broker at nats://relay:s3cret@10.0.0.9:4222 refused")
        self.published.extend(envelopes)
        self.stored.set()

    def subscribe(self, consumer: str, pattern: str) -> AsyncIterator[Delivery]:
        raise NotImplementedError("the relay only publishes")

    async def aclose(self) -> None:
        return None

    def ids(self) -> list[uuid.UUID]:
        return [e.id for e in self.published]


class Clock:
    def __init__(self, now: dt.datetime = T0) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += dt.timedelta(**delta)


def _read(user: uuid.UUID) -> EventMessage:
    payload = {"user_id": user, "notification_id": uuid.uuid4()}
    return EventMessage("notification.read", "notifications", payload, subject=user)


def _alert(message: str) -> EventMessage:
    return EventMessage("system.alert", "nexus", {"severity": "info", "message": message})


async def _emit(databases: Databases, service: ServiceName, *events: EventMessage) -> None:
    async with UnitOfWork(databases, service) as uow:
        for event in events:
            uow.emit(event)


async def _archived(databases: Databases) -> list[uuid.UUID]:
    async with databases.owner_engine(NEXUS).connect() as connection:
        result = await connection.execute(select(EventRecord.event_id))
        return list(result.scalars())


def _ids(events: Sequence[EventMessage]) -> list[uuid.UUID]:
    return [e.id for e in events]


async def test_committed_events_are_published_in_order_marked_and_archived_once(
    databases: Databases,
) -> None:
    ada, bob = uuid.uuid4(), uuid.uuid4()
    first = [_read(ada), _read(bob), _read(ada)]
    second = [_read(bob), _alert("disk almost full"), _read(ada)]
    await _emit(databases, NOTIFICATIONS, *first)
    await _emit(databases, NOTIFICATIONS, *second)
    own = _alert("nexus relays its own outbox too")
    await _emit(databases, NEXUS, own)
    bus, clock = RecordingBus(), Clock()
    relay = Relay(databases, bus, services=[NOTIFICATIONS, NEXUS], clock=clock)

    assert await relay.run_once(NOTIFICATIONS) == 6
    assert await relay.run_once(NEXUS) == 1

    assert bus.ids() == _ids([*first, *second, own])
    assert bus.published[0].subject == ada
    assert bus.published[0].payload["user_id"] == str(ada)
    rows = await outbox_rows(databases, NOTIFICATIONS)
    assert {row["id"] for row in rows} == set(_ids([*first, *second]))
    async with databases.owner_engine(NOTIFICATIONS).connect() as connection:
        marks = set((await connection.execute(select(OUTBOX_TABLE.c.published_at))).scalars())
    assert marks == {T0}
    assert sorted(await _archived(databases)) == sorted(_ids([*first, *second, own]))

    assert await relay.run_once(NOTIFICATIONS) == 0
    assert await relay.run_once(NEXUS) == 0
    assert len(bus.published) == 7
    assert len(await _archived(databases)) == 7


async def test_a_crash_before_the_mark_republishes_and_archives_nothing_twice(
    databases: Databases,
) -> None:
    events = [_read(uuid.uuid4()) for _ in range(3)]
    await _emit(databases, NOTIFICATIONS, *events)
    bus = RecordingBus()
    relay = Relay(databases, bus, services=[NOTIFICATIONS])
    assert await relay.run_once(NOTIFICATIONS) == 3
    # As if the process died after publishing and archiving, before its commit.
    async with databases.owner_engine(NOTIFICATIONS).begin() as connection:
        await connection.execute(update(OUTBOX_TABLE).values(published_at=None))

    assert await relay.run_once(NOTIFICATIONS) == 3

    assert bus.ids() == _ids(events) * 2
    assert sorted(await _archived(databases)) == sorted(_ids(events))


async def test_a_rolled_back_transaction_publishes_nothing(databases: Databases) -> None:
    user = uuid.uuid4()
    kept, lost = _read(user), _read(user)
    await _emit(databases, NOTIFICATIONS, kept)
    with pytest.raises(RuntimeError):
        async with UnitOfWork(databases, NOTIFICATIONS) as uow:
            uow.emit(lost)
            raise RuntimeError("the change failed")
    bus = RecordingBus()

    assert await Relay(databases, bus, services=[NOTIFICATIONS]).run_once(NOTIFICATIONS) == 1

    assert bus.ids() == [kept.id]
    assert lost.id not in await _archived(databases)


async def test_a_down_bus_records_the_attempt_backs_off_and_keeps_the_order(
    databases: Databases,
) -> None:
    user = uuid.uuid4()
    before = [_read(user), _read(user)]
    await _emit(databases, NOTIFICATIONS, *before)
    bus, clock = RecordingBus(), Clock()
    relay = Relay(databases, bus, services=[NOTIFICATIONS], clock=clock, backoff_base=2.0)
    bus.down = True

    assert await relay.run_once(NOTIFICATIONS) == 0

    rows = await outbox_rows(databases, NOTIFICATIONS)
    async with databases.owner_engine(NOTIFICATIONS).connect() as connection:
        result = await connection.execute(
            select(OUTBOX_TABLE.c.published_at, OUTBOX_TABLE.c.attempts, OUTBOX_TABLE.c.last_error)
        )
        states = {tuple(row) for row in result}
    assert len(rows) == 2
    [(published_at, attempts, last_error)] = states
    assert (published_at, attempts) == (None, 1)
    assert last_error is not None
    assert last_error.startswith("bus_unavailable: ")
    assert "s3cret" not in last_error
    assert len(last_error) <= 200
    assert await _archived(databases) == []

    # Backing off: the next round waits without asking the bus.
    assert relay.backing_off(NOTIFICATIONS)
    assert await relay.run_once(NOTIFICATIONS) == 0
    assert bus.calls == 1
    clock.advance(seconds=2)
    assert await relay.run_once(NOTIFICATIONS) == 0  # still down: backs off twice as long
    clock.advance(seconds=3)
    assert relay.backing_off(NOTIFICATIONS)
    after = _read(user)
    await _emit(databases, NOTIFICATIONS, after)

    bus.down = False
    clock.advance(seconds=1)
    assert await relay.run_once(NOTIFICATIONS) == 3

    assert bus.ids() == _ids([*before, after])
    assert not relay.backing_off(NOTIFICATIONS)
    async with databases.owner_engine(NOTIFICATIONS).connect() as connection:
        result = await connection.execute(select(OUTBOX_TABLE.c.id, OUTBOX_TABLE.c.attempts))
        attempts = {row.id: row.attempts for row in result}
    assert attempts == {before[0].id: 2, before[1].id: 2, after.id: 0}


async def test_prune_removes_only_published_rows_older_than_the_retention(
    databases: Databases,
) -> None:
    clock = Clock()
    relay = Relay(
        databases,
        RecordingBus(),
        services=[NOTIFICATIONS],
        clock=clock,
        retention=dt.timedelta(days=7),
    )
    old = _read(uuid.uuid4())
    await _emit(databases, NOTIFICATIONS, old)
    await relay.run_once(NOTIFICATIONS)
    clock.advance(days=6)
    recent = _read(uuid.uuid4())
    await _emit(databases, NOTIFICATIONS, recent)
    await relay.run_once(NOTIFICATIONS)
    waiting = _read(uuid.uuid4())
    await _emit(databases, NOTIFICATIONS, waiting)
    clock.advance(days=2)

    assert await relay.prune(NOTIFICATIONS) == 1

    rows = await outbox_rows(databases, NOTIFICATIONS)
    assert {row["id"] for row in rows} == {recent.id, waiting.id}
    assert old.id in await _archived(databases)


async def test_run_relays_every_service_until_stopped(databases: Databases) -> None:
    notice, alert = _read(uuid.uuid4()), _alert("relay me")
    await _emit(databases, NOTIFICATIONS, notice)
    await _emit(databases, NEXUS, alert)
    bus, stop = RecordingBus(), asyncio.Event()
    relay = Relay(databases, bus, services=[NOTIFICATIONS, NEXUS], idle_interval=0.05)
    task = asyncio.create_task(relay.run(stop))
    try:
        async with asyncio.timeout(10):
            while len(bus.published) < 2:
                await bus.stored.wait()
                bus.stored.clear()
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert sorted(bus.ids()) == sorted([notice.id, alert.id])


async def test_two_relays_at_once_lose_nothing_and_keep_each_subjects_order(
    backend: str, databases: Databases
) -> None:
    """On PostgreSQL the relays claim rows side by side; SQLite lets one in at a time."""
    subjects = [uuid.uuid4() for _ in range(20)]
    expected: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    written = asyncio.Event()

    async def write() -> None:
        for round_ in range(50):
            events = [_read(subjects[(round_ * 7 + i) % 20]) for i in range(10)]
            for event in events:
                assert event.subject is not None
                expected[event.subject].append(event.id)
            await _emit(databases, NOTIFICATIONS, *events)
            await asyncio.sleep(0)
        written.set()

    async def drain(relay: Relay) -> int:
        published = 0
        while not written.is_set() or await unpublished(databases, NOTIFICATIONS):
            published += await relay.run_once(NOTIFICATIONS)
            await asyncio.sleep(0)
        return published

    bus = RecordingBus(max_pause=0.005)
    async with Databases(databases.settings) as other:
        relays = [
            Relay(databases, bus, services=[NOTIFICATIONS], batch=15),
            Relay(other, bus, services=[NOTIFICATIONS], batch=15),
        ]
        async with asyncio.timeout(120):
            writer = asyncio.create_task(write())
            counts = await asyncio.gather(*(drain(relay) for relay in relays))
            await writer

    delivered: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for envelope in bus.published:
        assert envelope.subject is not None
        if envelope.id not in delivered[envelope.subject]:
            delivered[envelope.subject].append(envelope.id)
    assert sum(len(ids) for ids in expected.values()) == 500
    assert delivered == expected
    assert sum(counts) >= 500
    if backend == "postgresql":
        # Both took part (on SQLite the waiting one may lose every race for the lock).
        assert all(counts), counts
    assert len(await _archived(databases)) == 500


async def test_a_failed_archive_marks_nothing_and_is_retried(
    databases: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    event = _read(uuid.uuid4())
    await _emit(databases, NOTIFICATIONS, event)
    bus, clock = RecordingBus(), Clock()
    relay = Relay(databases, bus, services=[NOTIFICATIONS], clock=clock)

    async def refuse(session: object, records: object) -> None:
        raise OperationalError("INSERT INTO event_records ...", {"payload": "private"}, OSError())

    with monkeypatch.context() as patch:
        patch.setattr(relay_module, "_insert_records", refuse)
        assert await relay.run_once(NOTIFICATIONS) == 0

    async with databases.owner_engine(NOTIFICATIONS).connect() as connection:
        [state] = await connection.execute(
            select(OUTBOX_TABLE.c.published_at, OUTBOX_TABLE.c.last_error)
        )
    assert state.published_at is None
    assert state.last_error == ("event_archive_unavailable: archive failed: OperationalError")
    clock.advance(seconds=1)
    assert await relay.run_once(NOTIFICATIONS) == 1
    assert bus.ids() == [event.id, event.id]
    assert await _archived(databases) == [event.id]


async def test_a_malformed_row_holds_back_only_its_own_subject(databases: Databases) -> None:
    stuck, free = uuid.uuid4(), uuid.uuid4()
    bad_id = uuid.uuid4()  # not a UUIDv7: no envelope can carry it
    async with databases.owner_engine(NOTIFICATIONS).begin() as connection:
        await connection.execute(
            insert(OUTBOX_TABLE).values(
                id=bad_id,
                type="notification.read",
                source="notifications",
                subject=stuck,
                payload={"user_id": str(stuck), "notification_id": str(uuid.uuid4())},
                version=1,
                occurred_at=T0,
                attempts=0,
                created_at=T0,
            )
        )
    later, other = _read(stuck), _read(free)
    await _emit(databases, NOTIFICATIONS, later, other)
    bus = RecordingBus()

    assert await Relay(databases, bus, services=[NOTIFICATIONS]).run_once(NOTIFICATIONS) == 1

    assert bus.ids() == [other.id]
    async with databases.owner_engine(NOTIFICATIONS).connect() as connection:
        result = await connection.execute(
            select(
                OUTBOX_TABLE.c.id,
                OUTBOX_TABLE.c.published_at,
                OUTBOX_TABLE.c.attempts,
                OUTBOX_TABLE.c.last_error,
            )
        )
        states = {row.id: (row.published_at, row.attempts, row.last_error) for row in result}
    assert states[bad_id] == (None, 1, "invalid_envelope: id")
    assert states[later.id] == (None, 0, None)


async def test_a_row_another_transaction_holds_keeps_back_the_later_rows_of_its_subject(
    pg: Databases,
) -> None:
    """A claimed row waits while an earlier row of its subject is locked elsewhere
    (PostgreSQL: on SQLite one writer at a time, so no row is locked by another relay)."""
    databases = pg
    ada, bob = uuid.uuid4(), uuid.uuid4()
    before, held, after = _read(ada), _read(ada), _read(ada)
    other = _read(bob)
    held_alert, later_alert = _alert("held"), _alert("later")
    for event in (before, held, held_alert, other, after, later_alert):
        await _emit(databases, NOTIFICATIONS, event)
    bus = RecordingBus()
    relay = Relay(databases, bus, services=[NOTIFICATIONS])

    async with databases.owner_engine(NOTIFICATIONS).connect() as locker, locker.begin():
        locked = await locker.execute(
            select(OUTBOX_TABLE.c.id)
            .where(OUTBOX_TABLE.c.id.in_(_ids([held, held_alert])))
            .with_for_update()
        )
        assert len(list(locked)) == 2
        # Skips the two locked rows, and holds back what follows them per subject.
        assert await relay.run_once(NOTIFICATIONS) == 2
        assert bus.ids() == _ids([before, other])

    assert await relay.run_once(NOTIFICATIONS) == 4
    assert bus.ids() == _ids([before, other, held, held_alert, after, later_alert])
    assert await unpublished(databases, NOTIFICATIONS) == 0


async def test_the_archive_keeps_the_whole_envelope(databases: Databases) -> None:
    ada = uuid.uuid4()
    event = EventMessage(
        "notification.read",
        "notifications",
        {"user_id": ada, "notification_id": uuid.uuid4()},
        subject=ada,
        correlation_id=uuid.uuid4(),
    )
    await _emit(databases, NOTIFICATIONS, event)
    bus = RecordingBus()
    assert await Relay(databases, bus, services=[NOTIFICATIONS]).run_once(NOTIFICATIONS) == 1

    async with databases.owner_engine(NEXUS).connect() as connection:
        [row] = await connection.execute(select(RECORDS))
    assert from_record(row) == bus.published[0]
    assert row.correlation_id == event.correlation_id
    assert row.version == 1


async def test_a_bus_failing_after_the_archive_insert_leaves_no_history(
    databases: Databases,
) -> None:
    """The archive's insert runs beside the publish; it commits only after the publish."""

    class SlowDownBus(RecordingBus):
        async def publish_many(self, envelopes: Sequence[Envelope]) -> None:
            self.calls += 1
            await asyncio.sleep(0.2)  # the archive's insert is done by now
            raise BusUnavailable("broker gone")

    event = _read(uuid.uuid4())
    await _emit(databases, NOTIFICATIONS, event)
    relay = Relay(databases, SlowDownBus(), services=[NOTIFICATIONS])

    assert await relay.run_once(NOTIFICATIONS) == 0

    assert await _archived(databases) == []
    assert await unpublished(databases, NOTIFICATIONS) == 1
    assert relay.backing_off(NOTIFICATIONS)


@pytest.mark.parametrize("service", [NOTIFICATIONS, NEXUS])
async def test_writers_commit_to_the_outbox_while_a_round_publishes(
    databases: Databases, service: ServiceName
) -> None:
    """A round holds no lock a writer needs while the bus stores its events (on SQLite only
    marking them takes the write lock, briefly); the new row is relayed by the next round."""

    class WaitingBus(RecordingBus):
        def __init__(self) -> None:
            super().__init__()
            self.publishing, self.go_on = asyncio.Event(), asyncio.Event()

        async def publish_many(self, envelopes: Sequence[Envelope]) -> None:
            self.publishing.set()
            await self.go_on.wait()
            await super().publish_many(envelopes)

    first, second = _alert("first"), _alert("second")
    await _emit(databases, service, first)
    bus = WaitingBus()
    relay = Relay(databases, bus, services=[service])
    round_ = asyncio.create_task(relay.run_once(service))
    try:
        await asyncio.wait_for(bus.publishing.wait(), 5)
        await asyncio.wait_for(_emit(databases, service, second), 5)  # not held up by it
        assert not round_.done()
    finally:
        bus.go_on.set()
    assert await round_ == 1
    assert await relay.run_once(service) == 1
    assert [e.id for e in bus.published] == [first.id, second.id]
    assert set(await _archived(databases)) == {first.id, second.id}
    assert await unpublished(databases, service) == 0
