"""Abuse benchmark: does ``azora serve`` keep serving well-behaved clients while one
hostile client abuses it?

    python benchmarks/abuse.py [--quick] [--only ABUSE ...]

The server is the real ``azora serve --port 0`` (``benchmarks/_abuse_server.py``) on the
embedded default (SQLite databases in a temporary data dir, created, migrated and seeded
by the command, the ``memory://`` bus, relay and consumers in the process; ``AZORA_*``
variables of the caller's environment are dropped), stopped with Ctrl-C (SIGINT) at the
end, killed by its PID if it outlives the run's deadline (or its parent). Gateway limits
keep their defaults except those :data:`LIMITS` lowers, printed first (none today).

The well-behaved side (``benchmarks/_abuse_watch.py``) runs in this process for the whole
run, from 127.0.0.1:

* a **control client**, a signed-in Socket.IO connection (a user signed in with
  ``AuthService`` on the served databases) receiving a steady stream of its own
  ``notification.created`` events, committed here with ``UnitOfWork.emit`` (one per
  transaction, 20/s); latency = arrival - the commit's return (one machine clock). A
  phase counts the events whose commit began in it, and how long those commits took
  (on SQLite they wait for the write locks the server's relay holds). An event that
  never arrives is lost. Closed by the server, the control client reconnects with its
  ``last_event_id`` (noted);
* a **prober**: ``GET /health`` every 100 ms on a new connection, 2 s timeout;
* a steady stream of **public** ``system.alert`` events (50/s, 1,000-character
  messages, committed 5 to a transaction), 1,000 of them committed before the first
  phase: the history that reconnecting clients catch up on, and what stuck readers
  fall behind on. Nobody well-behaved subscribes to them;
* the server's ``VmRSS`` and CPU time every 100 ms, and every second the bytes its TCP
  connections to the hostile address hold unsent in the kernel (``/proc/net/tcp``).

Then phases of a fixed length (20 s; 6 s with ``--quick``), each after a pause (5 s; 2 s
with ``--quick``) and then until the server's CPU is back within 15 points of a core of
its baseline level (at most 30 s more; how long it took is printed). Each
abuse comes from one hostile client in a process of its own
(``benchmarks/_abuse_clients.py``), connecting from 127.0.0.2 (another loopback address:
another client address to the per-address limits), with 5 signed-in hostile users:

0. **baseline**: no abuse.
1. **catch_up_storm**: 100 connections at once (20 per hostile user), each signing in
   with a ``last_event_id`` from the year 2000 (``id_floor``), subscribed to
   ``system.>`` (every public alert is theirs to catch up on), reading until
   ``caught_up`` and reconnecting at once, whatever ``retry_after_ms`` a ``busy`` gap
   says.
2. **pattern_hoard**: 4 signed-in connections sending ``subscribe`` with 64 new patterns
   of 190 characters (12 KB a call), then ``unsubscribe`` of them, and so on, 16 calls
   awaiting their answers at a time, up to 4,000 calls (1,000 with ``--quick``); each
   then holds its last 64 patterns.
3. **header_flood**: 10 ``GET /health`` requests at once whose headers never end (half
   one endless header, half 1 KiB headers one after the other), streamed in 64 KiB
   chunks up to 100 MB each (10 MB with ``--quick``) whatever the server answers, until
   it closes the connection; then the next.
4. **half_sent**: 2,000 connections (1,000 with ``--quick``), opened at most 500 a
   second, each sending ``GET /health HT`` and nothing more; one the server closes is
   replaced.
5. **garbage_frames**: 10 workers, each opening an Engine.IO websocket session and
   sending invalid 3-byte frames (not Engine.IO, undecodable Socket.IO, binary): 10,000
   a second in all, a new session once the server closes one.
6. **stuck_readers**: 20 signed-in websocket connections subscribed to ``system.>``,
   with a 4 KiB receive buffer, that stop reading once connected; at the end each reads
   for 2 s to learn whether the server cut it off.

For each phase: the control client's latency p50/p99, events lost, how long the
commits took and how the control connection was dropped; ``GET /health`` p50/p99 over
the probes started during the phase, whatever they got (a timeout counts as its 2 s),
and how many got an answer other than 200 or timed out; the server's peak RSS during
the phase (until the hostile process has exited) minus its RSS when the phase began,
and the CPU the server and the hostile client used. For each abuse, beside the
baseline of the same run: ``ratio_control_p99_<abuse>`` = control p99 under the abuse /
baseline control p99 (target ≤ 2), ``rss_growth_mb_<abuse>`` (target < 100), what the
hostile client saw (answers, refusals, how its connections ended) and what
``GET /health`` said meanwhile (connections, refused input, catch-ups).

How to read it: one block per phase on stdout; the last line is one JSON object with
``control_p99_ms_baseline``, ``health_p99_ms_baseline`` and, for each abuse,
``control_p99_ms_<abuse>``, ``health_p99_ms_<abuse>``, ``ratio_control_p99_<abuse>``
and ``rss_growth_mb_<abuse>`` (plus details). Medians and percentiles only: the
machine is shared, and the hostile client's process competes for it with the server.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _abuse_server import HOST, Served, served, sign_in
from _abuse_watch import Control, Prober, Producer, Server, figures
from _common import say

from azora.db.engines import Databases
from azora.gateway.history import id_floor
from azora.settings import Settings

HERE = Path(__file__).resolve().parent
HOSTILE_ADDRESS = "127.0.0.2"
HOSTILE_USERS = 5
OWN_RATE = 20.0  # the control user's events a second
PUBLIC_RATE = 50.0  # public alerts a second
PUBLIC_BYTES = 1_000  # characters in each alert's message
PREFILL = 1_000  # public alerts committed before the first phase
#: The gateway limits this benchmark changes (environment of azora serve), and why.
#: None: every phase finishes in time at the defaults. (A stuck reader is cut off once the
#: kernel's send buffer, AZORA_GATEWAY_SOCKET_SEND_BUFFER_BYTES doubled, and the send bound
#: behind it are full: after about 25 s at 60 KB/s per stuck reader here.)
LIMITS: dict[str, tuple[str, str]] = {}
#: Between phases the server is quiet again once it uses at most this much more of a core
#: than during the baseline.
QUIET_MARGIN = 0.15
QUIET_WITHIN_S = 30.0
ABUSES = (
    "catch_up_storm",
    "pattern_hoard",
    "header_flood",
    "half_sent",
    "garbage_frames",
    "stuck_readers",
)


@dataclass(frozen=True)
class Plan:
    """How long each phase lasts, and how hard each abuse pushes."""

    quick: bool
    phase_s: float
    settle_s: float  # between phases (and before the first)
    hoard_messages: int
    flood_bytes: int
    half_sent: int

    def abuse(self, name: str) -> dict[str, Any]:
        """The hostile client's figures for the abuse ``name``."""
        return {
            "catch_up_storm": {"concurrency": 100},
            "pattern_hoard": {"connections": 4, "window": 16, "messages": self.hoard_messages},
            "header_flood": {"connections": 10, "bytes": self.flood_bytes},
            "half_sent": {"connections": self.half_sent, "opens_per_s": 500},
            "garbage_frames": {"connections": 10, "rate": 10_000},
            "stuck_readers": {"connections": 20, "receive_buffer": 4_096},
        }[name]


