"""Events benchmark: commit → Socket.IO latency, relay throughput, 10,000 connections.

    python benchmarks/events.py [--quick] [--url postgresql://user@host:5432/postgres]
                                [--nats nats://127.0.0.1:4222]

One run on throwaway PostgreSQL databases (prefix ``azb_<random>``: auth, notifications,
nexus; dropped at the end and on Ctrl-C) of the server given by ``--url`` or
``AZORA_BENCH_POSTGRES_URL``, and a JetStream stream of its own (``AZB_<random>``,
subjects ``azb_<random>.events.>``, deleted at the end) on the NATS server given by
``--nats`` or ``AZORA_BENCH_NATS_URL``. Every process it starts gets a deadline and is
stopped (by PID) if it outlives it.

* **NATS round trip** (``nats_rtt_p50_ms``, the physical reference): core NATS with
  nats-py on loopback, one publishing and one subscribing connection, a message the size
  of an event envelope; one message in flight at a time, many samples.
* **Commit → client latency** (``e2e_p50_ms``, ``e2e_p99_ms``): writers commit
  ``notification.created`` events with ``UnitOfWork.emit``, one event per transaction,
  at a steady 1,000/s spread over 1,000 users (each user gets one a second) and note
  ``time.time()`` when each commit returns. The relay (``Relay.run`` as deployed: polls
  and ``LISTEN``s for the writers' notifies) runs in a process of its own and publishes
  to JetStream; the gateway runs in its own process (uvicorn, websockets) and the 1,000
  Socket.IO clients (one per user) in another: raw Engine.IO/Socket.IO over
  ``websockets`` (``benchmarks/_events_clients.py``), arrival time noted first thing.
  Latency = arrival - commit (one machine clock), over the events committed after the
  warm-up. ``ratio_p50_vs_nats`` = e2e p50 / NATS round-trip p50. Targets: p99 < 25 ms,
  p50 within 5 times the NATS round trip. Where the time goes: each event's JetStream
  storage time (read back from the stream afterwards) splits the latency into commit →
  stored (notify, relay round) and stored → client (tap, gateway, websocket, client); the
  CPU each process (and PostgreSQL, NATS, the rest of the machine) used while writing,
  and the gateway's garbage-collector pauses, are printed beside them. A writer task
  that falls behind skips its missed slots rather than bursting (the achieved rate is
  printed).
* **Relay throughput** (``relay_events_per_s``): the outbox pre-filled with N events
  (50,000; 10,000 with ``--quick``) in transactions of 1,000 emits, then
  ``Relay.run_once`` back to back (default batch, 500) until it is empty, by one relay
  process and by two sharing the work (``SKIP LOCKED``); the better layout is reported
  (named). Reference: bare nats-py JetStream ``publish_async`` of as many messages of the
  same size and headers (``Nats-Msg-Id``), acknowledged in batches of 500, same stream.
  Target ≥ 10,000/s.
* **Connections** (``connections_held``, ``rss_per_connection_kb``,
  ``broadcast_p99_ms``): a fresh gateway process, and 10,000 Socket.IO connections
  (2,000 with ``--quick``) from one client process, opened 500 at a time; 1,000 users
  signed in, each user holding several connections (connection ``i`` uses user
  ``i % 1000``'s token). Every connection subscribes to ``system.>``. RSS per
  connection = (gateway ``VmRSS`` with them - before) / connections. Then public
  ``system.alert`` events are published straight to the bus one after the other; each
  broadcast's time is from just before the publish to the arrival at the last client
  (this includes the client process reading 10,000 frames on the same 2 cores; the CPU
  each of the two processes used per broadcast is printed).
  ``connections_held``: connections still open at the end, after the broadcasts and at
  least one Engine.IO ping interval (25 s; 5 s with ``--quick``). Targets: all held,
  broadcast p99 < 500 ms.

The parts run in this order: NATS round trip, sign-ins, end to end (on an empty outbox),
relay throughput, connections. ``--profile-gateway DIR`` runs the gateway processes under
cProfile (slower: for finding where the time goes, not for figures).

How to read it: one line per figure, beside its reference and target, on stdout; the
last line is one JSON object with ``e2e_p50_ms``, ``e2e_p99_ms``, ``nats_rtt_p50_ms``,
``ratio_p50_vs_nats``, ``relay_events_per_s``, ``connections_held``, ``broadcast_p99_ms``
and ``rss_per_connection_kb`` (plus details). Medians and percentiles only: the machine
is shared. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nats.js.errors
from _common import Server, notification, percentile, say, throwaway
from _events_child import all_cpu, cpu_seconds, machine_busy, rss_kb
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from azora.auth.passwords import Argon2Parameters, Passwords
from azora.auth.service import AuthService
from azora.cache import Cache
from azora.cache.backends import MemoryBackend
from azora.catalog import SERVICES
from azora.db import lifecycle
from azora.db.engines import Databases
from azora.db.uow import UnitOfWork
from azora.events.buses import NatsBus
from azora.events.envelope import Envelope
from azora.settings import Settings
from azora.types import ServiceName

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_NATS = "nats://127.0.0.1:4222"
HERE = Path(__file__).resolve().parent
SERVICE = ServiceName.NOTIFICATIONS
PASSWORD = "benchmark-only passphrase"
#: Sign-in hashes are not measured here: the cheapest parameters (as the gateway tests).
CHEAP = Argon2Parameters(time_cost=1, memory_cost_kib=1_024, parallelism=1)
USERS = 1_000
RATE = 1_000  # events per second, end to end
WRITERS = 32  # concurrent writer tasks sharing the rate (a commit waits on round trips)
RELAY_BATCH = 500


@dataclass(frozen=True)
class Plan:
    """How much each part measures."""

    quick: bool
    rtt_samples: int
    e2e_warmup: float
    e2e_seconds: float
    relay_events: int
    relay_repetitions: int
    connections: int
    broadcasts: int
    hold_seconds: float


FULL = Plan(False, 5_000, 5.0, 30.0, 50_000, 2, 10_000, 20, 25.0)
QUICK = Plan(True, 1_000, 2.0, 8.0, 10_000, 1, 2_000, 10, 5.0)


@dataclass(frozen=True)
class Run:
    """This run's server, NATS stream and plan."""

    server: Server
    nats_url: str
    stream: str
    prefix: str
    plan: Plan
    scratch: Path
    profile: str | None = None

    def settings(self, **overrides: Any) -> dict[str, Any]:
        # Every client connects from 127.0.0.1: no cap or rate limit per address.
        return self.server.settings(
            events_url=self.nats_url,
            gateway_max_connections_per_ip=0,
            gateway_connection_rate_per_ip=0,
            gateway_handshake_rate_per_ip=0,
            gateway_connect_rate_per_ip=0,
            **overrides,
        )

    def bus(self) -> NatsBus:
        return NatsBus(self.nats_url, stream=self.stream, subject_prefix=self.prefix)

    def child_spec(self, seconds: float, **fields: Any) -> dict[str, Any]:
        return {
            "settings": self.settings(),
            "nats_url": self.nats_url,
            "stream": self.stream,
            "prefix": self.prefix,
            "deadline": time.time() + seconds,
            "profile": self.profile,
            **fields,
        }


