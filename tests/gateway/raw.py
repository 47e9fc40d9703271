"""A raw Engine.IO websocket client for the gateway tests of hostile clients: it sends
exactly the frames a test gives it and records every Socket.IO packet it receives."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import socketio.packet
import websockets

from tests.gateway.conftest import WAIT


class Raw:
    """One raw connection; :meth:`open` makes it (and signs in, if asked)."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.packets: list[socketio.packet.Packet] = []
        self.closed = asyncio.Event()
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, base: str, auth: Any = None) -> Raw:
        """An Engine.IO session on ``base``; signed in with ``auth`` (a ``40`` packet)
        unless it is None. Fails if the gateway does not accept it."""
        url = base.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        ws = await websockets.connect(url, max_size=None)
        opened = await ws.recv()
        assert isinstance(opened, str)
        assert opened.startswith("0")
        raw = cls(ws)
        if auth is not None:
            await raw.send("40" + json.dumps(auth))
            answered = (socketio.packet.CONNECT, socketio.packet.CONNECT_ERROR)
            await raw.wait_for(lambda: any(p.packet_type in answered for p in raw.packets))
            assert raw.of_type(socketio.packet.CONNECT), raw.packets[0].data
        return raw

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                if frame == "2":  # Engine.IO ping
                    await self.ws.send("3")
                elif isinstance(frame, str) and frame.startswith("4"):
                    self.packets.append(socketio.packet.Packet(encoded_packet=frame[1:]))
                self._arrived.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed.set()
            self._arrived.set()

    async def send(self, frame: str | bytes) -> None:
        """Send one frame (nothing if the connection is closed already)."""
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.ws.send(frame)

    async def call(self, ack: int, name: str, *arguments: Any) -> Any:
        """Send the event ``name`` asking for an answer (id ``ack``); the answer."""
        await self.send(f"42{ack}" + json.dumps([name, *arguments]))
        await self.wait_for(lambda: ack in self.answers())
        return self.answers()[ack]

    def of_type(self, kind: int) -> list[socketio.packet.Packet]:
        return [packet for packet in self.packets if packet.packet_type == kind]

    def answers(self) -> dict[int, Any]:
        """The first argument of each answer received, by id."""
        return {p.id: (p.data or [None])[0] for p in self.of_type(socketio.packet.ACK)}

    def events(self, name: str) -> list[Any]:
        """The data of each ``name`` event received, in order."""
        return [
            packet.data[1] if len(packet.data) > 1 else None
            for packet in self.of_type(socketio.packet.EVENT)
            if packet.data[0] == name
        ]

    async def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Until ``predicate()`` holds; fails after WAIT seconds."""
        async with asyncio.timeout(WAIT):
            while not predicate():
                self._arrived.clear()
                await self._arrived.wait()

    async def wait_closed(self) -> None:
        """Until the gateway has closed the connection; fails after WAIT seconds."""
        async with asyncio.timeout(WAIT):
            await self.closed.wait()

    async def close(self) -> None:
        await self.ws.close()
        await self._reader