FULL = Plan(False, 20.0, 5.0, 4_000, 100_000_000, 2_000)
QUICK = Plan(True, 6.0, 2.0, 1_000, 10_000_000, 1_000)


@dataclass
class Phase:
    """One phase's window (epoch seconds) and what the hostile client saw."""

    name: str
    began: float
    ended: float
    until: float  # the hostile process's exit: its connections are gone by then
    saw: dict[str, Any] = field(default_factory=dict)
    #: From ``until`` until the server was quiet again (see :func:`settle`).
    recovered_s: float | None = None


# -- the phases -----------------------------------------------------------------------


async def _reply(process: asyncio.subprocess.Process, seconds: float) -> dict[str, Any]:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), seconds)
    if not line:
        raise RuntimeError(f"the hostile client ended early (exit {await process.wait()})")
    answer: dict[str, Any] = json.loads(line)
    return answer


async def hostile(name: str, plan: Plan, served: Served, tokens: list[str]) -> Phase:
    """Run the abuse ``name`` for one phase; its window and what the client saw (an
    ``error`` if it failed: the phase is measured all the same)."""
    spec = {
        "abuse": name,
        "host": HOST,
        "port": served.port,
        "source": HOSTILE_ADDRESS,
        "seconds": plan.phase_s,
        "deadline": time.time() + plan.phase_s + 60,
        "tokens": tokens,
        "old_id": str(id_floor(dt.datetime(2000, 1, 1, tzinfo=dt.UTC))),
        **plan.abuse(name),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(HERE / "_abuse_clients.py"),
        json.dumps(spec),
        stdout=asyncio.subprocess.PIPE,
        limit=1 << 20,
    )
    began = time.time()
    saw: dict[str, Any] = {}
    try:
        began = (await _reply(process, 30))["started"]
        saw = await _reply(process, plan.phase_s + 45)
    except (TimeoutError, RuntimeError, ValueError, KeyError) as error:
        saw = {"error": f"{type(error).__name__}: {error}"}
    finally:
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            say(f"the hostile client ({process.pid}) did not stop; killing it")
            process.kill()
            await process.wait()
    return Phase(name, began, began + plan.phase_s, time.time(), saw)