# -- child processes ------------------------------------------------------------------


class Child:
    """A child process (``benchmarks/_events_<role>.py``) and its JSON-line replies."""

    def __init__(self, role: str, process: asyncio.subprocess.Process) -> None:
        self.role = role
        self.process = process

    @classmethod
    async def start(cls, role: str, spec: dict[str, Any]) -> Child:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(HERE / f"_events_{role}.py"),
            json.dumps(spec),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=1 << 20,
        )
        return cls(role, process)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def expect(
        self, wanted: Callable[[dict[str, Any]], bool], seconds: float
    ) -> dict[str, Any]:
        """The next reply for which ``wanted`` holds (others are skipped)."""
        assert self.process.stdout is not None
        async with asyncio.timeout(seconds):
            while True:
                line = await self.process.stdout.readline()
                if not line:
                    raise RuntimeError(f"the {self.role} process ended early")
                answer: dict[str, Any] = json.loads(line)
                if "error" in answer:
                    raise RuntimeError(f"the {self.role} process failed: {answer['error']}")
                if wanted(answer):
                    return answer

    async def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()

    async def finish(self, seconds: float = 30.0) -> None:
        """Ask it to stop; kill it (this PID only) if it has not ended within ``seconds``."""
        if self.process.returncode is None:
            with contextlib.suppress(Exception):
                await self.send("stop")
                assert self.process.stdin is not None
                self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), seconds)
        except TimeoutError:
            say(f"the {self.role} process ({self.pid}) did not stop; killing it")
            self.process.kill()
            await self.process.wait()


