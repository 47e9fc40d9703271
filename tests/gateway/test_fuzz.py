"""Random Engine.IO/Socket.IO frames against a served gateway: whatever a client sends,
the gateway neither crashes nor wedges (a well-behaved client beside it keeps getting its
events), ``/health`` still answers and the log holds no traceback."""

from __future__ import annotations

import asyncio
import gc
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import hypothesis
import pytest
from hypothesis import strategies as st

from azora.auth.service import AuthService
from azora.db.engines import Databases
from azora.events.bus import Bus
from azora.gateway.server import CLIENT_EVENTS, Gateway
from tests.gateway.conftest import (
    WAIT,
    Recorder,
    User,
    assert_no_traceback,
    envelope,
    health,
    serving,
)
from tests.gateway.raw import Raw

Connect = Callable[..., Awaitable[Recorder]]
NewUser = Callable[[], Awaitable[User]]
T = TypeVar("T")

#: Examples per run (each on a fresh connection), kept to a few seconds per backend.
EXAMPLES = 150
#: How often the well-behaved client is sent one of its events while the fuzzing runs.
BEAT = 0.1

#: Event names a client may, may not, or could only try to send.
NAMES = [
    "subscribe",
    "unsubscribe",
    "authenticate",
    "connect",
    "disconnect",
    "connect_error",
    "message",
    "error",
    "*",
    "",
]
#: Starts of valid framings: Engine.IO packet types, Socket.IO packet types in a message
#: (``4``), with a namespace, an ack id or a binary attachment count.
PREFIXES = [
    "",
    "0",
    "1",
    "2",
    "3",
    "2probe",
    "5",
    "6",
    "4",
    "40",
    "41",
    "42",
    "43",
    "44",
    "45",
    "46",
    "421",
    "4299999999999999999999",
    "40/",
    "42/other,",
    "451-",
    "4510-",
    "b",
]


def _values() -> st.SearchStrategy[Any]:
    """JSON values, nested a little, with the keys the gateway reads among others."""
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.integers(0, 4_000).map(lambda digits: 10**digits)
        | st.floats()
        | st.text(max_size=20)
        | st.uuids().map(str)
        | st.sampled_from(["system.*", "system.>", ">", "*", "a." + "b" * 300])
    )
    keys = st.sampled_from(["patterns", "token", "last_event_id", "subscribe"]) | st.text(
        max_size=8
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=12,
    )


def _frames(token: str) -> st.SearchStrategy[str | bytes]:
    """One frame a hostile client could send (after the Engine.IO handshake): mostly
    events, the gateway's own names first, with or without an ack id."""
    handled = st.sampled_from(CLIENT_EVENTS)
    event = st.builds(
        lambda name, arguments: json.dumps([name, *arguments]),
        st.one_of(handled, handled, st.sampled_from(NAMES), st.text(max_size=20), _values()),
        st.lists(_values(), max_size=3),
    )
    acked = st.builds(lambda ack, data: f"42{ack}{data}", st.integers(0, 10**20), event)
    auth = st.builds(
        lambda given, extra: json.dumps({**extra, "token": given}),
        st.just(token) | st.text(max_size=20),
        st.dictionaries(st.sampled_from(["subscribe", "last_event_id", "x"]), _values()),
    )
    body = (
        event
        | _values().map(json.dumps)
        | st.text(max_size=40)
        | st.integers(1, 70_000).map(lambda size: json.dumps(["subscribe", "x" * size]))
        | st.integers(1, 5_000).map(lambda depth: "[" * depth + "]" * depth)
        | st.integers(4_300, 6_000).map(lambda digits: '["subscribe",' + "9" * digits + "]")
    )
    return st.one_of(
        event.map(lambda data: "42" + data),
        acked,
        st.builds(lambda prefix, rest: prefix + rest, st.sampled_from(PREFIXES), body),
        auth.map(lambda data: "40" + data),
        st.binary(max_size=20),
    )


def _in_loop(loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, T]) -> T:
    """Run ``work`` in ``loop`` (serving the gateway) from the fuzzing thread."""
    return asyncio.run_coroutine_threadsafe(work, loop).result(timeout=4 * WAIT)


@pytest.fixture
async def fuzzed_url(databases: Databases, bus: Bus, auth: AuthService) -> AsyncIterator[str]:
    """A gateway that lets one address open as many sessions as the fuzzing needs."""
    settings = databases.settings.model_copy(
        update={
            "gateway_connection_rate_per_ip": 0,
            "gateway_handshake_rate_per_ip": 0,
            "gateway_connect_rate_per_ip": 0,
            "gateway_connect_rate_per_user": 0,
        }
    )
    async with serving(Gateway(databases, bus, auth, settings)) as base:
        yield base


async def test_random_frames_neither_crash_nor_wedge_the_gateway(
    bus: Bus,
    fuzzed_url: str,
    new_user: NewUser,
    connect: Connect,
    logs: pytest.LogCaptureFixture,
) -> None:
    hostile, polite = await new_user(), await new_user()
    watcher = await connect(fuzzed_url, {"token": polite.token})
    sent: list[uuid.UUID] = []
    loop = asyncio.get_running_loop()

    async def send_frames(signed_in: bool, frames: list[str | bytes]) -> None:
        """Send ``frames`` on a fresh session (signed in first, if asked), opening another
        when the gateway closes one."""
        sign_in = {"token": hostile.token} if signed_in else None
        socket = await Raw.open(fuzzed_url, sign_in)
        try:
            for frame in frames:
                if socket.closed.is_set():
                    await socket.close()
                    socket = await Raw.open(fuzzed_url, sign_in)
                await socket.send(frame)
        finally:
            await socket.close()

    @hypothesis.settings(max_examples=EXAMPLES, deadline=None)
    @hypothesis.given(st.booleans(), st.lists(_frames(hostile.token), min_size=1, max_size=6))
    def fuzz(signed_in: bool, frames: list[str | bytes]) -> None:
        before = len(logs.records)
        _in_loop(loop, send_frames(signed_in, frames))
        # Checked after each example, so that a failure shrinks to the frames causing it.
        gc.collect(1)  # a task's unretrieved exception is logged when the task is collected
        logged = [r.getMessage() for r in logs.records[before:] if r.exc_info or r.exc_text]
        assert logged == []

    async def beat(done: asyncio.Event) -> None:
        while not done.is_set():
            mine = envelope(polite.id)
            sent.append(mine.id)
            await bus.publish_many([mine])
            await asyncio.sleep(BEAT)

    done = asyncio.Event()
    beating = asyncio.create_task(beat(done))
    try:
        await asyncio.to_thread(fuzz)
    finally:
        done.set()
        await beating
    last = envelope(polite.id)
    sent.append(last.id)
    await bus.publish_many([last])
    await watcher.wait_for(lambda: len(watcher.ids()) == len(sent))
    assert watcher.ids() == [str(event_id) for event_id in sent]
    assert len(sent) > 2  # some arrived while the fuzzing ran
    assert (await health(fuzzed_url))["invalid_input"] > 0  # the frames did reach it
    assert_no_traceback(logs)
