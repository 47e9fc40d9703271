"""The hub's routing and catch-up logic, with a recording emitter (no server, no bus)."""

from __future__ import annotations

import uuid

import pytest

from azora.events.envelope import Envelope
from azora.events.errors import InvalidPattern
from azora.gateway.errors import TooManyPatterns
from azora.gateway.hub import MAX_PATTERN_LENGTH, Hub, unkept
from tests.gateway.conftest import envelope


class Sent:
    def __init__(self) -> None:
        self.calls: list[tuple[uuid.UUID, list[str]]] = []

    async def __call__(self, event: Envelope, encoded: str, sids: list[str]) -> None:
        assert Envelope.model_validate_json(encoded) == event
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
    assert [unkept(k) for k in hub.recent_for(connection, events[1].id) or []] == events[2:]
    assert hub.recent_for(connection, events[3].id) == []  # known, nothing after it
    assert hub.recent_for(connection, events[0].id) is None  # pushed out of the window


def test_a_connection_holds_at_most_its_cap_of_patterns_whatever_the_messages() -> None:
    hub = Hub(Sent(), max_patterns=4)
    hub.join("a1", uuid.uuid4(), ["a.*", "b.*"], catching_up=False)
    assert hub.subscribe("a1", ["c.*", "a.*"]) == ["a.*", "b.*", "c.*"]  # a repeat is free
    with pytest.raises(TooManyPatterns):
        hub.subscribe("a1", ["d.*", "e.*"])  # one message past the cap: nothing added
    assert hub.subscribe("a1", ["d.*"]) == ["a.*", "b.*", "c.*", "d.*"]
    with pytest.raises(TooManyPatterns):
        hub.subscribe("a1", ["e.*"])  # one more, one at a time: refused all the same
    with pytest.raises(TooManyPatterns):
        hub.join("a2", uuid.uuid4(), [f"x{i}.*" for i in range(5)], catching_up=False)
    assert list(hub.connections) == ["a1"]
    assert hub.unsubscribe("a1", ["a.*"]) == ["b.*", "c.*", "d.*"]
    assert hub.subscribe("a1", ["e.*"]) == ["b.*", "c.*", "d.*", "e.*"]  # room again


def test_a_pattern_longer_than_the_limit_is_refused_without_being_echoed() -> None:
    hub = Hub(Sent())
    hub.join("a1", uuid.uuid4(), [], catching_up=False)
    longest = "a." + "b" * (MAX_PATTERN_LENGTH - 2)
    assert hub.subscribe("a1", [longest]) == [longest]
    with pytest.raises(InvalidPattern) as refused:
        hub.subscribe("a1", [longest + "b"])
    assert len(refused.value.message) < 120
    with pytest.raises(InvalidPattern) as refused:
        hub.subscribe("a1", ["Bad" * 60])  # malformed, and echoed only in part
    assert "Bad" * 14 not in refused.value.message  # 40 characters of it at most
    assert len(refused.value.message) < 200


async def test_public_events_reach_every_subscriber_once_however_many_patterns_match() -> None:
    sent = Sent()
    hub = Hub(sent)
    hub.join("a1", uuid.uuid4(), ["system.*", "system.alert", ">", "*.alert"], catching_up=False)
    hub.join("k1", uuid.uuid4(), ["system.>"], catching_up=False)
    hub.join("e1", uuid.uuid4(), ["finance.>"], catching_up=False)
    event = envelope(None)
    await hub.route(event)
    hub.leave("k1")
    hub.unsubscribe("a1", ["system.*", "system.alert", ">"])
    later = envelope(None)
    await hub.route(later)
    assert sent.calls == [(event.id, ["a1", "k1"]), (later.id, ["a1"])]