@contextlib.asynccontextmanager
async def child(role: str, spec: dict[str, Any]) -> AsyncIterator[Child]:
    started = await Child.start(role, spec)
    try:
        yield started
    finally:
        await started.finish()


# -- set-up ---------------------------------------------------------------------------


async def set_up(run: Run) -> None:
    async with Databases(Settings(**run.settings())) as databases:
        for service in (ServiceName.AUTH, SERVICE, ServiceName.NEXUS):
            say(f"setting up {run.server.database(service)}")
            await lifecycle.setup(databases, SERVICES[service].migrations)
    bus = run.bus()
    await bus.publish_many([sample_envelope(run)])  # creates the stream as the product does
    await bus.aclose()


async def sign_in_users(run: Run, count: int) -> list[tuple[uuid.UUID, str]]:
    """``count`` registered users and an access token of each (real sign-ins)."""
    began = time.perf_counter()
    users: list[tuple[uuid.UUID, str]] = []
    cache = Cache(MemoryBackend())
    async with Databases(Settings(**run.settings())) as databases:
        auth = AuthService(databases, cache=cache, passwords=Passwords(CHEAP))
        numbers = iter(range(count))

        async def worker() -> None:
            for number in numbers:
                email = f"bench-{number}-{uuid.uuid4().hex[:8]}@example.org"
                await auth.register(email, PASSWORD, f"Bench User {number}")
                signed = await auth.login(email, PASSWORD, "127.0.0.1", "benchmark")
                users.append((signed.user_id, signed.access_token))

        await asyncio.gather(*(worker() for _ in range(8)))
    await cache.aclose()
    say(f"{count:,} users registered and signed in in {time.perf_counter() - began:.1f} s")
    return users


async def delete_stream(run: Run) -> None:
    client = await nats.connect(run.nats_url, connect_timeout=5, max_reconnect_attempts=1)
    try:
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await client.jetstream().delete_stream(run.stream)
            say(f"deleted NATS stream {run.stream}")
    finally:
        await client.close()


def sample_envelope(run: Run) -> Envelope:
    user = uuid.uuid4()
    message = notification(user, 123_456)
    return Envelope(
        id=message.id,
        type=message.type,
        source=message.source,
        subject=user,
        payload=message.payload,
        occurred_at=dt.datetime.now(dt.UTC),
    )


# -- 1. NATS round trip ---------------------------------------------------------------


async def nats_round_trip(run: Run) -> dict[str, Any]:
    subject = f"{run.server.prefix}.rtt"
    data = sample_envelope(run).model_dump_json().encode()
    receiver = await nats.connect(run.nats_url, connect_timeout=5)
    sender = await nats.connect(run.nats_url, connect_timeout=5)
    loop = asyncio.get_running_loop()
    waiting: list[asyncio.Future[float]] = []

    async def arrived(_message: Any) -> None:
        if waiting and not waiting[0].done():
            waiting[0].set_result(time.perf_counter())

    try:
        await receiver.subscribe(subject, cb=arrived)
        await receiver.flush()
        samples: list[float] = []
        for number in range(run.plan.rtt_samples + 100):
            waiting[:] = [loop.create_future()]
            began = time.perf_counter()
            await sender.publish(subject, data)
            landed = await asyncio.wait_for(waiting[0], 5)
            if number >= 100:  # warm-up
                samples.append((landed - began) * 1000)
    finally:
        await sender.close()
        await receiver.close()
    p50, p99 = statistics.median(samples), percentile(samples, 0.99)
    print(
        f"NATS core publish → subscribe round trip (nats-py, loopback, {len(data)} B):"
        f" p50 {p50:.3f} ms, p99 {p99:.3f} ms  ({len(samples):,} samples) — the reference"
    )
    say(f"NATS round trip p50 {p50:.3f} ms")
    return {"nats_rtt_p50_ms": round(p50, 4), "nats_rtt_p99_ms": round(p99, 4)}


# -- 3. relay throughput --------------------------------------------------------------


async def fill_outbox(run: Run, count: int) -> None:
    users = [uuid.uuid4() for _ in range(USERS)]
    async with Databases(Settings(**run.settings())) as databases:
        for first in range(0, count, 1_000):
            async with UnitOfWork(databases, SERVICE, as_service=True) as uow:
                for number in range(first, min(count, first + 1_000)):
                    uow.emit(notification(users[number % USERS], number))


