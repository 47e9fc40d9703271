"""Rate limits on new sessions: a token bucket, then TCP connections, Engine.IO handshakes
and Socket.IO connects against a served gateway, over real sockets. They do not depend on the
database: SQLite only."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
import socketio.packet
import websockets

from azora.gateway.rates import RateLimit
from azora.gateway.server import Gateway
from tests.gateway.conftest import WAIT, Recorder, Refused, User, health, serving
from tests.gateway.raw import Raw

Connect = Callable[..., Awaitable[Recorder]]
NewUser = Callable[[], Awaitable[User]]
HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


@pytest.fixture
def backend() -> str:
    """Rates do not depend on the database: SQLite only."""
    return "sqlite"


# -- the token bucket ---------------------------------------------------------------------


def test_a_bucket_lets_its_burst_through_then_its_rate_and_says_how_long_to_wait() -> None:
    now = [0.0]
    limit = RateLimit(2.0, 3, clock=lambda: now[0])
    assert [limit.acquire("a") for _ in range(3)] == [0, 0, 0]
    assert limit.acquire("a") == 500  # one token every 500 ms
    assert limit.acquire("b") == 0  # another key has its own bucket
    now[0] = 0.25
    assert limit.acquire("a") == 250
    now[0] = 0.5
    assert limit.acquire("a") == 0
    now[0] = 100.0
    assert [limit.acquire("a") for _ in range(4)] == [0, 0, 0, 500]  # refilled to the burst
    assert limit.refused == 3


def test_rate_zero_lets_everything_through_and_keys_are_bounded() -> None:
    assert all(RateLimit(0, 1).acquire("a") == 0 for _ in range(100))
    limit = RateLimit(1.0, 1, max_keys=10)
    for key in range(1_000):
        limit.acquire(key)
    assert len(limit) == 10


# -- Socket.IO connects -------------------------------------------------------------------


async def test_a_user_connecting_in_a_tight_loop_is_rate_limited_and_another_connects(
    limited: Callable[..., Gateway], connect: Connect, new_user: NewUser
) -> None:
    ama, kofi = await new_user(), await new_user()
    gateway = limited(gateway_connect_burst_per_user=5, gateway_connect_rate_per_user=0.1)
    async with serving(gateway) as url:
        for _ in range(5):
            await connect(url, {"token": ama.token})
        with pytest.raises(Refused) as refused:
            await connect(url, {"token": ama.token})
        assert refused.value.reason["data"]["code"] == "rate_limited"
        assert 0 < refused.value.reason["data"]["retry_after_ms"] <= 10_000
        await connect(url, {"token": kofi.token})
        assert len(gateway.hub.connections) == 6


async def test_an_address_past_its_connect_budget_is_refused_before_its_token_is_read(
    limited: Callable[..., Gateway], new_user: NewUser
) -> None:
    ama = await new_user()
    gateway = limited(gateway_connect_burst_per_ip=3, gateway_connect_rate_per_ip=0.1)
    async with serving(gateway) as url:
        raw = await Raw.open(url)
        for _ in range(3):
            await raw.send("40" + json.dumps({"token": "forged"}))
        await raw.send("40" + json.dumps({"token": ama.token}))
        refused = socketio.packet.CONNECT_ERROR
        await raw.wait_for(lambda: len(raw.of_type(refused)) == 4)
        codes = [p.data["data"]["code"] for p in raw.of_type(refused)]
        assert codes == ["unauthorized"] * 3 + ["rate_limited"]
        assert gateway.hub.connections == {}
        await raw.close()


async def test_refused_connects_are_cheap_and_health_answers_meanwhile(
    limited: Callable[..., Gateway], new_user: NewUser
) -> None:
    ama = await new_user()
    gateway = limited(
        gateway_connect_burst_per_user=1,
        gateway_connect_rate_per_user=0.01,
        gateway_connect_rate_per_ip=0,  # the user's limit is the one at work here
    )
    async with serving(gateway) as url:
        connected = await Raw.open(url, {"token": ama.token})  # the burst: one
        clients = [await Raw.open(url) for _ in range(5)]
        connect = "40" + json.dumps({"token": ama.token})
        refused = socketio.packet.CONNECT_ERROR

        async def storm(client: Raw) -> None:
            for _ in range(100):
                await client.send(connect)
            await client.wait_for(lambda: len(client.packets) == 100)

        async def timed_health() -> float:
            started = time.monotonic()
            async with aiohttp.ClientSession() as http, http.get(f"{url}/health") as response:
                assert response.status == 200
            return time.monotonic() - started

        # Against /health on the same machine a moment before: a busy machine slows both.
        quiet = max(await asyncio.gather(*(timed_health() for _ in range(5))))
        storms = asyncio.gather(*(storm(client) for client in clients))
        slowest = max(await asyncio.gather(*(timed_health() for _ in range(5))))
        await storms
        assert slowest < max(1.0, 4 * quiet), (slowest, quiet)
        answers = [p for client in clients for p in client.packets]
        assert {p.packet_type for p in answers} == {refused}
        assert {p.data["data"]["code"] for p in answers} == {"rate_limited"}
        assert list(gateway.hub.connections) == [
            connected.of_type(socketio.packet.CONNECT)[0].data["sid"]
        ]
        for client in [connected, *clients]:
            await client.close()


# -- calls on a connection ----------------------------------------------------------------


async def test_calls_past_a_connections_rate_are_answered_rate_limited_and_reach_no_handler(
    limited: Callable[..., Gateway], new_user: NewUser
) -> None:
    ama = await new_user()
    gateway = limited(gateway_call_burst_per_connection=3, gateway_call_rate_per_connection=0.1)
    async with serving(gateway) as url:
        caller = await Raw.open(url, {"token": ama.token})
        other = await Raw.open(url, {"token": ama.token})
        try:
            patterns = [["system.*"], ["finance.*"], ["education.*"], ["auth.*"]]
            answers = [
                await caller.call(n, "subscribe", {"patterns": p}) for n, p in enumerate(patterns)
            ]
            assert answers[:3] == [{"ok": True, "count": n} for n in (1, 2, 3)]
            refusal = answers[3]["error"]
            assert refusal.pop("code") == "rate_limited"
            assert 0 < refusal.pop("retry_after_ms") <= 10_000
            [sid] = [s for s, c in gateway.hub.connections.items() if len(c.patterns) == 3]
            assert gateway.hub.connections[sid].patterns == {"system.*", "finance.*", "education.*"}
            # Another connection of the same user has its own budget.
            assert await other.call(1, "subscribe", {"patterns": ["auth.*"]}) == {
                "ok": True,
                "count": 1,
            }
        finally:
            await caller.close()
            await other.close()
        assert (await health(url))["rate_limited"]["calls"] == 1
        assert len(gateway.sio.calls) == 0  # forgotten with their connections


# -- TCP connections -----------------------------------------------------------------------


async def _get_health(port: int, source: str) -> bytes | str:
    """``GET /health`` on a new connection from ``source``: the answer, or how it failed."""
    try:
        async with asyncio.timeout(WAIT):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(source, 0)
            )
            try:
                writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return await reader.read() or "closed"
            finally:
                writer.close()
    except ConnectionResetError:
        return "reset"


async def test_an_address_opening_connections_too_often_is_reset_and_others_are_served(
    limited: Callable[..., Gateway],
) -> None:
    gateway = limited(gateway_connection_burst_per_ip=3, gateway_connection_rate_per_ip=0.1)
    async with serving(gateway) as url:
        port = int(url.rsplit(":", 1)[1])
        answers = [await _get_health(port, "127.0.0.2") for _ in range(5)]
        assert [a.split(b" ", 2)[1] if isinstance(a, bytes) else a for a in answers[:3]] == [
            b"200"
        ] * 3
        assert answers[3:] in (["reset"] * 2, ["closed"] * 2, ["reset", "closed"])
        other = await _get_health(port, "127.0.0.1")  # another address: its own budget
        assert isinstance(other, bytes)
        assert other.startswith(b"HTTP/1.1 200")
        health = json.loads(other.partition(b"\r\n\r\n")[2])
        assert health["rate_limited"]["connections"] == 2


# -- Engine.IO handshakes -----------------------------------------------------------------


async def test_an_address_past_its_handshake_budget_gets_429_and_its_sessions_go_on(
    limited: Callable[..., Gateway],
) -> None:
    gateway = limited(gateway_handshake_burst_per_ip=3, gateway_handshake_rate_per_ip=0.1)
    async with serving(gateway) as url, aiohttp.ClientSession() as http:
        statuses, opened = [], ""
        for _ in range(4):
            async with http.get(url + HANDSHAKE) as response:
                statuses.append(response.status)
                if response.status == 200:
                    opened = await response.text()
                else:
                    assert int(response.headers["retry-after"]) >= 1
        assert statuses == [200, 200, 200, 429]
        sid = json.loads(opened[1:])["sid"]  # an open session's requests are not handshakes
        async with http.post(f"{url}{HANDSHAKE}&sid={sid}", data="40") as response:
            assert response.status == 200
        ws_url = url.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with asyncio.timeout(WAIT):
                await websockets.connect(ws_url)
        assert refused.value.response.status_code == 429
        assert int(refused.value.response.headers["retry-after"]) >= 1
        async with http.get(f"{url}/health") as response:
            assert response.status == 200
            assert (await response.json())["rate_limited"]["handshakes"] == 2
