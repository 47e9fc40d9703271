"""Hostile clients against a served gateway, over real sockets: oversized and unfinished
requests, too many connections, sessions that never sign in, clients that stop reading.

The limits are set small per test; they do not depend on the database, so these run on
SQLite only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import websockets

from azora.events.bus import Bus
from azora.events.envelope import Envelope
from azora.gateway.connections import HEALTH_HEADROOM
from azora.gateway.server import Gateway
from tests.gateway.conftest import WAIT, Recorder, Refused, User, served

Connect = Callable[..., Awaitable[Recorder]]
NewUser = Callable[[], Awaitable[User]]
MiB = 1_048_576


@pytest.fixture
def backend() -> str:
    """The transport does not depend on the database: SQLite only."""
    return "sqlite"


async def until(predicate: Callable[[], bool]) -> None:
    """Until ``predicate()`` holds; fails after WAIT seconds."""
    async with asyncio.timeout(WAIT):
        while not predicate():  # noqa: ASYNC110 - the server's counts signal no event
            await asyncio.sleep(0.01)


async def raw(port: int, source: str = "127.0.0.1", send_buffer: int = 0) -> socket.socket:
    """A non-blocking TCP connection to the server from address ``source`` (with a
    ``send_buffer`` of that size, else the system's)."""
    sock = socket.socket()
    if send_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer)
    sock.setblocking(False)
    sock.bind((source, 0))
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    return sock


async def answer(sock: socket.socket, request: bytes = b"", *, then_stop: bool = False) -> bytes:
    """Send ``request`` (a reset while sending is taken as it comes), with ``then_stop``
    stop sending (a refused client's remaining bytes are read until then), and read to
    the end; closes ``sock``."""
    loop = asyncio.get_running_loop()
    with sock:
        with contextlib.suppress(ConnectionResetError, BrokenPipeError):
            await loop.sock_sendall(sock, request)
            if then_stop:
                sock.shutdown(socket.SHUT_WR)
        received = b""
        async with asyncio.timeout(WAIT):
            with contextlib.suppress(ConnectionResetError):
                while chunk := await loop.sock_recv(sock, 65_536):
                    received += chunk
        return received


def status(response: bytes) -> int:
    assert response.startswith(b"HTTP/1.1 "), response[:100]
    return int(response.split(b" ", 2)[1])


async def get(port: int, path: str, source: str = "127.0.0.1") -> int:
    request = f"GET {path} HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n\r\n"
    return status(await answer(await raw(port, source), request.encode()))


