"""The Socket.IO gateway end to end: real clients, a served gateway, both databases."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from azora.db.engines import Databases
from azora.db.outbox import EventMessage
from azora.db.uow import UnitOfWork
from azora.events.bus import Bus
from azora.events.catalog import CATALOG
from azora.events.relay import Relay
from azora.gateway.server import Gateway
from azora.types import ServiceName
from tests.gateway.conftest import Recorder, Refused, User, envelope

Connect = Callable[..., Awaitable[Recorder]]
NewUser = Callable[[], Awaitable[User]]


async def test_a_user_receives_the_events_committed_for_them_and_nobody_elses(
    databases: Databases, bus: Bus, url: str, connect: Connect, new_user: NewUser
) -> None:
    ama, kofi = await new_user(), await new_user()
    ama_socket = await connect(url, {"token": ama.token})
    kofi_socket = await connect(url, {"token": kofi.token})
    relay = Relay(databases, bus, services=[ServiceName.NOTIFICATIONS])
    for user in (ama, kofi, ama):
        async with UnitOfWork(databases, ServiceName.NOTIFICATIONS, as_service=True) as uow:
            uow.emit(EventMessage(**_message(user.id)))
    # Rolled back: never seen by anyone.
    with pytest.raises(RuntimeError):
        async with UnitOfWork(databases, ServiceName.NOTIFICATIONS, as_service=True) as uow:
            uow.emit(EventMessage(**_message(ama.id)))
            raise RuntimeError("the change failed")
    assert await relay.run_once(ServiceName.NOTIFICATIONS) == 3
    await ama_socket.wait_for(lambda: len(ama_socket.envelopes()) == 2)
    await kofi_socket.wait_for(lambda: len(kofi_socket.envelopes()) == 1)
    assert {e["subject"] for e in ama_socket.envelopes()} == {str(ama.id)}
    assert [e["subject"] for e in kofi_socket.envelopes()] == [str(kofi.id)]
    assert ama_socket.envelopes()[0]["type"] == "notification.created"


async def test_no_pattern_or_room_request_reaches_another_users_events(
    bus: Bus, url: str, connect: Connect, new_user: NewUser
) -> None:
    ama, kofi = await new_user(), await new_user()
    snoop = await connect(url, {"token": ama.token, "subscribe": [">"]})
    answer = await snoop.client.call("subscribe", {"patterns": ["notification.>", "*.*.*"]})
    assert answer["ok"] is True
    for request in ({"room": str(kofi.id)}, {"patterns": [">"], "user": str(kofi.id)}):
        refused = await snoop.client.call("subscribe", request)
        assert refused["ok"] is False
        assert refused["error"]["code"] == "forbidden"
    await bus.publish_many([envelope(kofi.id), envelope(kofi.id, "finance.mining.reward")])
    await bus.publish_many([envelope(ama.id)])  # a marker: once it is here, Kofi's were routed
    await snoop.wait_for(lambda: len(snoop.envelopes()) == 1)
    assert [e["subject"] for e in snoop.envelopes()] == [str(ama.id)]


async def test_public_events_come_once_subscribed_and_stop_once_unsubscribed(
    bus: Bus, url: str, connect: Connect, new_user: NewUser
) -> None:
    ama = await new_user()
    socket = await connect(url, {"token": ama.token})
    await bus.publish_many([envelope(None)])  # before subscribing: not for this client
    answer = await socket.client.call("subscribe", {"patterns": ["system.*"]})
    assert answer == {"ok": True, "count": 1}
    # Published right after the answer: the subscription was live when it was given.
    after = envelope(None)
    await bus.publish_many([after])
    await socket.wait_for(lambda: len(socket.envelopes()) == 1)
    assert socket.ids() == [str(after.id)]
    assert await socket.client.call("unsubscribe", {"patterns": ["system.*"]}) == {
        "ok": True,
        "count": 0,
    }
    await bus.publish_many([envelope(None), envelope(ama.id)])
    await socket.wait_for(lambda: len(socket.envelopes()) == 2)
    assert socket.envelopes()[1]["subject"] == str(ama.id)


@pytest.mark.parametrize(
    "request_",
    [{"patterns": ["finance..x"]}, {"patterns": "system.>"}, {"patterns": [1]}, "system.>"],
)
async def test_a_malformed_subscription_is_refused_with_a_reason(
    url: str, connect: Connect, new_user: NewUser, request_: Any
) -> None:
    socket = await connect(url, {"token": (await new_user()).token})
    answer = await socket.client.call("subscribe", request_)
    assert answer["ok"] is False
    assert answer["error"]["code"] in {"invalid_request", "invalid_event_pattern"}
    assert answer["error"]["message"]


@pytest.mark.parametrize("credentials", [None, {}, {"token": 42}, {"token": "not.a.jwt"}])
async def test_a_client_without_a_valid_token_is_refused(
    url: str, connect: Connect, credentials: Any
) -> None:
    with pytest.raises(Refused) as refused:
        await connect(url, credentials)
    assert refused.value.reason["data"]["code"] == "unauthorized"
    assert refused.value.reason["message"]


async def test_a_malformed_last_event_id_is_refused(
    url: str, connect: Connect, new_user: NewUser
) -> None:
    user = await new_user()
    for bad in ("yesterday", str(uuid.uuid4())):
        with pytest.raises(Refused) as refused:
            await connect(url, {"token": user.token, "last_event_id": bad})
        assert refused.value.reason["data"]["code"] == "invalid_request"
        assert "last_event_id" in refused.value.reason["message"]


async def test_a_revoked_session_cannot_connect(
    url: str, connect: Connect, new_user: NewUser, gateway: Gateway
) -> None:
    user = await new_user()
    auth = gateway._auth
    await auth.revoke_all_sessions(user.id)
    with pytest.raises(Refused) as refused:
        await connect(url, {"token": user.token})
    assert refused.value.reason["data"]["code"] == "unauthorized"


async def test_health_and_event_types_are_served(url: str) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/health") as response:
            assert response.status == 200
            health = await response.json()
        async with http.get(f"{url}/events/types") as response:
            assert response.status == 200
            types = (await response.json())["types"]
        async with http.get(f"{url}/nothing-here") as response:
            assert response.status == 404
    assert health["status"] == "ok"
    assert set(health["databases"]) == {s.value for s in ServiceName}
    assert all(d["up"] for d in health["databases"].values())
    assert health["bus"] == {"tapping": True}
    assert [t["name"] for t in types] == CATALOG.names()
    alert = next(t for t in types if t["name"] == "system.alert")
    assert alert["audience"] == "public"
    assert "severity" in alert["schema"]["properties"]


def _message(user: uuid.UUID) -> dict[str, Any]:
    data = envelope(user)
    return {"type": data.type, "source": data.source, "payload": data.payload, "subject": user}