async def settle(plan: Plan, server: Server, quiet_share: float) -> float:
    """Wait ``settle_s``, then until the server uses less than ``quiet_share`` of a core
    (at most :data:`QUIET_WITHIN_S` more); seconds waited in all."""
    await asyncio.sleep(plan.settle_s)
    return plan.settle_s + await server.quiet(quiet_share, QUIET_WITHIN_S)


async def routed(prober: Prober, count: int, within: float) -> None:
    """Wait until ``GET /health`` says the gateway routed ``count`` events (at most
    ``within`` seconds)."""
    async with asyncio.timeout(within):
        while True:
            if prober.health and prober.health[-1][1].get("events_routed", 0) >= count:
                return
            await asyncio.sleep(0.2)


async def measure(
    plan: Plan, data: Path, abuses: Sequence[str] = ABUSES
) -> list[tuple[Phase, dict[str, Any]]]:
    budget = 300 + (len(abuses) + 1) * (plan.phase_s + plan.settle_s + 90)
    limits = {name: value for name, (value, _) in LIMITS.items()}
    async with served(data, budget, limits) as server:
        say(f"azora serve (pid {server.pid}) on port {server.port}")
        async with Databases(Settings(data_dir=data, env="development")) as databases:
            users = await sign_in(databases, 1 + HOSTILE_USERS)
            (control_user, control_token), hostile_users = users[0], users[1:]
            tokens = [token for _, token in hostile_users]
            producer = Producer(
                databases,
                control_user,
                own_rate=OWN_RATE,
                public_rate=PUBLIC_RATE,
                public_bytes=PUBLIC_BYTES,
            )
            await producer.prefill(PREFILL)
            control = Control(server.socket_io, control_token)
            prober = Prober(HOST, server.port)
            watched = Server(server.pid, server.port, HOSTILE_ADDRESS)
            stop = asyncio.Event()
            watching = [
                asyncio.create_task(part.run(stop)) for part in (producer, control, prober, watched)
            ]
            phases: list[Phase] = []
            try:
                try:
                    await asyncio.wait_for(control.connected.wait(), 30)
                except TimeoutError:
                    raise RuntimeError(
                        f"the control client could not connect: {control.drops[-3:]}"
                    ) from None
                with contextlib.suppress(TimeoutError):  # measured all the same
                    await routed(prober, PREFILL, QUIET_WITHIN_S)
                await asyncio.sleep(plan.settle_s)
                say(f"baseline for {plan.phase_s:.0f} s")
                began = time.time()
                await asyncio.sleep(plan.phase_s)
                phases.append(Phase("baseline", began, began + plan.phase_s, time.time()))
                quiet = watched.during(began, time.time())["server_cpu_share"] + QUIET_MARGIN
                for name in abuses:
                    phases[-1].recovered_s = await settle(plan, watched, quiet)
                    say(f"{name} for {plan.phase_s:.0f} s")
                    phases.append(await hostile(name, plan, server, tokens))
                    say(f"{name}: the hostile client saw {phases[-1].saw}")
                phases[-1].recovered_s = await settle(plan, watched, quiet)
            finally:
                stop.set()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*watching, return_exceptions=True), 30)
            if producer.failed:
                say(f"commits that failed: {dict(Counter(why for _, why in producer.failed))}")
            say(f"public alerts committed: {producer.public_committed:,}")
            if prober.down:
                say(f"GET /health 503s said, of the databases down: {dict(prober.down)}")
            seen = (producer, control, prober, watched)
            return [(p, figures(*seen, (p.began, p.ended), p.until)) for p in phases]


# -- the report -----------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


def _versus(value: float | None, target: float, *, below: bool = False) -> str:
    if value is None:
        return "n/a"
    met = value < target if below else value <= target
    return (
        f"{value:g} ({'within' if met else 'PAST'} the target {'<' if below else '≤'} {target:g})"
    )


