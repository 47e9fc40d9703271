"""Reconnecting clients get what they missed: from the hub's recent events or the history."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable

from azora.auth.service import AuthService
from azora.db.engines import Databases
from azora.db.outbox import EventMessage
from azora.db.uow import UnitOfWork
from azora.events.bus import Bus
from azora.events.buses import MemoryBus
from azora.events.envelope import Envelope
from azora.events.relay import Relay
from azora.gateway.history import id_floor
from azora.gateway.server import Gateway
from azora.types import ServiceName
from tests.gateway.conftest import Recorder, User, envelope, serving

Connect = Callable[..., Awaitable[Recorder]]
NewUser = Callable[[], Awaitable[User]]


async def test_a_quick_reconnection_gets_exactly_what_it_missed_then_live_events(
    bus: Bus, url: str, connect: Connect, new_user: NewUser
) -> None:
    ama = await new_user()
    first = await connect(url, {"token": ama.token, "subscribe": ["system.*"]})
    seen = envelope(ama.id)
    await bus.publish_many([seen])
    await first.wait_for(lambda: len(first.envelopes()) == 1)
    await first.client.disconnect()
    missed = [envelope(ama.id), envelope(None), envelope(ama.id)]
    await bus.publish_many([*missed, envelope(None, "system.health.check")])
    # An event of another user in between is not for Ama.
    await bus.publish_many([envelope((await new_user()).id)])

    again = await connect(
        url, {"token": ama.token, "subscribe": ["system.alert"], "last_event_id": str(seen.id)}
    )
    await again.wait_for(lambda: bool(again.named("caught_up")))
    live = envelope(ama.id)
    await bus.publish_many([live, missed[0]])  # a repeat from the bus is dropped
    await again.wait_for(lambda: len(again.envelopes()) == 4)
    assert again.ids() == [str(e.id) for e in [*missed, live]]
    assert again.named("caught_up") == [{"count": 3}]
    assert again.named("gap") == []


async def _archive(databases: Databases, events: list[EventMessage]) -> None:
    """Commit ``events`` in the notifications database and relay them into the history."""
    for event in events:
        async with UnitOfWork(databases, ServiceName.NOTIFICATIONS, as_service=True) as uow:
            uow.emit(event)
    relay = Relay(databases, MemoryBus(), services=[ServiceName.NOTIFICATIONS])
    assert await relay.run_once(ServiceName.NOTIFICATIONS) == len(events)


def _message(data: Envelope) -> EventMessage:
    return EventMessage(
        type=data.type, source=data.source, payload=data.payload, subject=data.subject
    )


async def test_a_reconnection_to_another_gateway_catches_up_from_the_history(
    databases: Databases, auth: AuthService, connect: Connect, new_user: NewUser
) -> None:
    ama, kofi = await new_user(), await new_user()
    events = [_message(envelope(user.id)) for user in (ama, kofi, ama, ama)]
    await _archive(databases, events)
    # A fresh gateway: its hub has seen none of them.
    async with serving(Gateway(databases, MemoryBus(), auth, databases.settings)) as url:
        socket = await connect(url, {"token": ama.token, "last_event_id": str(events[0].id)})
        await socket.wait_for(lambda: bool(socket.named("caught_up")))
    assert socket.ids() == [str(events[2].id), str(events[3].id)]
    assert socket.named("gap") == []
    assert socket.envelopes()[0]["payload"] == events[2].payload


async def test_history_that_no_longer_reaches_back_sends_a_gap_signal(
    databases: Databases, auth: AuthService, connect: Connect, new_user: NewUser
) -> None:
    ama = await new_user()
    events = [_message(envelope(ama.id)) for _ in range(2)]
    await _archive(databases, events)
    long_ago = id_floor(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    async with serving(Gateway(databases, MemoryBus(), auth, databases.settings)) as url:
        socket = await connect(url, {"token": ama.token, "last_event_id": str(long_ago)})
        await socket.wait_for(lambda: bool(socket.named("caught_up")))
    assert socket.named("gap") == [{"reason": "expired", "since": str(long_ago)}]
    assert socket.ids() == [str(e.id) for e in events]
    assert next(name for name, _ in socket.events) == "gap"  # the signal comes first


async def test_more_missed_events_than_the_limit_send_the_newest_and_a_gap(
    databases: Databases, auth: AuthService, connect: Connect, new_user: NewUser
) -> None:
    ama = await new_user()
    events = [_message(envelope(ama.id)) for _ in range(6)]
    await _archive(databases, events)
    settings = databases.settings.model_copy(update={"gateway_catch_up_limit": 2})
    async with serving(Gateway(databases, MemoryBus(), auth, settings)) as url:
        socket = await connect(url, {"token": ama.token, "last_event_id": str(events[0].id)})
        await socket.wait_for(lambda: bool(socket.named("caught_up")))
    assert socket.named("gap") == [{"reason": "truncated", "since": str(events[0].id)}]
    assert socket.ids() == [str(e.id) for e in events[-2:]]


async def test_recent_events_stay_within_their_byte_bound_and_older_come_from_the_history(
    databases: Databases, bus: Bus, auth: AuthService, connect: Connect, new_user: NewUser
) -> None:
    ama = await new_user()
    bound = 4_096
    settings = databases.settings.model_copy(update={"gateway_recent_bytes": bound})
    gateway = Gateway(databases, bus, auth, settings)
    relay = Relay(databases, bus, services=[ServiceName.NOTIFICATIONS])

    async def relayed(count: int, watcher: Recorder) -> list[EventMessage]:
        """``count`` events for Ama with the largest titles, archived and routed (once
        ``watcher``, a connection of Ama's, has them all)."""
        events = [_message(envelope(ama.id)) for _ in range(count)]
        for event in events:
            event.payload["title"] = "x" * 200
            async with UnitOfWork(databases, ServiceName.NOTIFICATIONS, as_service=True) as uow:
                uow.emit(event)
        received = len(watcher.envelopes()) + count
        assert await relay.run_once(ServiceName.NOTIFICATIONS) == count
        await watcher.wait_for(lambda: len(watcher.envelopes()) == received)
        return events

    async with serving(gateway) as url:
        first = await connect(url, {"token": ama.token})
        watcher = await connect(url, {"token": ama.token})
        [seen] = await relayed(1, first)
        await first.client.disconnect()
        missed = await relayed(30, watcher)
        assert 0 < gateway.hub.recent_bytes <= bound
        assert gateway.hub.recent_count < len(missed)  # Ama's last event was evicted
        again = await connect(url, {"token": ama.token, "last_event_id": str(seen.id)})
        await again.wait_for(lambda: bool(again.named("caught_up")))
    assert again.ids() == [str(e.id) for e in missed]
    assert again.named("caught_up") == [{"count": len(missed)}]
    assert again.named("gap") == []
