"""Heartbeats: a client that stops answering the server's pings is dropped and forgotten."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import websockets

from azora.auth.service import AuthService
from azora.db.engines import Databases
from azora.events.buses import MemoryBus
from azora.gateway.server import Gateway
from tests.gateway.conftest import WAIT, User, serving

NewUser = Callable[[], Awaitable[User]]


async def _handshake(url: str, token: str) -> websockets.ClientConnection:
    """A raw Engine.IO v4 websocket connected to the default namespace, answering nothing."""
    ws = await websockets.connect(
        url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    )
    opened = await ws.recv()
    assert isinstance(opened, str)
    assert opened.startswith("0")
    await ws.send("40" + json.dumps({"token": token}))
    connected = await ws.recv()
    assert isinstance(connected, str)
    assert connected.startswith("40")
    return ws


async def test_a_client_that_stops_answering_pings_is_dropped(
    databases: Databases, auth: AuthService, new_user: NewUser
) -> None:
    settings = databases.settings.model_copy(
        update={"gateway_ping_interval_s": 0.2, "gateway_ping_timeout_s": 0.2}
    )
    gateway = Gateway(databases, MemoryBus(), auth, settings)
    user = await new_user()
    async with serving(gateway) as url:
        silent = await _handshake(url, user.token)
        polite = await _handshake(url, user.token)
        assert len(gateway.hub.connections) == 2

        async def answer_pings() -> None:
            async for message in polite:
                if message == "2":
                    await polite.send("3")

        answering = asyncio.create_task(answer_pings())
        pings = 0
        async with asyncio.timeout(WAIT):
            try:
                async for message in silent:  # never answered
                    pings += message == "2"
            except websockets.ConnectionClosed:
                pass
        await asyncio.sleep(0.1)
        assert pings >= 1
        assert len(gateway.hub.connections) == 1  # the silent one is gone, the other stays
        answering.cancel()
        await polite.close()
