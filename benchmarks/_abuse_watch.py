"""The well-behaved side of ``benchmarks/abuse.py``, in the benchmark's own process: what
it commits, the control client, the ``GET /health`` prober and the server's memory
and CPU.

- :class:`Producer` commits one ``notification.created`` event for the control user
  every 1/``own_rate`` s (``notifications`` database; one event per transaction) and
  notes when each commit returned; and, every 100 ms, a transaction of public
  ``system.alert`` events (``health`` database) that stuck readers can fall behind on.
- :class:`Control` is one signed-in Socket.IO client (raw Engine.IO over ``websockets``,
  as ``_events_clients.py``) that notes when each event arrives (``time.time()``, first
  thing). Closed by the server, it notes how and reconnects with its ``last_event_id``.
- :class:`Prober` asks ``GET /health`` every 100 ms on a new connection, whatever the
  earlier probes are doing; each one is bounded by a timeout.
- :class:`Server` reads the server's ``VmRSS`` and CPU time every 100 ms, and what its
  connections to the hostile client hold unsent in the kernel every second.

:func:`figures` turns what they noted during one phase into that phase's figures.
Everything runs until the ``stop`` event given to ``run`` is set; no wait is unbounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

from _common import notification, percentile
from _events_child import cpu_seconds, rss_kb
from sqlalchemy.exc import SQLAlchemyError
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from azora.db.engines import Databases
from azora.db.outbox import EventMessage
from azora.db.uow import UnitOfWork
from azora.types import ServiceName

#: Longest wait for one commit, one handshake or one probe.
COMMIT_TIMEOUT_S = 10.0
HANDSHAKE_TIMEOUT_S = 10.0
PROBE_TIMEOUT_S = 2.0
EVERY_S = 0.1  # probes and memory samples


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds``, or less if ``stop`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))


def alert(size: int) -> EventMessage:
    """A public ``system.alert`` whose message is ``size`` characters long."""
    return EventMessage(
        type="system.alert",
        source="health",
        payload={"severity": "info", "component": "benchmark", "message": "a" * size},
    )


class Producer:
    """Commits the control user's events and the public alerts (module docs)."""

    def __init__(
        self,
        databases: Databases,
        user: uuid.UUID,
        *,
        own_rate: float,
        public_rate: float,
        public_bytes: int,
    ) -> None:
        self.databases = databases
        self.user = user
        self.own_rate = own_rate
        self.public_rate = public_rate
        self.public_bytes = public_bytes
        #: Control event id -> when its commit began and when it returned.
        self.committed: dict[str, tuple[float, float]] = {}
        self.public_committed = 0
        self.failed: list[tuple[float, str]] = []  # when a failed commit began, and why

    async def prefill(self, count: int) -> None:
        """Commit ``count`` public alerts at once (a history to catch up on)."""
        for first in range(0, count, 500):
            async with asyncio.timeout(60), self._uow() as uow:
                for _ in range(min(500, count - first)):
                    uow.emit(alert(self.public_bytes))
            self.public_committed += min(500, count - first)

    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(self._own(stop), self._public(stop))

    def _uow(self, service: ServiceName = ServiceName.HEALTH) -> UnitOfWork:
        return UnitOfWork(self.databases, service, as_service=True)

    async def _own(self, stop: asyncio.Event) -> None:
        began, sequence = time.time(), 0
        while not stop.is_set():
            await pause(stop, began + sequence / self.own_rate - time.time())
            if stop.is_set():
                return
            message = notification(self.user, sequence)
            started = time.time()
            try:
                async with asyncio.timeout(COMMIT_TIMEOUT_S):
                    async with self._uow(ServiceName.NOTIFICATIONS) as uow:
                        uow.emit(message)
            except (TimeoutError, SQLAlchemyError) as error:
                self.failed.append((started, type(error).__name__))
            else:
                self.committed[str(message.id)] = (started, time.time())
            # A slot missed (a slow commit) is skipped, not made up with a burst.
            sequence = max(sequence + 1, int((time.time() - began) * self.own_rate))

    async def _public(self, stop: asyncio.Event) -> None:
        per_round = max(1, round(self.public_rate * EVERY_S))
        began, round_number = time.time(), 0
        while not stop.is_set():
            await pause(stop, began + round_number * EVERY_S - time.time())
            if stop.is_set():
                return
            started = time.time()
            try:
                async with asyncio.timeout(COMMIT_TIMEOUT_S), self._uow() as uow:
                    for _ in range(per_round):
                        uow.emit(alert(self.public_bytes))
            except (TimeoutError, SQLAlchemyError) as error:
                self.failed.append((started, f"public alerts: {type(error).__name__}"))
            else:
                self.public_committed += per_round
            round_number = max(round_number + 1, int((time.time() - began) / EVERY_S))


