"""Catch-ups under abuse: rationed per connection, per user and per process, always
answered (``caught_up``), and never at the cost of ``/health`` or live events."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from azora.auth.service import AuthService
from azora.db.engines import Databases
from azora.db.outbox import EventMessage
from azora.db.uow import UnitOfWork
from azora.events.bus import Bus
from azora.events.buses import MemoryBus
from azora.events.relay import Relay
from azora.gateway.history import id_floor
from azora.gateway.server import Gateway
from azora.types import ServiceName
from tests.gateway.conftest import Recorder, User, assert_no_traceback, envelope, health, serving
from tests.gateway.raw import Raw

Connect = Callable[..., Awaitable[Recorder]]
NewUser = Callable[[], Awaitable[User]]

#: The largest UUIDv7: made in the year 10889.
LAST_UUID7 = uuid.UUID(int=(((1 << 48) - 1) << 80) | (0x7 << 76) | (0b10 << 62))


async def _archive(databases: Databases, user: uuid.UUID, count: int) -> list[str]:
    """Commit ``count`` events of ``user`` and relay them into the history; their ids."""
    messages = []
    async with UnitOfWork(databases, ServiceName.NOTIFICATIONS, as_service=True) as uow:
        for _ in range(count):
            data = envelope(user)
            message = EventMessage(
                type=data.type, source=data.source, payload=data.payload, subject=user
            )
            uow.emit(message)
            messages.append(message)
    relay = Relay(databases, MemoryBus(), services=[ServiceName.NOTIFICATIONS])
    assert await relay.run_once(ServiceName.NOTIFICATIONS) == count
    return [str(message.id) for message in messages]


async def test_a_last_event_id_from_the_future_means_nothing_was_missed(
    bus: Bus,
    url: str,
    connect: Connect,
    new_user: NewUser,
    logs: pytest.LogCaptureFixture,
) -> None:
    ama = await new_user()
    socket = await connect(url, {"token": ama.token, "last_event_id": str(LAST_UUID7)})
    await socket.wait_for(lambda: bool(socket.named("caught_up")))
    assert socket.named("caught_up") == [{"count": 0}]
    assert socket.named("gap") == []
    live = envelope(ama.id)
    await bus.publish_many([live])
    await socket.wait_for(lambda: socket.ids() == [str(live.id)])
    assert_no_traceback(logs)


async def test_a_catch_up_the_history_cannot_serve_still_ends_with_caught_up(
    databases: Databases,
    auth: AuthService,
    connect: Connect,
    new_user: NewUser,
    logs: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    ama = await new_user()
    since = str(id_floor(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)))
    # The nexus database (the history) cannot be opened; auth's is fine.
    settings = databases.settings.model_copy(
        update={"nexus_database_url": f"sqlite:///{tmp_path}/missing/nexus.db"}
    )
    bus = MemoryBus()
    async with Databases(settings) as broken, serving(Gateway(broken, bus, auth, settings)) as url:
        socket = await connect(url, {"token": ama.token, "last_event_id": since})
        await socket.wait_for(lambda: bool(socket.named("caught_up")))
        assert socket.named("gap") == [{"reason": "unavailable", "since": since}]
        assert socket.named("caught_up") == [{"count": 0}]
        live = envelope(ama.id)
        await bus.publish_many([live])
        await socket.wait_for(lambda: socket.ids() == [str(live.id)])
    [failure] = [r.getMessage() for r in logs.records if r.name == "azora.gateway.server"]
    assert failure.endswith("failed: OperationalError")
    assert_no_traceback(logs)


async def test_past_its_limits_a_catch_up_is_told_to_come_back_and_the_client_stays_live(
    databases: Databases,
    bus: Bus,
    limited: Callable[..., Gateway],
    connect: Connect,
    new_user: NewUser,
    logs: pytest.LogCaptureFixture,
) -> None:
    ama = await new_user()
    ids = await _archive(databases, ama.id, 3)
    gateway = limited(gateway_catch_up_concurrency=1, gateway_catch_up_queue=0)
    async with serving(gateway) as url:
        # Every place is taken (by another connection's catch-up).
        async with gateway.catch_ups.admit("elsewhere", uuid.uuid4()):
            socket = await connect(url, {"token": ama.token, "last_event_id": ids[0]})
            await socket.wait_for(lambda: bool(socket.named("caught_up")))
            [gap] = socket.named("gap")
            assert gap.pop("since") == ids[0]
            assert gap.pop("reason") == "busy"
            assert 1_000 <= gap.pop("retry_after_ms") <= 2_000
            assert gap == {}
            assert socket.named("caught_up") == [{"count": 0}]
            live = envelope(ama.id)
            await bus.publish_many([live])
            await socket.wait_for(lambda: socket.ids() == [str(live.id)])
            catch_ups = (await health(url))["catch_ups"]
            assert catch_ups.pop("paced_ms") >= 0
            assert catch_ups == {"running": 1, "waiting": 0, "refused": 1}
        # Coming back from where the gap began, once there is room: nothing is lost.
        again = await connect(url, {"token": ama.token, "last_event_id": ids[0]})
        await again.wait_for(lambda: bool(again.named("caught_up")))
    assert again.named("gap") == []
    assert again.ids() == [*ids[1:], str(live.id)]
    assert_no_traceback(logs)


async def test_a_storm_of_catch_ups_is_rationed_and_starves_neither_health_nor_live_events(
    databases: Databases,
    bus: Bus,
    limited: Callable[..., Gateway],
    connect: Connect,
    new_user: NewUser,
    logs: pytest.LogCaptureFixture,
) -> None:
    ama, esi = await new_user(), await new_user()
    ids = await _archive(databases, ama.id, 300)
    gateway = limited(
        gateway_catch_up_concurrency=2,
        gateway_catch_up_queue=4,
        gateway_catch_up_per_user=3,
        gateway_connect_rate_per_user=0,  # one user's 21 connects: all let in
    )
    asking = {"token": ama.token, "last_event_id": ids[0]}
    async with serving(gateway) as url:
        polite = await connect(url, {"token": esi.token})
        # One connection asks for a catch-up a hundred times (connect sent as an event)...
        hostile = await Raw.open(url, {"token": ama.token})
        for _ in range(100):
            await hostile.send('42["connect",{},' + json.dumps(asking) + "]")

        # ... and twenty reconnect at once.
        async def reconnect() -> Raw:
            client = await Raw.open(url, asking)
            await client.wait_for(lambda: client.events("caught_up") != [])
            return client

        storm = asyncio.gather(*(reconnect() for _ in range(20)))
        assert (await health(url))["status"] == "ok"
        live = envelope(esi.id)
        await bus.publish_many([live])
        await polite.wait_for(lambda: polite.ids() == [str(live.id)])
        clients = await storm
        assert gateway.catch_ups.peak <= 2
        served = 0
        for client in clients:
            [caught_up] = client.events("caught_up")
            gaps = client.events("gap")
            if gaps:
                assert [gap["reason"] for gap in gaps] == ["busy"]
                assert caught_up == {"count": 0}
            else:
                served += 1
                assert caught_up == {"count": 299}
                assert [e["id"] for e in client.events("notification.created")] == ids[1:]
        assert served >= 1
        assert hostile.events("caught_up") == []  # none of its hundred ran
        for client in [hostile, *clients]:
            await client.close()
    assert_no_traceback(logs)
