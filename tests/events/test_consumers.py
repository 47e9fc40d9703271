"""Durable consumers: once per event id, retries with backoff, dead letters and replay.

The logic runs on the in-process bus (and hand-made deliveries) on both database
backends; one test runs the runner on a real NATS JetStream stream of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import nats
import pytest

from azora.db.engines import Databases
from azora.db.uow import UnitOfWork
from azora.errors import InvalidInput
from azora.events.buses import MemoryBus, NatsBus
from azora.events.consumers import Consumer, ConsumerRunner, Outcome, consumer
from azora.events.envelope import Envelope
from azora.notifications.consumers import notify
from azora.notifications.models import DeadLetter, Notification, NotificationKind, ProcessedEvent
from azora.types import ServiceName
from tests.events.consumer_helpers import Settled, count, envelope, settle_all

NOTIFICATIONS = ServiceName.NOTIFICATIONS
WAIT = 10.0


class Switch:
    """Makes the failing handler fail while on."""

    def __init__(self) -> None:
        self.on = True
        self.calls = 0


def _events(user: uuid.UUID, n: int = 1) -> list[Envelope]:
    return [
        envelope(
            "notification.read",
            {"user_id": str(user), "notification_id": str(uuid.uuid4())},
            user,
        )
        for _ in range(n)
    ]


def _writer(name: str = "test-writer") -> Consumer:
    """Writes one notification per event."""

    @consumer(name, "notification.read", service=NOTIFICATIONS)
    async def write(uow: UnitOfWork, event: Envelope) -> None:
        assert event.subject is not None
        await notify(uow, event.subject, NotificationKind.INFO, "seen", str(event.id), {})

    return write


def _failing(switch: Switch, name: str = "test-failing") -> Consumer:
    """Writes a notification, then fails while the switch is on (the write must vanish)."""

    @consumer(name, "notification.read", service=NOTIFICATIONS)
    async def fail(uow: UnitOfWork, event: Envelope) -> None:
        switch.calls += 1
        assert event.subject is not None
        await notify(uow, event.subject, NotificationKind.ERROR, "partial", str(event.id), {})
        if switch.on:
            raise RuntimeError("the handler is broken " + "x" * 2000)

    return fail


async def _notifications(databases: Databases, title: str) -> int:
    return await count(databases, NOTIFICATIONS, Notification.__table__, title=title)


async def _until(check: Callable[[], Awaitable[bool]], seconds: float) -> None:
    """Poll ``check`` until it holds; TimeoutError after ``seconds``."""
    async with asyncio.timeout(seconds):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def _dead(runner: ConsumerRunner, letters: int) -> bool:
    return len(await runner.dead_letters(NOTIFICATIONS)) >= letters


def test_a_consumer_declaration_checks_its_name_and_pattern() -> None:
    with pytest.raises(InvalidInput):
        consumer("no.dots", "finance.>", service=NOTIFICATIONS)
    with pytest.raises(InvalidInput):
        consumer("fine", "finance..x", service=NOTIFICATIONS)
    declared = _writer()
    assert declared.takes("notification.read")
    assert not declared.takes("notification.created")
    with pytest.raises(ValueError, match="share a name"):
        ConsumerRunner(None, MemoryBus(), [declared, _writer()])  # type: ignore[arg-type]


async def test_a_duplicate_delivery_has_its_effect_exactly_once(databases: Databases) -> None:
    runner = ConsumerRunner(databases, MemoryBus(), [_writer()])
    item = runner.get("test-writer")
    (event,) = _events(uuid.uuid4())
    settled = Settled()
    assert await runner.settle(item, settled.delivery(event)) is Outcome.HANDLED
    assert await runner.settle(item, settled.delivery(event, attempt=2)) is Outcome.DUPLICATE
    assert settled.acks == 2
    assert settled.naks == []
    assert await _notifications(databases, "seen") == 1
    assert await count(databases, NOTIFICATIONS, ProcessedEvent.__table__, event_id=event.id) == 1


async def test_concurrent_duplicates_are_decided_by_the_primary_key(databases: Databases) -> None:
    runner = ConsumerRunner(databases, MemoryBus(), [_writer()])
    item = runner.get("test-writer")
    (event,) = _events(uuid.uuid4())
    results = await asyncio.gather(*(runner.process(item, event) for _ in range(4)))
    assert sorted(results) == [False, False, False, True]
    assert await _notifications(databases, "seen") == 1


async def test_two_consumers_each_process_the_same_event_once(databases: Databases) -> None:
    runner = ConsumerRunner(databases, MemoryBus(), [_writer("first"), _writer("second")])
    (event,) = _events(uuid.uuid4())
    for name in ("first", "second", "first"):
        await runner.process(runner.get(name), event)
    assert await _notifications(databases, "seen") == 2


async def test_a_failing_handler_is_retried_with_backoff_then_dead_lettered(
    databases: Databases,
) -> None:
    switch = Switch()
    runner = ConsumerRunner(
        databases,
        MemoryBus(),
        [_failing(switch)],
        max_attempts=3,
        backoff_base=0.5,
        backoff_max=1.5,
    )
    item = runner.get("test-failing")
    (event,) = _events(uuid.uuid4())
    settled = Settled()
    outcomes = [await runner.settle(item, settled.delivery(event, n)) for n in (1, 2, 3)]
    assert outcomes == [Outcome.RETRYING, Outcome.RETRYING, Outcome.DEAD_LETTERED]
    assert settled.naks == [0.5, 1.0]
    assert settled.acks == 1
    # The handler's partial write was rolled back with its processed-events row.
    assert await _notifications(databases, "partial") == 0
    assert await count(databases, NOTIFICATIONS, ProcessedEvent.__table__) == 0
    (letter,) = await runner.dead_letters(NOTIFICATIONS)
    assert (letter.consumer, letter.event_id, letter.event_type) == (
        "test-failing",
        event.id,
        "notification.read",
    )
    assert letter.attempts == 3
    assert letter.error.startswith("RuntimeError: the handler is broken")
    assert len(letter.error) == 1000
    assert Envelope.model_validate(letter.envelope) == event
    assert letter.replayed_at is None


async def test_replay_redrives_a_dead_letter_once_the_cause_is_fixed(
    databases: Databases,
) -> None:
    switch = Switch()
    runner = ConsumerRunner(databases, MemoryBus(), [_failing(switch)], max_attempts=1)
    item = runner.get("test-failing")
    (event,) = _events(uuid.uuid4())
    assert await runner.settle(item, Settled().delivery(event)) is Outcome.DEAD_LETTERED

    (still,) = await runner.replay(NOTIFICATIONS)
    assert not still.ok
    assert still.error is not None
    assert still.error.startswith("RuntimeError")
    (letter,) = await runner.dead_letters(NOTIFICATIONS)
    assert letter.attempts == 2

    switch.on = False
    (fixed,) = await runner.replay(NOTIFICATIONS, consumer_name="test-failing", event_id=event.id)
    assert fixed.ok
    assert await _notifications(databases, "partial") == 1
    assert await runner.dead_letters(NOTIFICATIONS) == []
    (done,) = await runner.dead_letters(NOTIFICATIONS, pending_only=False)
    assert done.replayed_at is not None
    assert await runner.replay(NOTIFICATIONS) == []
    # A redelivery of the replayed event is a duplicate now.
    assert await runner.settle(item, Settled().delivery(event, 2)) is Outcome.DUPLICATE
    assert await _notifications(databases, "partial") == 1
    with pytest.raises(InvalidInput, match="unknown consumer"):
        await runner.replay(NOTIFICATIONS, consumer_name="nobody")


async def test_a_dead_letter_of_an_unknown_consumer_fails_its_replay(databases: Databases) -> None:
    switch = Switch()
    (event,) = _events(uuid.uuid4())
    old = ConsumerRunner(databases, MemoryBus(), [_failing(switch)], max_attempts=1)
    await old.settle(old.get("test-failing"), Settled().delivery(event))
    (result,) = await ConsumerRunner(databases, MemoryBus(), [_writer()]).replay(NOTIFICATIONS)
    assert result.error is not None
    assert "unknown consumer" in result.error
    assert await count(databases, NOTIFICATIONS, DeadLetter.__table__) == 1


async def test_the_runner_retries_on_the_bus_and_other_consumers_are_unaffected(
    databases: Databases,
) -> None:
    switch = Switch()
    bus = MemoryBus(ack_wait=5.0)
    runner = ConsumerRunner(
        databases, bus, [_failing(switch), _writer()], max_attempts=3, backoff_base=0.01
    )
    user = uuid.uuid4()
    events = _events(user, 3)
    await bus.publish_many(events)
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await _until(lambda: _dead(runner, 3), WAIT)
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT)
    assert switch.calls == 9  # three attempts for each of three events
    assert await _notifications(databases, "seen") == 3
    assert await _notifications(databases, "partial") == 0
    assert await settle_all(runner, bus) == []  # everything was settled
    await bus.aclose()


@pytest.fixture
async def nats_bus(nats_url: str) -> AsyncIterator[NatsBus]:
    tag = uuid.uuid4().hex[:12]
    stream = f"AZORA_TEST_{tag}"
    bus = NatsBus(
        nats_url,
        stream=stream,
        subject_prefix=f"azoratest.{tag}",
        max_age=60,
        ack_wait=2.0,
        fetch_timeout=0.1,
        batch=4,
        timeout=2.0,
    )
    try:
        yield bus
    finally:
        await bus.aclose()
        client = await nats.connect(nats_url)
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await client.jetstream().delete_stream(stream)
        await client.close()


async def test_the_runner_on_nats_handles_retries_and_dead_letters(
    databases: Databases, nats_bus: NatsBus
) -> None:
    switch = Switch()
    runner = ConsumerRunner(
        databases, nats_bus, [_failing(switch), _writer()], max_attempts=2, backoff_base=0.05
    )
    events = _events(uuid.uuid4(), 2)
    await nats_bus.publish_many(events)
    await nats_bus.publish_many(events[:1])  # published twice: still handled once
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))

    async def settled() -> bool:
        return await _dead(runner, 2) and await _notifications(databases, "seen") == 2

    try:
        await _until(settled, WAIT * 2)
    finally:
        stop.set()
        await asyncio.wait_for(task, WAIT)
    assert await _notifications(databases, "seen") == 2
    assert {d.event_id for d in await runner.dead_letters(NOTIFICATIONS)} == {e.id for e in events}
    assert all(d.attempts == 2 for d in await runner.dead_letters(NOTIFICATIONS))
    switch.on = False
    assert all(r.ok for r in await runner.replay(NOTIFICATIONS))
    assert await _notifications(databases, "partial") == 2


async def test_a_runner_cancelled_while_waiting_for_events_ends_at_once(
    databases: Databases,
) -> None:
    """Ctrl-C on ``azora events consume`` cancels the runner while every consumer waits on
    the bus; the subscriptions must close cleanly instead of hanging."""

    async def nothing(uow: UnitOfWork, event: Envelope) -> None:
        raise AssertionError("no event was published")

    idle = [
        consumer(f"idle-{n}", "finance.>", service=ServiceName.NOTIFICATIONS)(nothing)
        for n in range(3)
    ]
    bus = MemoryBus()
    running = asyncio.create_task(ConsumerRunner(databases, bus, idle).run(asyncio.Event()))
    await asyncio.sleep(0.2)  # every consumer is waiting for a delivery
    running.cancel()
    done, _ = await asyncio.wait({running}, timeout=2)  # does not wait on a stuck task
    assert running in done
    assert running.cancelled()
    await bus.aclose()