def resident_bytes() -> int:
    """This process's resident memory."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


# -- requests ---------------------------------------------------------------------------


async def test_an_oversized_header_is_refused_431_without_being_held_in_memory(
    limited: Callable[..., Gateway],
) -> None:
    loop = asyncio.get_running_loop()
    header = b"GET /health HTTP/1.1\r\nhost: gateway\r\nx-padding: " + b"a" * (2 * MiB)
    async with served(limited(gateway_max_header_bytes=65_536)) as server:
        # Small send buffers: sending ends once the server has read all but a little.
        clients = [await raw(server.port, send_buffer=16_384) for _ in range(20)]
        before = resident_bytes()

        async def send(sock: socket.socket) -> None:
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                await loop.sock_sendall(sock, header)

        async with asyncio.timeout(WAIT):
            await asyncio.gather(*(send(sock) for sock in clients))
        grown = resident_bytes() - before
        assert grown < 8 * MiB, f"{grown:,} bytes more"  # 40 MB if the server kept them
        answers = await asyncio.gather(*(answer(sock, then_stop=True) for sock in clients))
    assert {status(a) for a in answers} == {431}


async def test_a_header_flood_is_refused_431_and_the_server_stops_reading_it(
    limited: Callable[..., Gateway],
) -> None:
    loop = asyncio.get_running_loop()
    chunk = b"a" * 65_536
    async with served(limited(gateway_max_header_bytes=65_536)) as server:
        sock = await raw(server.port)
        received = bytearray()

        async def read() -> None:
            with contextlib.suppress(ConnectionResetError):
                while data := await loop.sock_recv(sock, 65_536):
                    received.extend(data)

        sent = 0

        async def flood() -> None:
            nonlocal sent
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                await loop.sock_sendall(sock, b"GET /health HTTP/1.1\r\nx-padding: ")
                while sent < 50 * MiB:  # as fast as it can, until the server stops it
                    await loop.sock_sendall(sock, chunk)
                    sent += len(chunk)

        with sock:
            tasks = asyncio.gather(read(), flood())
            await until(lambda: bool(received))  # refused: 431 on its way
            assert await get(server.port, "/health") == 200  # others are served meanwhile
            await asyncio.wait_for(tasks, WAIT)
        assert status(bytes(received)) == 431
        # Read past the limit: a bound and at most one read of the loop's beyond it.
        assert server.connections.dropped <= 65_536 + 262_144
        assert sent < 32 * MiB  # the rest waited in socket buffers until the reset


@pytest.mark.parametrize(
    ("request_bytes", "expected"),
    [
        pytest.param(
            b"GET /" + b"a" * 9_000 + b" HTTP/1.1\r\nhost: gateway\r\n\r\n", 414, id="long-target"
        ),
        pytest.param(
            b"GET /health HTTP/1.1\r\n"
            + b"".join(b"x-%d: 1\r\n" % i for i in range(101))
            + b"\r\n",
            431,
            id="many-headers",
        ),
        pytest.param(
            b"POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nhost: gateway\r\n"
            b"content-length: 10000000\r\n\r\n",
            413,
            id="announced-body",
        ),
        pytest.param(
            b"POST /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nhost: gateway\r\n"
            b"transfer-encoding: chunked\r\n\r\n4000\r\n" + b"a" * 0x4000 + b"\r\n",
            411,
            id="streamed-body",
        ),
    ],
)
async def test_requests_past_a_limit_are_refused_with_their_status(
    limited: Callable[..., Gateway], request_bytes: bytes, expected: int
) -> None:
    gateway = limited(
        gateway_max_request_line_bytes=8_000,
        gateway_max_headers=100,
        gateway_max_message_bytes=8_192,
    )
    async with served(gateway) as server:
        refused = await answer(await raw(server.port), request_bytes, then_stop=True)
        assert status(refused) == expected
        assert await get(server.port, "/health") == 200  # the server goes on


async def test_a_websocket_message_past_the_limit_closes_the_connection(
    limited: Callable[..., Gateway],
) -> None:
    async with served(limited(gateway_max_message_bytes=8_192)) as server:
        url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
        async with websockets.connect(url) as ws:
            assert str(await ws.recv()).startswith("0")  # Engine.IO's OPEN: upgraded fine
            await ws.send("4" + "a" * 10_000)
            with pytest.raises(websockets.ConnectionClosed) as closed:
                async with asyncio.timeout(WAIT):
                    while True:
                        await ws.recv()
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1009  # message too big


# -- timeouts ---------------------------------------------------------------------------


async def test_unfinished_requests_and_idle_connections_are_closed_and_health_answers_meanwhile(
    limited: Callable[..., Gateway],
) -> None:
    gateway = limited(gateway_request_timeout_s=2.0, gateway_keep_alive_s=2)
    async with served(gateway) as server:
        loop = asyncio.get_running_loop()
        halves = [await raw(server.port) for _ in range(40)]
        for sock in halves:
            await loop.sock_sendall(sock, b"GET /heal")
        silent = [await raw(server.port) for _ in range(10)]
        await until(lambda: server.connections.count == 50)
        assert await get(server.port, "/health") == 200
        started = time.monotonic()
        answers = await asyncio.gather(*(answer(sock) for sock in halves + silent))
        assert time.monotonic() - started < WAIT
        assert [status(a) for a in answers[:40]] == [408] * 40
        assert answers[40:] == [b""] * 10  # closed without a word
        await until(lambda: server.connections.count == 0)


# -- connection counts -------------------------------------------------------------------


async def test_past_the_cap_per_address_new_connections_get_503_and_others_are_served(
    limited: Callable[..., Gateway],
) -> None:
    gateway = limited(gateway_max_connections_per_ip=5, gateway_keep_alive_s=60)
    async with served(gateway) as server:
        held = [await raw(server.port) for _ in range(5)]
        await until(lambda: server.connections.from_address("127.0.0.1") == 5)
        assert await get(server.port, "/") == 503
        assert await get(server.port, "/health", source="127.0.0.2") == 200
        held.pop().close()
        await until(lambda: server.connections.from_address("127.0.0.1") == 4)
        assert await get(server.port, "/") == 200
        for sock in held:
            sock.close()


async def test_past_the_budget_only_health_is_served_and_past_the_headroom_nothing(
    limited: Callable[..., Gateway],
) -> None:
    gateway = limited(gateway_max_connections=8, gateway_keep_alive_s=60)
    async with served(gateway) as server:
        held = [await raw(server.port) for _ in range(8)]
        await until(lambda: server.connections.count == 8)
        assert await get(server.port, "/health") == 200
        assert await get(server.port, "/") == 503
        held += [await raw(server.port) for _ in range(HEALTH_HEADROOM)]
        await until(lambda: server.connections.count == 8 + HEALTH_HEADROOM)
        assert await answer(await raw(server.port), b"GET /health HTTP/1.1\r\n\r\n") == b""
        for sock in held:
            sock.close()


# -- Socket.IO sessions ------------------------------------------------------------------


async def test_a_session_that_never_connects_a_namespace_is_closed(
    limited: Callable[..., Gateway], connect: Connect, new_user: NewUser
) -> None:
    gateway = limited(gateway_connect_timeout_s=0.3)
    user = await new_user()
    async with served(gateway) as server:
        base = f"http://127.0.0.1:{server.port}"
        signed_in = await connect(base, {"token": user.token})
        url = f"ws://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=websocket"
        async with websockets.connect(url) as idle:
            received = [await idle.recv()]
            with contextlib.suppress(websockets.ConnectionClosed):
                async with asyncio.timeout(WAIT):
                    received.extend([message async for message in idle])
        assert str(received[0]).startswith("0")  # OPEN
        assert received[-1] == "1"  # CLOSE, then the connection ended
        assert gateway.limits.timed_out == 1
        assert signed_in.client.connected  # the one that connected stays
        assert list(gateway.hub.connections) == [signed_in.client.get_sid()]


async def test_a_user_past_the_cap_is_refused_until_one_of_theirs_closes(
    limited: Callable[..., Gateway], connect: Connect, new_user: NewUser
) -> None:
    gateway = limited(gateway_max_connections_per_user=2)
    ama, kofi = await new_user(), await new_user()
    async with served(gateway) as server:
        base = f"http://127.0.0.1:{server.port}"
        first = await connect(base, {"token": ama.token})
        await connect(base, {"token": ama.token})
        with pytest.raises(Refused) as refused:
            await connect(base, {"token": ama.token})
        assert refused.value.reason["data"]["code"] == "too_many_connections"
        await connect(base, {"token": kofi.token})  # another user is not counted with Ama
        await first.client.disconnect()
        await until(lambda: len(gateway.hub.connections) == 2)
        await connect(base, {"token": ama.token})


# -- clients that stop reading -----------------------------------------------------------


def _alert(number: int) -> Envelope:
    """A public event of about 2 KB."""
    return Envelope(
        type="system.alert",
        source="health",
        payload={"severity": "info", "message": f"{number:06d} " + "x" * 1_900},
        occurred_at=dt.datetime.now(dt.UTC),
    )


async def test_a_client_that_stops_reading_is_cut_off_while_others_keep_receiving(
    limited: Callable[..., Gateway], bus: Bus, connect: Connect, new_user: NewUser
) -> None:
    gateway = limited(gateway_send_queue_bytes=65_536)
    user = await new_user()
    async with served(gateway) as server:
        base = f"http://127.0.0.1:{server.port}"
        reader = await connect(base, {"token": user.token, "subscribe": ["system.>"]})
        stuck = await _stop_reading_after_connecting(server.port, user.token)
        assert len(gateway.hub.connections) == 2
        published = 0
        async with asyncio.timeout(WAIT):
            while len(gateway.hub.connections) == 2:  # until the stuck one is cut off
                batch = [_alert(published + i) for i in range(20)]
                await bus.publish_many(batch)
                published += len(batch)
                await _received(reader, batch[-1])
        await until(lambda: server.connections.count == 1)  # its TCP connection is gone
        await bus.publish_many([_alert(published)])
        await reader.wait_for(lambda: len(reader.envelopes()) == published + 1)
        with pytest.raises(websockets.ConnectionClosed):
            async with asyncio.timeout(WAIT):
                while True:
                    await stuck.recv()


async def _received(reader: Recorder, last: Envelope) -> None:
    """Until ``last`` is the last event ``reader`` received."""
    await reader.wait_for(lambda: reader.ids()[-1:] == [str(last.id)])


async def _stop_reading_after_connecting(port: int, token: str) -> Any:
    """A websocket client that connects to ``/`` for public events, then reads nothing:
    its receive buffer is small and websockets stops reading once a message waits."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4_096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket",
        sock=sock,
        max_queue=1,
        compression=None,
        ping_interval=None,
    )
    assert str(await ws.recv()).startswith("0")
    await ws.send("40" + json.dumps({"token": token, "subscribe": ["system.>"]}))
    assert str(await ws.recv()).startswith("40")
    return ws