class Control:
    """The control client (module docs): ``arrived`` maps event ids to arrival times."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.arrived: dict[str, float] = {}
        self.last_id: str | None = None
        self.drops: list[tuple[float, str]] = []  # when the connection ended, and how
        self.connected = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._session(stop)
            except (OSError, TimeoutError, WebSocketException, RuntimeError) as error:
                self.drops.append((time.time(), f"{type(error).__name__}: {error}"[:120]))
            await pause(stop, 0.5)

    async def _session(self, stop: asyncio.Event) -> None:
        auth: dict[str, str] = {"token": self.token}
        if self.last_id is not None:
            auth["last_event_id"] = self.last_id
        async with asyncio.timeout(HANDSHAKE_TIMEOUT_S):
            socket = await connect(
                self.url, compression=None, ping_interval=None, close_timeout=2, proxy=None
            )
            try:
                opened = await socket.recv()
                if not isinstance(opened, str) or not opened.startswith("0"):
                    raise RuntimeError(f"unexpected open packet {opened!r:.60}")
                await socket.send("40" + json.dumps(auth))
                answer = await socket.recv()
                while not (isinstance(answer, str) and answer.startswith("4")):
                    answer = await socket.recv()
                if not answer.startswith("40"):
                    raise RuntimeError(f"refused: {answer[:120]}")
            except BaseException:
                await socket.close()
                raise
        self.connected.set()
        reading = asyncio.create_task(self._read(socket))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({reading, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await socket.close()
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        if not stop.is_set():
            how = f"closed by the server ({socket.close_code}, {socket.close_reason!r})"
            self.drops.append((time.time(), how))

    async def _read(self, socket: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for message in socket:
                now = time.time()
                if message == "2":
                    await socket.send("3")
                elif isinstance(message, str) and message.startswith("42"):
                    event = json.loads(message[2:])
                    envelope = event[1] if len(event) > 1 else None
                    if isinstance(envelope, dict) and "id" in envelope and "type" in envelope:
                        self.arrived.setdefault(envelope["id"], now)
                        self.last_id = envelope["id"]


@dataclass(frozen=True)
class Probe:
    began: float
    ms: float
    outcome: str  # the status code, "timeout" or the error


class Prober:
    """``GET /health`` every 100 ms (module docs); ``health`` keeps what the 200 answers
    said, with their time."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.probes: list[Probe] = []
        self.health: list[tuple[float, dict[str, Any]]] = []
        #: Why the databases a 503 answer reported down were down, and how often.
        self.down: Counter[str] = Counter()
        self._request = f"GET /health HTTP/1.1\r\nHost: {host}:{port}\r\n"
        self._request += "Connection: close\r\n\r\n"

    async def run(self, stop: asyncio.Event) -> None:
        running: set[asyncio.Task[None]] = set()
        began, number = time.time(), 0
        while not stop.is_set():
            task = asyncio.create_task(self._probe())
            running.add(task)
            task.add_done_callback(running.discard)
            number += 1
            await pause(stop, began + number * EVERY_S - time.time())
        await asyncio.gather(*running, return_exceptions=True)  # each bounded

    async def _probe(self) -> None:
        began, clock = time.time(), time.perf_counter()
        try:
            async with asyncio.timeout(PROBE_TIMEOUT_S):
                reader, writer = await asyncio.open_connection(self.host, self.port)
                try:
                    writer.write(self._request.encode())
                    answer = await reader.read()
                finally:
                    writer.close()
        except TimeoutError:
            outcome = "timeout"
        except OSError as error:
            outcome = type(error).__name__
        else:
            head, _, body = answer.partition(b"\r\n\r\n")
            parts = head.split(b" ", 2)
            outcome = parts[1].decode() if len(parts) > 1 else "no answer"
            if outcome == "200":
                with contextlib.suppress(ValueError):
                    self.health.append((began, json.loads(body)))
            elif outcome == "503":
                with contextlib.suppress(ValueError, AttributeError):
                    for name, database in json.loads(body)["databases"].items():
                        if not database["up"]:
                            self.down[f"{name}: {database.get('error')}"] += 1
        self.probes.append(Probe(began, (time.perf_counter() - clock) * 1000, outcome))


@dataclass(frozen=True)
class Sample:
    at: float
    rss_kb: int
    cpu_s: float
    queued: int  # bytes in the server's TCP send queues toward the watched address