async def relay_drain(run: Run, processes: int) -> float:
    """Events/s of ``processes`` relay processes draining the filled outbox."""
    budget = 300.0
    spec = run.child_spec(budget, mode="drain")
    children = [await Child.start("relay", spec) for _ in range(processes)]
    try:
        for relay in children:
            await relay.expect(lambda a: "ready" in a, 60)
        began = time.time()
        for relay in children:
            await relay.send("go")
        done = [await relay.expect(lambda a: "finished" in a, budget) for relay in children]
    finally:
        for relay in children:
            await relay.finish()
    published = sum(d["published"] for d in done)
    return published / (max(d["finished"] for d in done) - began)


async def bare_jetstream(run: Run, count: int) -> float:
    """Messages/s of bare nats-py ``publish_async`` with acks, batches of RELAY_BATCH."""
    data = sample_envelope(run).model_dump_json().encode()
    subject = f"{run.prefix}.notification.created"
    client = await nats.connect(run.nats_url, connect_timeout=5)
    try:
        context = client.jetstream(timeout=10)
        began = time.perf_counter()
        for first in range(0, count, RELAY_BATCH):
            acks = [
                await context.publish_async(
                    subject, data, stream=run.stream, headers={"Nats-Msg-Id": str(uuid.uuid4())}
                )
                for _ in range(first, min(count, first + RELAY_BATCH))
            ]
            await asyncio.wait_for(asyncio.gather(*acks), 10)
        return count / (time.perf_counter() - began)
    finally:
        await client.close()


async def relay_throughput(run: Run) -> dict[str, Any]:
    count = run.plan.relay_events
    ours: dict[int, list[float]] = {1: [], 2: []}
    bare: list[float] = []
    for repetition in range(run.plan.relay_repetitions):
        bare.append(await bare_jetstream(run, count))
        say(f"bare JetStream publish_async: {bare[-1]:,.0f} msg/s")
        for processes in (1, 2):
            began = time.perf_counter()
            await fill_outbox(run, count)
            say(f"outbox filled with {count:,} events in {time.perf_counter() - began:.1f} s")
            ours[processes].append(await relay_drain(run, processes))
            say(
                f"relay, {processes} process(es), run {repetition + 1}/"
                f"{run.plan.relay_repetitions}: {ours[processes][-1]:,.0f} events/s"
            )
    medians = {processes: statistics.median(values) for processes, values in ours.items()}
    best = max(medians, key=lambda processes: medians[processes])
    bare_median = statistics.median(bare)
    other = 3 - best
    print(
        f"Relay outbox → JetStream ({count:,} events, batch {RELAY_BATCH}):"
        f" {medians[best]:,.0f} events/s with {best} relay process(es)"
        f" ({medians[other]:,.0f}/s with {other}) (target ≥ 10,000/s) | bare nats-py"
        f" JetStream publish_async + acks {bare_median:,.0f} msg/s | ratio"
        f" {medians[best] / bare_median:.3f}"
    )
    return {
        "relay_events_per_s": round(medians[best]),
        "relay_processes": best,
        "relay_events_per_s_1": round(medians[1]),
        "relay_events_per_s_2": round(medians[2]),
        "bare_jetstream_msgs_per_s": round(bare_median),
    }


# -- 2. end-to-end latency ------------------------------------------------------------


async def write_events(
    run: Run, users: list[uuid.UUID], began: float, seconds: float
) -> dict[str, float]:
    """Commit RATE events/s from ``began`` for ``seconds``; event id → commit time."""
    committed: dict[str, float] = {}
    settings = Settings(**run.settings(db_pool_size=WRITERS, db_max_overflow=0))
    async with Databases(settings) as databases:
        for _ in range(WRITERS):  # open the pool before the clock starts
            async with UnitOfWork(databases, SERVICE, as_service=True):
                pass
        ends = began + seconds

        async def writer(offset: int) -> None:
            # Each task keeps its own slots (offset, offset + WRITERS, ...). A task that
            # fell more than one slot behind skips the slots it missed rather than
            # bursting to catch up: the rate stays steady (and is reported if lower).
            sequence = offset
            while True:
                due = began + sequence / RATE
                if due >= ends:
                    return
                late = time.time() - due
                if late > WRITERS / RATE:
                    sequence += WRITERS * int(late * RATE / WRITERS)
                    continue
                await asyncio.sleep(max(0.0, -late))
                message = notification(users[sequence % len(users)], sequence)
                async with UnitOfWork(databases, SERVICE, as_service=True) as uow:
                    uow.emit(message)
                committed[str(message.id)] = time.time()
                sequence += WRITERS

        await asyncio.gather(*(writer(offset) for offset in range(WRITERS)))
        await asyncio.sleep(0.1)  # the notifier's last, trailing NOTIFY
    return committed


