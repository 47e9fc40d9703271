"""The hub's routing and catch-up logic, with a recording emitter (no server, no bus)."""

from __future__ import annotations

import uuid

import pytest

from azora.events.envelope import Envelope
from azora.events.errors import InvalidPattern
from azora.gateway.hub import Hub
from tests.gateway.conftest import envelope


class Sent:
    def __init__(self) -> None:
        self.calls: list[tuple[uuid.UUID, list[str]]] = []

    async def __call__(self, event: Envelope, sids: list[str]) -> None:
        self.calls.append((event.id, sorted(sids)))


async def test_user_events_go_to_their_user_only_and_public_ones_to_subscribers() -> None:
    sent = Sent()
    hub = Hub(sent)
    ama, kofi = uuid.uuid4(), uuid.uuid4()
    hub.join("a1", ama, ["system.*"], catching_up=False)
    hub.join("a2", ama, [], catching_up=False)
    hub.join("k1", kofi, [">"], catching_up=False)
    mine, public, health = envelope(ama), envelope(None), envelope(None, "system.health.check")
    for event in (mine, public, health):
        await hub.route(event)
    assert sent.calls == [
        (mine.id, ["a1", "a2"]),
        (public.id, ["a1", "k1"]),
        (health.id, ["k1"]),  # system.* is one level: not system.health.check
    ]


async def test_a_repeated_event_is_routed_once_and_a_departed_connection_gets_nothing() -> None:
    sent = Sent()
    hub = Hub(sent)
    ama = uuid.uuid4()
    hub.join("a1", ama, ["system.>"], catching_up=False)
    event = envelope(ama)
    await hub.route(event)
    await hub.route(event)
    hub.leave("a1")
    hub.leave("a1")  # twice is harmless
    await hub.route(envelope(ama))
    await hub.route(envelope(None))
    assert sent.calls == [(event.id, ["a1"])]
    assert hub.connections == {}


def test_a_malformed_pattern_registers_nothing() -> None:
    hub = Hub(Sent())
    with pytest.raises(InvalidPattern):
        hub.join("a1", uuid.uuid4(), ["system.>", "bad..pattern"], catching_up=False)
    assert hub.connections == {}
    hub.join("a1", uuid.uuid4(), ["system.>"], catching_up=False)
    with pytest.raises(InvalidPattern):
        hub.subscribe("a1", ["finance.*", "finance.>.x"])
    assert hub.subscribe("a1", []) == ["system.>"]
    assert hub.unsubscribe("a1", ["system.>", "never.subscribed"]) == []


async def test_events_routed_during_a_catch_up_follow_it_without_repeats() -> None:
    sent = Sent()
    hub = Hub(sent)
    ama = uuid.uuid4()
    connection = hub.join("a1", ama, [], catching_up=True)
    missed = [envelope(ama) for _ in range(3)]
    during = [missed[2], envelope(ama)]  # one of them also came in the catch-up
    for event in during:
        await hub.route(event)
    assert sent.calls == []  # held while catching up
    await hub.finish_catch_up(connection, missed)
    after = envelope(ama)
    await hub.route(after)
    assert [event_id for event_id, _ in sent.calls] == [
        *(e.id for e in missed),
        during[1].id,
        after.id,
    ]


async def test_recent_events_after_a_known_id_are_the_exact_catch_up() -> None:
    hub = Hub(Sent(), recent=3)
    ama = uuid.uuid4()
    connection = hub.join("a1", ama, [], catching_up=False)
    events = [envelope(ama) for _ in range(4)]
    for event in events:
        await hub.route(event)
    assert hub.recent_for(connection, events[1].id) == events[2:]
    assert hub.recent_for(connection, events[3].id) == []  # known, nothing after it
    assert hub.recent_for(connection, events[0].id) is None  # pushed out of the window
