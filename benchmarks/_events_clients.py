"""The Socket.IO clients of ``benchmarks/events.py``, in a process of their own.

Lightweight raw Engine.IO 4 / Socket.IO 5 clients over ``websockets`` (no compression,
as python-socketio's aiohttp transport): connect to
``ws://HOST:PORT/socket.io/?EIO=4&transport=websocket``, read the ``0{...}`` open packet,
send ``40{"token": ..., "subscribe": [...]}``, expect ``40{"sid": ...}``, answer every
``2`` ping with ``3`` and note the arrival time (``time.time()``, taken first thing) of
every ``42[...]`` event. The load generator, not the system under test: it runs on uvloop
when installed.

The job (``argv[1]``, JSON): ``url``, ``tokens_file`` (a JSON list; connection ``i``
uses token ``i % len``), ``connections``, ``subscribe``, ``batch`` (connections opened
at once), ``out`` (where the user events received go, as ``[[time, event id], ...]``),
``deadline``. Replies (JSON lines): ``connected`` once every batch was tried; ``alert``
each time every live client got a given ``system.alert`` (with the last arrival time);
``stats`` on request. ``stop`` closes every connection and writes ``out``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _events_child import commands, reply, run_load, say
from websockets.asyncio.client import ClientConnection, connect

HANDSHAKE_TIMEOUT_S = 60.0
ALERT = '42["system.alert"'
ID = '"id":"'


class Clients:
    """Every connection of this process and what they received."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        with open(spec["tokens_file"]) as tokens:
            self.tokens: list[str] = json.load(tokens)
        self.url = spec["url"]
        self.auth = [
            "40" + json.dumps({"token": token, "subscribe": spec["subscribe"]})
            for token in self.tokens
        ]
        self.sockets: list[ClientConnection] = []
        self.readers: list[asyncio.Task[None]] = []
        self.alive = 0
        self.failed: Counter[str] = Counter()
        self.closed: Counter[str] = Counter()
        self.received: list[tuple[float, str]] = []  # user events: (arrival, raw message)
        self.alerts: dict[str, list[float]] = {}  # alert id -> [count, last arrival]
        self.announced: set[str] = set()
        self.stopping = False

    async def open_one(self, number: int) -> None:
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
                socket = await connect(
                    self.url, compression=None, ping_interval=None, close_timeout=2, max_queue=64
                )
                try:
                    opened = await socket.recv()
                    if not isinstance(opened, str) or not opened.startswith("0"):
                        raise RuntimeError(f"unexpected open packet {opened!r:.60}")
                    await socket.send(self.auth[number % len(self.auth)])
                    while True:
                        answer = await socket.recv()
                        if isinstance(answer, str) and answer.startswith("4"):
                            break
                    if not answer.startswith("40"):
                        raise RuntimeError(f"refused: {answer[:120]}")
                except BaseException:
                    await socket.close()
                    raise
        except Exception as exc:
            self.failed[f"{type(exc).__name__}: {exc}"[:160]] += 1
            return
        self.sockets.append(socket)
        self.alive += 1
        self.readers.append(asyncio.create_task(self.read(socket)))

    async def read(self, socket: ClientConnection) -> None:
        received, alerts = self.received, self.alerts
        try:
            async for message in socket:
                now = time.time()
                if not isinstance(message, str):
                    continue
                if message == "2":
                    await socket.send("3")
                elif message.startswith(ALERT):
                    start = message.find(ID) + len(ID)
                    event_id = message[start : start + 36]
                    seen = alerts.get(event_id)
                    if seen is None:
                        alerts[event_id] = [1, now]
                    else:
                        seen[0] += 1
                        seen[1] = now
                    self.check(event_id)
                elif message.startswith("42"):
                    received.append((now, message))
        except Exception as exc:
            self.closed[f"{type(exc).__name__}: {exc}"[:160]] += 1
        else:
            if not self.stopping:
                code = socket.close_code
                self.closed[f"closed by the server ({code}, {socket.close_reason!r})"] += 1
        finally:
            self.alive -= 1
            if not self.stopping:
                for event_id in list(self.alerts):
                    self.check(event_id)

    def check(self, event_id: str) -> None:
        count, last = self.alerts[event_id]
        if count >= self.alive and event_id not in self.announced:
            self.announced.add(event_id)
            reply(alert=event_id, count=int(count), alive=self.alive, last=last)

    async def open_all(self) -> None:
        began = time.time()
        total, batch = self.spec["connections"], self.spec["batch"]
        for first in range(0, total, batch):
            numbers = range(first, min(total, first + batch))
            await asyncio.gather(*(self.open_one(n) for n in numbers))
            if (first // batch) % 4 == 3 or first + batch >= total:
                say(f"{self.alive:,} of {first + len(numbers):,} connected")
        reply(
            connected=self.alive,
            failed=sum(self.failed.values()),
            errors=self.failed.most_common(3),
            seconds=round(time.time() - began, 2),
        )

    def stats(self) -> None:
        reply(
            alive=self.alive,
            opened=len(self.sockets),
            received=len(self.received),
            closed=self.closed.most_common(3),
        )

    async def close_all(self) -> None:
        self.stopping = True
        alive_at_end = self.alive
        for first in range(0, len(self.sockets), 500):
            sockets = self.sockets[first : first + 500]
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await asyncio.gather(*(s.close() for s in sockets), return_exceptions=True)
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        events = []
        for arrived, message in self.received:
            start = message.find(ID) + len(ID)
            events.append((arrived, message[start : start + 36]))
        await asyncio.to_thread(Path(self.spec["out"]).write_text, json.dumps(events))
        reply(done=True, alive_at_end=alive_at_end, received=len(events))


async def run(spec: dict[str, Any]) -> None:
    clients = Clients(spec)
    deadline = float(spec["deadline"])
    opening = asyncio.create_task(clients.open_all())
    try:
        async for command in commands(deadline):
            if command == "stats":
                clients.stats()
    finally:
        opening.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await opening
        await clients.close_all()


def main() -> None:
    run_load(run, grace_s=60)


if __name__ == "__main__":
    main()