async def stream_position(run: Run) -> int:
    """The sequence number of the last message in this run's stream."""
    client = await nats.connect(run.nats_url, connect_timeout=5)
    try:
        info = await client.jetstream().stream_info(run.stream)
        return int(info.state.last_seq)
    finally:
        await client.close()


async def stored_times(run: Run, after: int, wanted: int) -> dict[str, float]:
    """Event id → when JetStream stored it, for the messages after sequence ``after``."""
    stored: dict[str, float] = {}
    client = await nats.connect(run.nats_url, connect_timeout=5)
    try:
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=after + 1,
            ack_policy=AckPolicy.NONE,
        )
        reader = await client.jetstream().pull_subscribe(
            f"{run.prefix}.>", stream=run.stream, config=config
        )
        while len(stored) < wanted:
            try:
                messages = await reader.fetch(1_000, timeout=2)
            except nats.errors.TimeoutError:
                break
            for message in messages:
                event_id = json.loads(message.data)["id"]
                stored[event_id] = message.metadata.timestamp.timestamp()
        await reader.unsubscribe()
    finally:
        await client.close()
    return stored


def cpu_by_role(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]], ours: dict[str, int]
) -> dict[str, float]:
    """CPU seconds spent between two :func:`all_cpu` snapshots, by role or process name."""
    roles = {pid: role for role, pid in ours.items()}
    spent: dict[str, float] = dict.fromkeys(ours, 0.0)
    for pid, (name, seconds) in after.items():
        earlier = before.get(pid)
        # A PID seen before is the same process (kernel threads rename themselves).
        used = seconds - earlier[1] if earlier and seconds >= earlier[1] else seconds
        role = roles.get(pid) or ("other " + name if name == "python" else name)
        spent[role] = spent.get(role, 0.0) + used
    big = sorted(spent.items(), key=lambda item: -item[1])[:4]
    always = {*ours, "postgres", "nats-server"}
    kept = {role: used for role, used in spent.items() if role in always or (role, used) in big}
    kept["the rest"] = sum(spent.values()) - sum(kept.values())
    return dict(sorted(kept.items(), key=lambda item: -item[1]))