async def test_a_polling_client_that_stops_polling_gets_a_gap_and_its_session_ends(
    limited: Callable[..., Gateway], bus: Bus, new_user: NewUser
) -> None:
    gateway = limited(gateway_send_queue_messages=16)
    user = await new_user()
    async with served(gateway) as server, aiohttp.ClientSession() as http:
        url = f"http://127.0.0.1:{server.port}/socket.io/?EIO=4&transport=polling"
        async with http.get(url) as response:
            opened = await response.text()
        url += "&sid=" + json.loads(opened[1:])["sid"]
        auth = {"token": user.token, "subscribe": ["system.>"]}
        async with http.post(url, data="40" + json.dumps(auth)) as response:
            assert response.status == 200
        async with http.get(url) as response:
            assert (await response.text()).startswith("40")
        await bus.publish_many([_alert(n) for n in range(40)])  # nobody polls meanwhile
        await until(lambda: not gateway.hub.connections)
        async with http.get(url) as response:
            packets = (await response.text()).split("\x1e")
    assert gateway.limits.overflowed == 1
    assert packets == ['42["gap",{"reason":"overflow"}]', "1"]  # then CLOSE


async def test_a_connection_whose_answers_are_not_read_is_aborted_after_the_send_timeout(
    limited: Callable[..., Gateway],
) -> None:
    async with served(limited(gateway_send_timeout_s=0.5)) as server:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4_096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
        with sock:
            request = b"GET /events/types HTTP/1.1\r\nhost: gateway\r\n\r\n"  # 29 KB each
            await asyncio.get_running_loop().sock_sendall(sock, request * 300)
            await until(lambda: server.connections.stalled == 1)  # read nothing meanwhile
            await until(lambda: server.connections.count == 0)


async def test_each_connections_kernel_send_buffer_is_bounded(
    limited: Callable[..., Gateway],
) -> None:
    async with served(limited(gateway_socket_send_buffer_bytes=65_536)) as server:
        sock = await raw(server.port)
        await until(lambda: server.connections.count == 1)
        [transport] = list(server.connections._open)
        accepted = transport.get_extra_info("socket")
        assert accepted.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF) == 2 * 65_536  # Linux
        sock.close()
    async with served(limited(gateway_socket_send_buffer_bytes=0)) as server:
        sock = await raw(server.port)
        await until(lambda: server.connections.count == 1)
        [transport] = list(server.connections._open)
        default = transport.get_extra_info("socket").getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        assert default != 2 * 65_536  # the kernel's own
        sock.close()
