"""The hostile client of ``benchmarks/abuse.py``: one abuse, in a process of its own.

The job (``argv[1]``, JSON): ``abuse`` (its name), ``host``, ``port``, ``source`` (the
local address every connection is made from), ``seconds``, ``deadline`` (epoch seconds),
``tokens`` (access tokens of the hostile users), ``old_id`` (a ``last_event_id`` from
long ago) and the abuse's own figures (see :data:`ABUSES`). Replies (JSON lines):
``{"started": TIME}`` once it begins, then ``{"seen": {...}, "counts": {...}, "seconds": S,
"cpu_s": S}``: what the server answered and how the connections ended, how much was
sent, and the time and CPU time it took. It runs for
``seconds``, every connection and wait bounded by what is left; a refused or closed
connection is opened again (never faster than :data:`RETRY_S` per worker). Raw Engine.IO
over ``websockets`` (``0{...}`` open, ``40{auth}`` connect, ``42[...]`` event, ``43N[...]``
answer, ``2``/``3`` ping/pong) and raw HTTP over asyncio streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from _events_child import reply, run_load
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

#: The least time between two attempts of one worker after a failure.
RETRY_S = 0.05
#: Time to read what a connection still holds once the abuse ends.
DRAIN_S = 2.0
CHUNK = 64 * 1024
#: Frames the gateway does not accept: not Engine.IO, a Socket.IO packet that does not
#: decode, an unknown Engine.IO type, binary.
GARBAGE: tuple[str | bytes, ...] = ("zzz", "4zz", "9!?", b"\xff\xfe\xfd")


class Tally:
    """What the hostile client saw (``seen``: outcomes) and did (``counts``)."""

    def __init__(self, began: float, ends: float) -> None:
        self.began = began
        self.ends = ends
        self.seen: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()

    def left(self) -> float:
        return self.ends - time.time()

    def failed(self, error: BaseException) -> None:
        """Note how an attempt ended (a timeout at the end of the abuse is no outcome)."""
        if isinstance(error, TimeoutError) and self.left() < 0.1:
            return
        self.seen[describe(error)] += 1


def describe(error: BaseException) -> str:
    if isinstance(error, InvalidStatus):
        return f"HTTP {error.response.status_code} to the websocket upgrade"
    if isinstance(error, ConnectionClosed):
        frame = error.rcvd
        if frame is None:
            return "connection lost (no close frame: reset or cut off)"
        return f"closed by the server ({frame.code}{' ' + frame.reason if frame.reason else ''})"
    if isinstance(error, TimeoutError):
        return "no answer in time"
    return f"{type(error).__name__}: {error}"[:100]


def closed(websocket: ClientConnection) -> ConnectionClosed:
    """How ``websocket``, which has closed, ended."""
    return websocket.close_exc


class Refused(Exception):
    """The gateway refused a Socket.IO connect (``44{...}``)."""


# -- Engine.IO / Socket.IO ------------------------------------------------------------


async def engine_io(spec: dict[str, Any], sock: socket.socket | None = None) -> ClientConnection:
    """A websocket Engine.IO session (its ``0{...}`` open packet read)."""
    url = f"ws://{spec['host']}:{spec['port']}/socket.io/?EIO=4&transport=websocket"
    where: dict[str, Any] = {"sock": sock} if sock else {"local_addr": (spec["source"], 0)}
    websocket = await connect(
        url,
        compression=None,
        ping_interval=None,
        close_timeout=1,
        open_timeout=None,  # the caller's timeout bounds it
        max_size=None,
        max_queue=4,
        proxy=None,
        **where,
    )
    try:
        opened = await websocket.recv()
        if not isinstance(opened, str) or not opened.startswith("0"):
            raise Refused(f"unexpected open packet {opened!r:.40}")
    except BaseException:
        await websocket.close()
        raise
    return websocket


async def sign_in(websocket: ClientConnection, auth: dict[str, Any]) -> None:
    """Send the Socket.IO connect; return once accepted.

    Raises:
        Refused: the gateway answered ``connect_error`` (its code in the message).
    """
    await websocket.send("40" + json.dumps(auth))
    while True:
        answer = await websocket.recv()
        if answer == "2":
            await websocket.send("3")
        elif isinstance(answer, str) and answer.startswith("4"):
            break
    if not answer.startswith("40"):
        data = json.loads(answer[2:]) if answer[2:].startswith("{") else {}
        raise Refused(f"connect_error {data.get('data', {}).get('code', answer[:40])}")


async def keep_trying(tally: Tally, attempt: Callable[[], Awaitable[None]]) -> None:
    """``attempt()`` again and again until the abuse ends; each bounded by what is left.
    However an attempt fails (the gateway's answers change as it is hardened), the
    failure is noted and the next attempt follows."""
    while tally.left() > 0:
        try:
            async with asyncio.timeout(tally.left()):
                await attempt()
        except Exception as error:
            tally.failed(error)
            await asyncio.sleep(min(RETRY_S, max(0.0, tally.left())))


async def workers(count: int, work: Callable[[int], Awaitable[None]]) -> None:
    await asyncio.gather(*(work(number) for number in range(count)))


# -- the abuses -----------------------------------------------------------------------


async def catch_up_storm(spec: dict[str, Any], tally: Tally) -> None:
    """``concurrency`` connections at once, each signing in with ``old_id`` as its
    ``last_event_id`` and subscribed to ``system.>``, reading until ``caught_up``, then
    reconnecting at once (a ``busy`` gap's ``retry_after_ms`` ignored)."""
    tokens = spec["tokens"]

    async def storm(number: int) -> None:
        auth = {"token": tokens[number % len(tokens)], "subscribe": ["system.>"]}
        auth["last_event_id"] = spec["old_id"]

        async def attempt() -> None:
            tally.counts["connects"] += 1
            websocket = await engine_io(spec)
            try:
                await sign_in(websocket, auth)
                async for message in websocket:
                    if message == "2":
                        await websocket.send("3")
                    elif isinstance(message, str) and message.startswith('42["gap"'):
                        tally.seen[f"gap {json.loads(message[2:])[1].get('reason')}"] += 1
                    elif isinstance(message, str) and message.startswith('42["caught_up"'):
                        tally.seen["caught_up"] += 1
                        tally.counts["events caught up"] += json.loads(message[2:])[1]["count"]
                        return
                raise closed(websocket)
            finally:
                await websocket.close()

        await keep_trying(tally, attempt)

    await workers(spec["concurrency"], storm)


async def pattern_hoard(spec: dict[str, Any], tally: Tally) -> None:
    """``connections`` signed-in connections, each sending ``subscribe`` with 64 new
    patterns of 190 characters, then ``unsubscribe`` of those, and so on, with up to
    ``window`` calls awaiting their answers: ``messages`` calls in all, then each holds
    its last 64 patterns until the end."""
    tokens, budget = spec["tokens"], iter(range(spec["messages"]))
    tail = ".".join(f"t{n:02d}" + "x" * 16 for n in range(9))

    def patterns(connection: int, batch: int) -> list[str]:
        return [f"hoard.c{connection}b{batch}p{n:02d}.{tail}"[:190] for n in range(64)]

    async def hoard(number: int) -> None:
        sequence = 0

        async def attempt() -> None:
            nonlocal sequence
            websocket = await engine_io(spec)
            try:
                await sign_in(websocket, {"token": tokens[number % len(tokens)]})
                window = asyncio.Semaphore(spec["window"])
                reader = asyncio.create_task(answers(websocket, window))
                try:
                    while next(budget, None) is not None:
                        await window.acquire()  # released by every answer, and at the end
                        if reader.done():
                            break
                        name = "subscribe" if sequence % 2 == 0 else "unsubscribe"
                        call = [name, {"patterns": patterns(number, sequence // 2)}]
                        await websocket.send(f"42{sequence}" + json.dumps(call))
                        sequence += 1
                        tally.counts["calls sent"] += 1
                    await reader  # holds the connection until it closes or the phase ends
                finally:
                    reader.cancel()
                    await asyncio.gather(reader, return_exceptions=True)
            finally:
                await websocket.close()

        await keep_trying(tally, attempt)

    async def answers(websocket: ClientConnection, window: asyncio.Semaphore) -> None:
        try:
            async for message in websocket:
                if message == "2":
                    await websocket.send("3")
                elif isinstance(message, str) and message.startswith("43"):
                    answer = json.loads(message[message.index("[") :])[0]
                    code = "ok" if answer.get("ok") else answer.get("error", {}).get("code")
                    tally.seen[f"answered {code}"] += 1
                    tally.counts["seconds to the last answer"] = time.time() - tally.began
                    window.release()
            raise closed(websocket)
        finally:
            for _ in range(spec["window"]):
                window.release()  # the sender must not wait for answers that cannot come

    await workers(spec["connections"], hoard)


async def header_flood(spec: dict[str, Any], tally: Tally) -> None:
    """``connections`` requests at once, each a ``GET /health`` whose headers go on for
    ``bytes`` bytes (one endless header, or 1 KiB headers one after the other), sent in
    64 KiB chunks whatever the server answers, until it closes the connection."""
    one_endless = b"a" * CHUNK
    many = (b"X-Flood: " + b"a" * 1013 + b"\r\n") * (CHUNK // 1024)

    async def flood(number: int) -> None:
        chunk = one_endless if number % 2 else many

        async def attempt() -> None:
            tally.counts["requests"] += 1
            reader, writer = await asyncio.open_connection(
                spec["host"], spec["port"], local_addr=(spec["source"], 0)
            )
            answer = asyncio.create_task(reader.read(200))
            try:
                writer.write(f"GET /health HTTP/1.1\r\nHost: {spec['host']}\r\n".encode())
                if number % 2:
                    writer.write(b"X-Flood: ")
                sent = 0
                try:
                    while sent < spec["bytes"]:
                        writer.write(chunk)
                        await writer.drain()
                        sent += len(chunk)
                        tally.counts["MB sent"] += len(chunk) / 1e6
                except OSError as error:
                    tally.seen[f"{type(error).__name__} while sending"] += 1
                else:
                    tally.seen["sent it all"] += 1
                first = await answer
                line = first.split(b"\r\n", 1)[0].decode(errors="replace")
                tally.seen[f"answered {line[9:]}" if line else "closed without an answer"] += 1
            finally:
                answer.cancel()
                writer.close()

        await keep_trying(tally, attempt)

    await workers(spec["connections"], flood)


async def half_sent(spec: dict[str, Any], tally: Tally) -> None:
    """Up to ``connections`` connections open at once, each sending the first bytes of a
    request line (``GET /health HT``) and nothing more; one that the server closes is
    replaced (at most ``opens_per_s`` new ones a second)."""
    holding = asyncio.Semaphore(spec["connections"])
    running: set[asyncio.Task[None]] = set()

    async def hold() -> None:
        try:
            async with asyncio.timeout(tally.left()):
                reader, writer = await asyncio.open_connection(
                    spec["host"], spec["port"], local_addr=(spec["source"], 0)
                )
                try:
                    writer.write(b"GET /health HT")
                    first = await reader.read(200)
                finally:
                    writer.close()
            line = first.split(b"\r\n", 1)[0].decode(errors="replace")
            tally.seen[f"answered {line[9:]}" if line else "closed without an answer"] += 1
        except TimeoutError:
            tally.seen["still open at the end"] += 1
        except OSError as error:
            tally.failed(error)
        finally:
            holding.release()

    while tally.left() > 0:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(tally.left()):
                await holding.acquire()
                tally.counts["connections opened"] += 1
                task = asyncio.create_task(hold())
                running.add(task)
                task.add_done_callback(running.discard)
                await asyncio.sleep(1 / spec["opens_per_s"])
    await asyncio.gather(*running, return_exceptions=True)


async def garbage_frames(spec: dict[str, Any], tally: Tally) -> None:
    """``connections`` workers, each opening an Engine.IO session and sending invalid
    frames (:data:`GARBAGE`, 3 bytes) at its share of ``rate`` a second (a burst every
    10 ms) until the server closes it, then opening the next at its next burst."""
    per_tick = max(1, round(spec["rate"] / spec["connections"] / 100))

    async def spray(number: int) -> None:
        sent = 0

        async def attempt() -> None:
            nonlocal sent
            websocket = await engine_io(spec)
            tally.counts["sessions opened"] += 1
            try:
                while True:
                    for _ in range(per_tick):
                        await websocket.send(GARBAGE[(number + sent) % len(GARBAGE)])
                        sent += 1
                        tally.counts["frames sent"] += 1
                    await asyncio.sleep(0.01)
            except ConnectionClosed as error:
                tally.seen[describe(error)] += 1  # as expected: the next session at once
            finally:
                await websocket.close()
            await asyncio.sleep(0.01)

        await keep_trying(tally, attempt)

    await workers(spec["connections"], spray)


async def stuck_readers(spec: dict[str, Any], tally: Tally) -> None:
    """``connections`` signed-in connections subscribed to ``system.>`` (receive buffer
    ``receive_buffer`` bytes) that stop reading once connected; at the end each reads
    what reaches it for :data:`DRAIN_S` to learn whether the server cut it off."""
    tokens = spec["tokens"]
    stuck: list[ClientConnection] = []
    loop = asyncio.get_running_loop()

    async def open_one(number: int) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, spec["receive_buffer"])
        sock.setblocking(False)
        try:
            sock.bind((spec["source"], 0))
            async with asyncio.timeout(max(0.1, tally.left())):
                await loop.sock_connect(sock, (spec["host"], spec["port"]))
                websocket = await engine_io(spec, sock)
                try:
                    auth = {"token": tokens[number % len(tokens)], "subscribe": ["system.>"]}
                    await sign_in(websocket, auth)
                except BaseException:
                    await websocket.close()
                    raise
        except Exception as error:
            sock.close()
            tally.failed(error)
            return
        tally.counts["signed in, then stopped reading"] += 1
        stuck.append(websocket)  # nothing reads it: its queue fills, then TCP's window

    await workers(spec["connections"], open_one)
    await asyncio.sleep(max(0.0, tally.left()))

    async def drain(websocket: ClientConnection) -> None:
        try:
            async with asyncio.timeout(DRAIN_S):
                while True:
                    await websocket.recv()
                    tally.counts["messages read at the end"] += 1
        except TimeoutError:
            tally.seen["still connected at the end"] += 1
        except ConnectionClosed as error:
            tally.seen[describe(error)] += 1
        finally:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_S):
                    await websocket.close()

    await asyncio.gather(*(drain(websocket) for websocket in stuck))


ABUSES: dict[str, Callable[[dict[str, Any], Tally], Awaitable[None]]] = {
    "catch_up_storm": catch_up_storm,
    "pattern_hoard": pattern_hoard,
    "header_flood": header_flood,
    "half_sent": half_sent,
    "garbage_frames": garbage_frames,
    "stuck_readers": stuck_readers,
}


async def run(spec: dict[str, Any]) -> None:
    began, cpu = time.time(), time.process_time()
    tally = Tally(began, began + float(spec["seconds"]))
    reply(started=began)
    try:
        # The abuse's own waits end with the phase; this bounds its clean-up as well.
        async with asyncio.timeout(float(spec["seconds"]) + 3 * DRAIN_S + 5):
            await ABUSES[spec["abuse"]](spec, tally)
    except TimeoutError:
        tally.seen["stopped: it overran the phase"] += 1
    except Exception as error:  # reported with what it saw until then
        tally.seen[f"the abuse failed: {describe(error)}"] += 1
    counts = {name: round(value, 1) for name, value in tally.counts.items()}
    reply(
        seen=dict(tally.seen.most_common()),
        counts=counts,
        seconds=round(time.time() - began, 1),
        cpu_s=round(time.process_time() - cpu, 1),
    )


def main() -> None:
    run_load(run, grace_s=0)


if __name__ == "__main__":
    main()
