"""Hostile clients against a served gateway, in raw Engine.IO/Socket.IO frames: what
they send is refused or closes their connection, and meanwhile a well-behaved client
still gets its events, ``/health`` still answers and the log holds no traceback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from azora.events.bus import Bus
from azora.gateway.server import Gateway
from tests.gateway.conftest import (
    WAIT,
    Recorder,
    Refused,
    User,
    assert_no_traceback,
    envelope,
    health,
)
from tests.gateway.raw import Raw

Connect = Callable[..., Awaitable[Recorder]]
NewUser = Callable[[], Awaitable[User]]
OpenRaw = Callable[..., Awaitable[Raw]]

#: Frames that are not Socket.IO packets a client may send (after the Engine.IO
#: handshake): empty, not Engine.IO, binary, an unknown Engine.IO or Socket.IO type, a
#: Socket.IO message that does not decode, events that are not [NAME, ...], Engine.IO
#: data nested too deeply to decode.
GARBAGE: list[str | bytes] = [
    "",
    "x",
    "9",
    "bZZZ",
    b"\x00\x01",
    "4",
    "4x",
    "47",
    "44",
    "451-[]",
    "42",
    "42{}",
    "42[]",
    "42[1]",
    '42["subscribe",{]',
    "42" + "[" * 5_000,
    "4" + "[" * 5_000 + "]" * 5_000,
]


@pytest.fixture
async def raw() -> AsyncIterator[OpenRaw]:
    """Opens raw connections (:meth:`Raw.open`); closes them afterwards."""
    opened: list[Raw] = []

    async def open_raw(base: str, auth: Any = None) -> Raw:
        connection = await Raw.open(base, auth)
        opened.append(connection)
        return connection

    yield open_raw
    for connection in opened:
        await connection.close()


def guard_lines(logs: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in logs.records if r.name == "azora.gateway.guard"]


async def test_connect_and_disconnect_sent_as_events_reach_no_handler(
    bus: Bus,
    url: str,
    gateway: Gateway,
    new_user: NewUser,
    raw: OpenRaw,
    logs: pytest.LogCaptureFixture,
) -> None:
    ama, kofi = await new_user(), await new_user()
    socket = await raw(url, {"token": ama.token})
    hijack = await socket.call(1, "connect", {}, {"token": kofi.token})
    leave = await socket.call(2, "disconnect")
    await socket.send('42["connect",{},' + json.dumps({"token": kofi.token}) + "]")
    await socket.send('42["disconnect"]')
    for answer in (hijack, leave):
        assert answer["ok"] is False
        assert answer["error"]["code"] == "invalid_request"
    # Still Ama's connection, and still registered.
    assert (await socket.call(3, "authenticate", {"token": ama.token}))["ok"] is True
    assert [c.user_id for c in gateway.hub.connections.values()] == [ama.id]
    kofis, amas = envelope(kofi.id), envelope(ama.id)
    await bus.publish_many([kofis, amas])
    await socket.wait_for(lambda: socket.events("notification.created") != [])
    assert [e["id"] for e in socket.events("notification.created")] == [str(amas.id)]
    assert (await health(url))["invalid_input"] == 4
    assert_no_traceback(logs)


async def test_a_garbage_frame_closes_its_connection_and_frees_it_at_once(
    bus: Bus,
    url: str,
    gateway: Gateway,
    new_user: NewUser,
    connect: Connect,
    raw: OpenRaw,
    logs: pytest.LogCaptureFixture,
) -> None:
    user = await new_user()
    polite = await connect(url, {"token": user.token})
    for number, frame in enumerate(GARBAGE):
        # Every other one right after the Engine.IO handshake, before signing in.
        signed_in = number % 2 == 0
        hostile = await raw(url, {"token": user.token} if signed_in else None)
        assert len(gateway.hub.connections) == 1 + signed_in
        await hostile.send(frame)
        await hostile.wait_closed()
        # Left before the connection closed, not when the heartbeat gives up.
        assert len(gateway.hub.connections) == 1
    mine = envelope(user.id)
    await bus.publish_many([mine])
    await polite.wait_for(lambda: polite.ids() == [str(mine.id)])
    assert (await health(url))["invalid_input"] == len(GARBAGE)
    assert len(guard_lines(logs)) == len(GARBAGE)  # one line per connection
    assert_no_traceback(logs)


async def test_a_flood_of_invalid_input_is_counted_and_logged_once_per_connection(
    url: str, new_user: NewUser, raw: OpenRaw, logs: pytest.LogCaptureFixture
) -> None:
    user = await new_user()
    caller = await raw(url, {"token": user.token})
    for _ in range(1_000):
        await caller.send('42["nope",{}]')  # no answer asked for: none sent
    # Handled in order: once this is answered, the flood has been.
    assert await caller.call(1, "subscribe", {"patterns": ["system.*"]}) == {"ok": True, "count": 1}
    assert caller.answers().keys() == {1}
    garbler = await raw(url, {"token": user.token})
    for _ in range(1_000):
        await garbler.send("42[]")
    await garbler.wait_closed()
    counted = (await health(url))["invalid_input"]
    assert 1_001 <= counted <= 2_000  # the garbage after the first may go unread
    assert len(guard_lines(logs)) == 2
    assert sum(len(r.getMessage()) for r in logs.records) < 2_000
    assert_no_traceback(logs)


async def test_every_malformed_call_gets_a_short_error_answer(
    url: str,
    new_user: NewUser,
    connect: Connect,
    raw: OpenRaw,
    logs: pytest.LogCaptureFixture,
) -> None:
    user = await new_user()
    socket = await raw(url, {"token": user.token})
    long = "x" * 60_000
    calls: list[tuple[Any, ...]] = [
        ("subscribe",),
        ("subscribe", 10**300),
        ("subscribe", {"patterns": [10**300]}),
        ("subscribe", {"patterns": [long]}),
        ("subscribe", {"patterns": ["a." + long]}),
        ("subscribe", {"patterns": ["system.>"]}, {"more": 1}),
        ("subscribe", {"patterns": ["system.>"], "user": long}),
        ("unsubscribe", [long]),
        ("authenticate", long),
        ("authenticate", {"token": long}),
        (long,),
    ]
    for ack, call in enumerate(calls, start=1):
        answer = await socket.call(ack, *call)
        assert answer["ok"] is False, call[:2]
        assert answer["error"]["code"] != "internal_error"
        assert len(json.dumps(answer)) < 400, answer
    answer = await socket.call(99, "subscribe", {"patterns": ["system.*"]})
    assert answer == {"ok": True, "count": 1}
    with pytest.raises(Refused) as refused:
        await connect(url, {"token": user.token, "last_event_id": long})
    assert refused.value.reason["data"]["code"] == "invalid_request"
    assert len(refused.value.reason["message"]) < 120
    assert_no_traceback(logs)


async def test_patterns_are_capped_per_connection_and_answered_with_a_count(
    bus: Bus,
    url: str,
    gateway: Gateway,
    new_user: NewUser,
    connect: Connect,
    logs: pytest.LogCaptureFixture,
) -> None:
    user = await new_user()
    socket = await connect(url, {"token": user.token})
    patterns = [f"system.p{i}" for i in range(62)] + ["system.alert", "system.*"]
    for start in range(0, 64, 16):
        answer = await socket.client.call("subscribe", {"patterns": patterns[start : start + 16]})
        assert answer == {"ok": True, "count": start + 16}
    # Past the cap, in whatever messages: refused, nothing added.
    for more, code in [
        (["finance.>"], "too_many_patterns"),
        ([f"finance.p{i}" for i in range(65)], "invalid_request"),
        (["a." + "b" * 300], "invalid_event_pattern"),
    ]:
        refused = await socket.client.call("subscribe", {"patterns": more})
        assert refused["ok"] is False
        assert refused["error"]["code"] == code
        assert len(json.dumps(refused)) < 400
    [connection] = gateway.hub.connections.values()
    assert connection.patterns == set(patterns)
    alert = envelope(None)  # matched by two of the patterns: sent once
    await bus.publish_many([alert, envelope(None, "system.health.check"), envelope(user.id)])
    await socket.wait_for(lambda: len(socket.envelopes()) == 2)
    assert socket.ids()[0] == str(alert.id)
    assert await socket.client.call("unsubscribe", {"patterns": patterns[:10]}) == {
        "ok": True,
        "count": 54,
    }
    assert_no_traceback(logs)


async def test_a_garbage_long_polling_post_is_refused_and_ends_its_session(
    url: str,
    gateway: Gateway,
    new_user: NewUser,
    logs: pytest.LogCaptureFixture,
) -> None:
    user = await new_user()
    polling = f"{url}/socket.io/?EIO=4&transport=polling"
    bodies = [b"\xff\xfe", b"x", b"9", b"bZZZ", b"4", b"42[]", "\x1e".join(["6"] * 17).encode()]
    async with aiohttp.ClientSession() as http, asyncio.timeout(WAIT):
        for body in bodies:
            async with http.get(polling) as response:
                session = json.loads((await response.text())[1:])["sid"]
            here = f"{polling}&sid={session}"
            async with http.post(here, data=("40" + json.dumps({"token": user.token})).encode()):
                pass
            async with http.get(here) as response:
                assert (await response.text()).startswith("40")
            assert len(gateway.hub.connections) == 1
            # Answered at once, though this client never polls what is queued for it.
            async with http.post(here, data=body) as response:
                assert response.status in {200, 400}
            assert gateway.hub.connections == {}
    assert (await health(url))["invalid_input"] == len(bodies)
    assert_no_traceback(logs)