def report(plan: Plan, measured: list[tuple[Phase, dict[str, Any]]]) -> None:
    base = measured[0][1]
    print(
        f"baseline ({plan.phase_s:.0f} s, no abuse): control client p50"
        f" {_ms(base['control_p50_ms'])}, p99 {_ms(base['control_p99_ms'])}"
        f" ({base['control_events']} events, {base['control_lost']} lost; commit p99"
        f" {_ms(base['commit_p99_ms'])}) | GET /health p50 {_ms(base['health_p50_ms'])}, p99"
        f" {_ms(base['health_p99_ms'])} ({base['health_probes']} probes,"
        f" {base['health_non_200']} not 200, {base['health_timeouts']} timed out) | server RSS"
        f" {base['rss_start_mb']} MB (+{base['rss_growth_mb']} MB), CPU"
        f" {base['server_cpu_share']:.0%} of a core"
    )
    summary: dict[str, Any] = {
        "control_p99_ms_baseline": base["control_p99_ms"],
        "health_p99_ms_baseline": base["health_p99_ms"],
    }
    details: dict[str, Any] = {}
    for phase, got in measured[1:]:
        name = phase.name
        ratio = None
        if got["control_p99_ms"] is not None and base["control_p99_ms"]:
            ratio = round(got["control_p99_ms"] / base["control_p99_ms"], 2)
        for line in _abuse_lines(plan, phase, got, base, ratio):
            print(line)
        summary[f"control_p99_ms_{name}"] = got["control_p99_ms"]
        summary[f"health_p99_ms_{name}"] = got["health_p99_ms"]
        summary[f"ratio_control_p99_{name}"] = ratio
        summary[f"rss_growth_mb_{name}"] = got["rss_growth_mb"]
    for phase, got in measured:
        name = phase.name
        details[f"control_p50_ms_{name}"] = got["control_p50_ms"]
        details[f"health_p50_ms_{name}"] = got["health_p50_ms"]
        details[f"control_lost_{name}"] = got["control_lost"]
        details[f"health_failures_{name}"] = got["health_non_200"] + got["health_timeouts"]
        details[f"server_cpu_share_{name}"] = got["server_cpu_share"]
        if phase.saw:
            details[f"hostile_saw_{name}"] = phase.saw.get("seen", phase.saw)
    summary.update(details)
    summary["limits_set"] = {name: value for name, (value, _) in LIMITS.items()}
    summary["quick"] = plan.quick
    print(json.dumps(summary), flush=True)


def _abuse_lines(
    plan: Plan, phase: Phase, got: dict[str, Any], base: dict[str, Any], ratio: float | None
) -> list[str]:
    dropped = "; ".join(got["control_dropped"]) or "never"
    failed = got["health_non_200"] + got["health_timeouts"]
    failed_commits = f"; failed: {got['commits_failed']}" if got["commits_failed"] else ""
    cpu = phase.saw.get("cpu_s")
    hostile_cpu = f"{cpu / plan.phase_s:.0%}" if cpu is not None else "n/a"
    return [
        f"{phase.name}: control client p50 {_ms(got['control_p50_ms'])}, p99"
        f" {_ms(got['control_p99_ms'])} (baseline {_ms(base['control_p50_ms'])},"
        f" {_ms(base['control_p99_ms'])}): ratio_control_p99 {_versus(ratio, 2)}; events lost"
        f" {got['control_lost']} of {got['control_events']} committed (commit p99"
        f" {_ms(got['commit_p99_ms'])}, max {_ms(got['commit_max_ms'])}{failed_commits});"
        f" control connection dropped: {dropped}",
        f"  GET /health p50 {_ms(got['health_p50_ms'])}, p99 {_ms(got['health_p99_ms'])}"
        f" (baseline {_ms(base['health_p50_ms'])}, {_ms(base['health_p99_ms'])});"
        f" {got['health_non_200']} of {got['health_probes']} not 200,"
        f" {got['health_timeouts']} timed out" + (f" {got['health_outcomes']}" if failed else ""),
        f"  server: RSS growth {_versus(got['rss_growth_mb'], 100, below=True)} MB (from"
        f" {got['rss_start_mb']} MB), CPU {got['server_cpu_share']:.0%} of a core (baseline"
        f" {base['server_cpu_share']:.0%}), up to {got['queued_to_hostile_mb']} MB unsent toward"
        f" the hostile client in the kernel, quiet again {phase.recovered_s} s after the abuse;"
        f" GET /health said {got['server_view']}",
        f"  the hostile client (CPU {hostile_cpu} of a core) saw"
        f" {phase.saw.get('seen', phase.saw)}; did {phase.saw.get('counts', {})}",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~1-minute version")
    parser.add_argument(
        "--only",
        action="append",
        choices=ABUSES,
        metavar="ABUSE",
        help=f"run the baseline and this abuse only (repeatable; one of {', '.join(ABUSES)})",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    for name in [name for name in os.environ if name.startswith("AZORA_")]:
        del os.environ[name]  # the embedded default, here and in azora serve
    scratch = Path(tempfile.mkdtemp(prefix="azora_abuse_"))
    limits = "; ".join(f"{name}={value} ({why})" for name, (value, why) in LIMITS.items())
    print(
        f"azora serve on the embedded default (data dir in {scratch}); gateway limits:"
        f" {limits or 'the defaults, none lowered'}; phases of {plan.phase_s:.0f} s"
    )
    try:
        measured = asyncio.run(measure(plan, scratch / "data", args.only or ABUSES))
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report(plan, measured)


if __name__ == "__main__":
    main()