async def end_to_end(run: Run, users: list[tuple[uuid.UUID, str]]) -> dict[str, Any]:
    plan = run.plan
    tokens = run.scratch / "e2e_tokens.json"
    tokens.write_text(json.dumps([token for _, token in users]))
    out = run.scratch / "e2e_received.json"
    budget = 120.0 + plan.e2e_seconds
    position = await stream_position(run)
    async with child("gateway", run.child_spec(budget)) as gateway:
        port = (await gateway.expect(lambda a: "port" in a, 60))["port"]
        say(f"gateway (pid {gateway.pid}) on port {port}")
        async with child("relay", run.child_spec(budget, mode="run")) as relay:
            ready = await relay.expect(lambda a: "ready" in a, 60)
            say(f"relay (pid {relay.pid}) running, listening: {ready['listening']}")
            spec = run.child_spec(
                budget,
                url=f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket",
                tokens_file=str(tokens),
                connections=len(users),
                subscribe=[],
                batch=500,
                out=str(out),
            )
            async with child("clients", spec) as clients:
                opened = await clients.expect(lambda a: "connected" in a, 120)
                say(f"{opened['connected']:,} clients connected in {opened['seconds']} s")
                if opened["connected"] < len(users):
                    raise RuntimeError(f"only {opened['connected']} clients connected: {opened}")
                began = time.time() + 0.5
                total = plan.e2e_warmup + plan.e2e_seconds
                say(f"writing {RATE:,} events/s for {total:.0f} s ({plan.e2e_warmup:.0f} warm-up)")
                roles = {"writers": os.getpid(), "relay": relay.pid, "gateway": gateway.pid}
                roles["clients"] = clients.pid
                await gateway.send("reset")
                cpu_before, busy_before = all_cpu(), machine_busy()
                committed = await write_events(run, [u for u, _ in users], began, total)
                cpu = cpu_by_role(cpu_before, all_cpu(), roles)
                busy, elapsed = (b - a for a, b in zip(busy_before, machine_busy(), strict=True))
                await asyncio.sleep(2.0)  # the last events' way to the clients
                await gateway.send("stats")
                pauses = await gateway.expect(lambda a: "gc_total_ms" in a, 30)
                await clients.send("stop")
                summary = await clients.expect(lambda a: "done" in a, 60)
    received = {event_id: arrived for arrived, event_id in json.loads(out.read_text())}
    window = began + plan.e2e_warmup
    measured = {event_id: t for event_id, t in committed.items() if t >= window}
    latencies = [
        (received[event_id] - t) * 1000 for event_id, t in measured.items() if event_id in received
    ]
    lost = len(measured) - len(latencies)
    stored = await stored_times(run, position, len(committed))
    relayed = [(stored[i] - t) * 1000 for i, t in measured.items() if i in stored]
    both = [i for i in measured if i in received and i in stored]
    delivered = [(received[i] - stored[i]) * 1000 for i in both]
    achieved = len(measured) / (max(measured.values()) - window)
    say(
        f"{len(committed):,} events committed, {summary['received']:,} received;"
        f" {lost} of the measured ones missing"
    )
    if not latencies:
        raise RuntimeError("no event reached the clients")
    cpu["unaccounted"] = busy - sum(cpu.values())  # processes that came and went
    shares = ", ".join(f"{role} {100 * seconds / elapsed:.0f}%" for role, seconds in cpu.items())
    load = f"CPU while writing, in % of the machine ({os.cpu_count()} cores): {shares};"
    load += f" machine busy {100 * busy / elapsed:.0f}% of its capacity"
    say(load)
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    return {
        "e2e_p50_ms": round(p50, 2),
        "e2e_p99_ms": round(p99, 2),
        "e2e_max_ms": round(max(latencies), 2),
        "e2e_events": len(latencies),
        "e2e_lost": lost,
        "e2e_rate_per_s": round(achieved),
        "commit_to_stream_p50_ms": round(statistics.median(relayed), 2),
        "commit_to_stream_p99_ms": round(percentile(relayed, 0.99), 2),
        "stream_to_client_p50_ms": round(statistics.median(delivered), 2),
        "stream_to_client_p99_ms": round(percentile(delivered, 0.99), 2),
        "e2e_cpu_share": {role: round(seconds / elapsed, 3) for role, seconds in cpu.items()},
        "e2e_machine_busy": round(busy / elapsed, 3),
        "e2e_gateway_gc": {key: pauses[key] for key in pauses if key.startswith("gc_")},
        "e2e_load": load,
    }


# -- 4. connections -------------------------------------------------------------------