def queued_toward(port: int, address: str) -> int:
    """Bytes waiting in the kernel's send queues of the TCP connections from local
    ``port`` to ``address`` (IPv4; ``/proc/net/tcp``: sent and not acknowledged, or not
    sent yet). What a client that stopped reading leaves in the kernel, before the
    server's own buffers fill."""
    local = f":{port:04X}"
    remote = "".join(f"{int(part):02X}" for part in reversed(address.split("."))) + ":"
    total = 0
    with open("/proc/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split(None, 5)
            if fields[1].endswith(local) and fields[2].startswith(remote):
                total += int(fields[4].split(":", 1)[0], 16)
    return total


class Server:
    """The server process every 100 ms: its ``VmRSS`` and CPU time; and every second what
    its TCP connections to the hostile client's address hold unsent (``queued_toward``)."""

    def __init__(self, pid: int, port: int, hostile: str) -> None:
        self.pid = pid
        self.port = port
        self.hostile = hostile
        self.samples: list[Sample] = []

    async def run(self, stop: asyncio.Event) -> None:
        queued, count = 0, 0
        while not stop.is_set():
            try:
                rss, cpu = rss_kb(self.pid), cpu_seconds(self.pid)
                if count % 10 == 0:  # the table is long while thousands of sockets are open
                    queued = queued_toward(self.port, self.hostile)
            except (OSError, RuntimeError):
                return  # the server is gone
            self.samples.append(Sample(time.time(), rss, cpu, queued))
            count += 1
            await pause(stop, EVERY_S)

    def during(self, began: float, until: float) -> dict[str, Any]:
        """Its RSS when ``began`` came, and from then until ``until``: its RSS growth at
        the peak, the share of one core it used and the most it held unsent toward the
        hostile client."""
        before = ([s for s in self.samples if s.at <= began] or self.samples)[-1]
        during = [s for s in self.samples if began <= s.at <= until] or [before]
        spent = (during[-1].cpu_s - before.cpu_s) / max(1e-3, during[-1].at - before.at)
        return {
            "rss_start_mb": round(before.rss_kb / 1024, 1),
            "rss_growth_mb": round((max(s.rss_kb for s in during) - before.rss_kb) / 1024, 1),
            "server_cpu_share": round(spent, 2),
            "queued_to_hostile_mb": round(max(s.queued for s in during) / 1e6, 2),
        }

    async def quiet(self, share: float, within: float) -> float:
        """Wait until the server used less than ``share`` of a core over the last second
        (at most ``within`` seconds); how long it took."""
        began = time.time()
        while time.time() - began < within:
            await asyncio.sleep(0.5)
            recent = [s for s in self.samples if s.at >= time.time() - 1.0]
            if len(recent) >= 2:
                spent = (recent[-1].cpu_s - recent[0].cpu_s) / (recent[-1].at - recent[0].at)
                if spent < share:
                    break
        return round(time.time() - began, 1)


def _spread(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return round(statistics.median(values), 1), round(percentile(values, 0.99), 1)


def figures(
    producer: Producer,
    control: Control,
    prober: Prober,
    server: Server,
    window: tuple[float, float],
    until: float,
) -> dict[str, Any]:
    """What the well-behaved side saw during ``window`` (epoch seconds, end excluded):
    control latency of the events whose commit began in it (arrival - commit; an event
    that never arrived is lost) and how long their commits took, ``/health`` latency of
    the probes started in it, whatever their answer (a timed-out one counts as the
    timeout); and the server's peak RSS until ``until`` minus its RSS
    when the window began, and the CPU it used meanwhile."""
    began, ended = window
    due = {i: c for i, c in producer.committed.items() if began <= c[0] < ended}
    arrived = control.arrived
    latencies = [(arrived[i] - c[1]) * 1000 for i, c in due.items() if i in arrived]
    commits = [(done - start) * 1000 for start, done in due.values()]
    probes = [p for p in prober.probes if began <= p.began < ended]
    outcomes = Counter(p.outcome for p in probes)
    control_p50, control_p99 = _spread(latencies)
    health_p50, health_p99 = _spread([p.ms for p in probes])  # a timeout counts as 2 s
    health = [body for t, body in prober.health if began <= t < ended]
    return {
        "control_p50_ms": control_p50,
        "control_p99_ms": control_p99,
        "control_events": len(due),
        "control_lost": len(due) - len(latencies),
        "control_dropped": [how for t, how in control.drops if began <= t < until],
        "commit_p99_ms": _spread(commits)[1],
        "commit_max_ms": round(max(commits), 1) if commits else None,
        "commits_failed": [why for start, why in producer.failed if began <= start < ended],
        "health_p50_ms": health_p50,
        "health_p99_ms": health_p99,
        "health_probes": len(probes),
        "health_non_200": sum(n for o, n in outcomes.items() if o not in ("200", "timeout")),
        "health_timeouts": outcomes["timeout"],
        "health_outcomes": dict(outcomes),
        **server.during(began, until),
        "server_view": _server_view(health),
    }


def _server_view(bodies: list[dict[str, Any]]) -> dict[str, Any]:
    """What ``GET /health`` said during the window: most connections, refused input and
    catch-ups (counters: their growth)."""
    if not bodies:
        return {}
    first, last = bodies[0], bodies[-1]
    catch_ups = [b.get("catch_ups", {}) for b in bodies]
    return {
        "connections_max": max(b.get("connections", 0) for b in bodies),
        "invalid_input": last.get("invalid_input", 0) - first.get("invalid_input", 0),
        "catch_ups_refused": last.get("catch_ups", {}).get("refused", 0)
        - first.get("catch_ups", {}).get("refused", 0),
        "catch_ups_waiting_max": max(c.get("waiting", 0) for c in catch_ups),
    }