async def connections(run: Run, users: list[tuple[uuid.UUID, str]]) -> dict[str, Any]:
    plan = run.plan
    wanted = plan.connections
    tokens = run.scratch / "scale_tokens.json"
    tokens.write_text(json.dumps([token for _, token in users]))
    budget = 300.0 + wanted / 20 + plan.broadcasts * 12 + plan.hold_seconds
    bus = run.bus()
    try:
        async with child("gateway", run.child_spec(budget)) as gateway:
            port = (await gateway.expect(lambda a: "port" in a, 60))["port"]
            await asyncio.sleep(1.0)
            before = rss_kb(gateway.pid)
            say(f"gateway (pid {gateway.pid}) on port {port}, RSS {before / 1024:.1f} MiB")
            spec = run.child_spec(
                budget,
                url=f"ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket",
                tokens_file=str(tokens),
                connections=wanted,
                subscribe=["system.>"],
                batch=500,
                out=str(run.scratch / "scale_received.json"),
            )
            async with child("clients", spec) as clients:
                opened = await clients.expect(lambda a: "connected" in a, budget)
                connected_at = time.time()
                say(
                    f"{opened['connected']:,} of {wanted:,} connected in {opened['seconds']} s"
                    f" ({opened['failed']} failed: {opened['errors']})"
                )
                await asyncio.sleep(2.0)
                await gateway.send("stats")
                stats = await gateway.expect(lambda a: "rss_kb" in a, 30)
                after = stats["rss_kb"]
                held_by_gateway = stats["connections"]
                say(f"gateway: {held_by_gateway:,} connections, RSS {after / 1024:.1f} MiB")
                times, gateway_cpu, clients_cpu = await broadcasts(run, bus, clients, gateway)
                left = plan.hold_seconds - (time.time() - connected_at)
                if left > 0:
                    say(f"holding the connections {left:.0f} s more (a ping interval)")
                    await asyncio.sleep(left)
                await clients.send("stats")
                final = await clients.expect(lambda a: "alive" in a, 30)
                await gateway.send("stats")
                final_gateway = await gateway.expect(lambda a: "rss_kb" in a, 30)
                held = min(final["alive"], final_gateway["connections"])
                say(
                    f"at the end: {final['alive']:,} alive in the clients,"
                    f" {final_gateway['connections']:,} in the gateway; closed: {final['closed']}"
                )
    finally:
        await bus.aclose()
    per_connection = (after - before) / max(1, held_by_gateway)
    return {
        "connections_wanted": wanted,
        "connections_opened": opened["connected"],
        "connections_open_seconds": opened["seconds"],
        "connections_held": held,
        "rss_per_connection_kb": round(per_connection, 1),
        "gateway_rss_before_mb": round(before / 1024, 1),
        "gateway_rss_after_mb": round(after / 1024, 1),
        "broadcast_p50_ms": round(statistics.median(times), 1) if times else None,
        "broadcast_p99_ms": round(percentile(times, 0.99), 1) if times else None,
        "broadcast_max_ms": round(max(times), 1) if times else None,
        "broadcasts": len(times),
        "broadcast_gateway_cpu_ms": round(statistics.median(gateway_cpu), 1) if times else None,
        "broadcast_clients_cpu_ms": round(statistics.median(clients_cpu), 1) if times else None,
    }


async def broadcasts(
    run: Run, bus: NatsBus, clients: Child, gateway: Child
) -> tuple[list[float], list[float], list[float]]:
    """Publish public alerts one at a time: ms until the last client had each, and the
    gateway's and the clients' CPU ms for each."""
    times: list[float] = []
    gateway_cpu: list[float] = []
    clients_cpu: list[float] = []
    await bus.publish_many([alert(0)])  # connect first; this one is not timed
    with contextlib.suppress(TimeoutError):
        await clients.expect(lambda a: "alert" in a, 15)
    for number in range(1, run.plan.broadcasts + 1):
        envelope = alert(number)
        cpu = cpu_seconds(gateway.pid), cpu_seconds(clients.pid)
        began = time.time()
        await bus.publish_many([envelope])
        try:
            got = await clients.expect(lambda a, i=str(envelope.id): a.get("alert") == i, 15)
        except TimeoutError:
            say(f"broadcast {number}: not every client had it within 15 s")
            continue
        times.append((got["last"] - began) * 1000)
        gateway_cpu.append((cpu_seconds(gateway.pid) - cpu[0]) * 1000)
        clients_cpu.append((cpu_seconds(clients.pid) - cpu[1]) * 1000)
        say(f"broadcast {number}: the last of {got['count']:,} clients after {times[-1]:.0f} ms")
        await asyncio.sleep(0.5)
    return times, gateway_cpu, clients_cpu


def alert(number: int) -> Envelope:
    return Envelope(
        type="system.alert",
        source="health",
        payload={"severity": "info", "message": f"benchmark broadcast {number}"},
        occurred_at=dt.datetime.now(dt.UTC),
    )


# -- the run --------------------------------------------------------------------------


async def measure(run: Run) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    try:
        await set_up(run)
        figures.update(await nats_round_trip(run))
        users = await sign_in_users(run, USERS)
        # On an empty outbox, before the relay's part fills it with published rows.
        figures.update(await end_to_end(run, users))
        figures.update(await relay_throughput(run))
        figures.update(await connections(run, users))
    finally:
        await delete_stream(run)
    return figures


def report(run: Run, figures: dict[str, Any]) -> None:
    plan = run.plan
    p50, p99, rtt = figures["e2e_p50_ms"], figures["e2e_p99_ms"], figures["nats_rtt_p50_ms"]
    figures["ratio_p50_vs_nats"] = round(p50 / rtt, 2)
    print(
        f"Commit → Socket.IO client, {RATE:,} events/s over {USERS:,} clients"
        f" ({figures['e2e_rate_per_s']:,}/s achieved): p50 {p50:.2f} ms, p99 {p99:.2f} ms"
        f" (target p99 < 25 ms) | bare NATS round trip p50 {rtt:.3f} ms | ratio p50"
        f" {p50 / rtt:.1f} (target ≤ 5)  ({figures['e2e_events']:,} events after"
        f" {plan.e2e_warmup:.0f} s warm-up, {figures['e2e_lost']} missing)"
    )
    print(
        f"  where it goes: commit → stored in JetStream (writer's notify, relay round) p50"
        f" {figures['commit_to_stream_p50_ms']} ms, p99 {figures['commit_to_stream_p99_ms']} ms;"
        f" stored → client (tap, gateway, websocket, client) p50"
        f" {figures['stream_to_client_p50_ms']} ms, p99 {figures['stream_to_client_p99_ms']} ms"
    )
    print(f"  {figures.pop('e2e_load')}")
    gc = figures["e2e_gateway_gc"]
    print(
        f"  the gateway's garbage collector while writing: {gc['gc_collections']} collections"
        f" (generations 0, 1, 2), longest {gc['gc_longest_ms']} ms, {gc['gc_total_ms']} ms in all;"
        f" {gc['gc_tracked_objects']:,} objects tracked at the end"
    )
    if figures["e2e_rate_per_s"] < 0.95 * RATE:
        print(
            f"  the writers fell behind: {figures['e2e_rate_per_s']:,} commits/s instead of"
            f" {RATE:,} (the machine is saturated, see the CPU shares)"
        )
    note = " (--quick: fewer connections than the 10,000 of a full run)" if plan.quick else ""
    print(
        f"Connections on one gateway process{note}: {figures['connections_held']:,} of"
        f" {figures['connections_wanted']:,} held (target all) | RSS per connection"
        f" {figures['rss_per_connection_kb']:.1f} KiB ({figures['gateway_rss_before_mb']} MiB"
        f" → {figures['gateway_rss_after_mb']} MiB) | broadcast to the last client p50"
        f" {figures['broadcast_p50_ms']} ms, p99 {figures['broadcast_p99_ms']} ms"
        f" (target p99 < 500 ms; {figures['broadcasts']} broadcasts)"
    )
    print(
        "  per broadcast, from the publish to the last arrival (medians): CPU of the gateway"
        f" process {figures['broadcast_gateway_cpu_ms']} ms, of the client process"
        f" {figures['broadcast_clients_cpu_ms']} ms; {USERS:,} users signed in, each holding"
        f" {figures['connections_wanted'] / USERS:g} connection(s)"
    )
    keys = (
        "e2e_p50_ms",
        "e2e_p99_ms",
        "nats_rtt_p50_ms",
        "ratio_p50_vs_nats",
        "relay_events_per_s",
        "connections_held",
        "broadcast_p99_ms",
        "rss_per_connection_kb",
    )
    ordered = {key: figures[key] for key in keys}
    ordered.update({key: value for key, value in figures.items() if key not in ordered})
    ordered["quick"] = plan.quick
    print(json.dumps(ordered), flush=True)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~1-minute version")
    parser.add_argument(
        "--url",
        default=os.environ.get("AZORA_BENCH_POSTGRES_URL", DEFAULT_URL),
        help="PostgreSQL server URL (default: $AZORA_BENCH_POSTGRES_URL or %(default)s)",
    )
    parser.add_argument(
        "--nats",
        default=os.environ.get("AZORA_BENCH_NATS_URL", DEFAULT_NATS),
        help="NATS server URL (default: $AZORA_BENCH_NATS_URL or %(default)s)",
    )
    parser.add_argument(
        "--profile-gateway",
        metavar="DIR",
        help="run the gateway processes under cProfile, writing gateway-PID.prof into DIR",
    )
    args = parser.parse_args(argv)
    server = Server.fresh(args.url)
    scratch = Path(tempfile.mkdtemp(prefix=f"{server.prefix}_"))
    run = Run(
        server=server,
        nats_url=args.nats,
        stream=server.prefix.upper(),
        prefix=f"{server.prefix}.events",
        plan=QUICK if args.quick else FULL,
        scratch=scratch,
        profile=str(Path(args.profile_gateway).resolve()) if args.profile_gateway else None,
    )
    say(f"run {server.prefix}: NATS stream {run.stream}, scratch {scratch}")
    try:
        with throwaway(server):
            figures = asyncio.run(measure(run))
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report(run, figures)


if __name__ == "__main__":
    main()
