"""Ledger benchmark: transfers per second against pgbench, and UBI against bare SQL.

    python benchmarks/ledger.py [--quick] [--url postgresql://user@host:5432/postgres]

What is measured, on throwaway databases (prefix ``azb_<random>``, dropped at the end and
on Ctrl-C) of the PostgreSQL server given by ``--url`` or ``AZORA_BENCH_POSTGRES_URL``:

* **Transfers**: ``MintService.transfer`` between random pairs of 1,000 wallets (made
  by bulk SQL, funded by one UBI round), each with a fresh idempotency key, by 1, 4 and
  16 concurrent clients. A client is an asyncio task; the clients run either all in one
  process or split over two processes (``spawn``), and the better layout is
  reported (it is named). Each measurement runs for a fixed time after a warm-up and
  counts the calls that completed inside the window; the figure is the median of the
  repetitions (3; 1 with ``--quick``). The p50 and p99 latency come from the per-call
  timings of the 1-client runs.
* **pgbench**: the built-in TPC-B-like script (five statements per transaction) at the
  same client counts and duration on its own ``pgbench -i -s 16`` database, with the
  simple and the prepared protocol; prepared is the reference. Each of our runs is
  followed by pgbench's run at the same client count, so that both see the same machine.
* **mint_move from C**: pgbench calling the ``mint_move`` function (what one transfer
  does in the database, arguments built in SQL) at 16 clients: the ceiling for the
  transfer's write set on this server with no Python in the loop. Reported beside the
  others, with ``mint_move_pgbench_tps_16`` added to the JSON.
* **UBI**: ``MintService.distribute_ubi`` over 1,000,000 user wallets (100,000 with
  ``--quick``) made by ``INSERT ... SELECT generate_series``, each round in a fresh
  process that reports its duration and peak RSS (``ru_maxrss``). The reference is the
  same work in bare SQL through asyncpg, in one transaction: a journal header, one
  ``UPDATE wallets``, one ``INSERT INTO ledger_entries ... SELECT``. Every round pays a
  new period; ours and bare alternate (ABBA) after a ``VACUUM`` of the wallets.

How to read it: stdout holds one line per figure beside its bare reference and the
ratio (higher is better for transfers, lower for UBI), then, last, one JSON object with
``transfer_tps_1``, ``transfer_tps_4``, ``transfer_tps_16``, ``pgbench_tps_16``,
``ratio_vs_pgbench_16``, ``ubi_wallets``, ``ubi_seconds``, ``ubi_ratio_vs_sql``,
``ubi_peak_rss_mb``, ``transfer_p50_ms`` and ``transfer_p99_ms``. The targets are a
ratio of at least 0.5 to pgbench at 16 clients, a UBI at most 1.5 times bare SQL and a
peak RSS under 200 MB. The client processes share the machine's cores with the server:
on a small machine the figures say as much about that contention as about the code.
Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from multiprocessing.pool import Pool
from typing import Any

import asyncpg
from _common import Server, say, throwaway
from sqlalchemy import text

from azora.catalog import SERVICES
from azora.db import lifecycle
from azora.db.engines import Databases
from azora.mint.service import MintService
from azora.settings import Settings
from azora.types import Currency, ServiceName

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CLIENTS = (1, 4, 16)
FUNDED_WALLETS = 1_000
FUNDING = Decimal("1000000")
TRANSFER_AMOUNT = Decimal("1")
PGBENCH_SCALE = 16
#: The round's recipients, as :mod:`azora.mint.ubi` selects them.
RECIPIENTS = "currency = 'AZR' AND kind = 'user' AND status = 'active'"


@dataclass(frozen=True)
class Plan:
    """How long and how often each figure is measured."""

    duration: float
    warmup: float
    repetitions: int
    ubi_wallets: int


FULL = Plan(duration=20.0, warmup=5.0, repetitions=3, ubi_wallets=1_000_000)
QUICK = Plan(duration=4.0, warmup=1.0, repetitions=1, ubi_wallets=100_000)


def ignore_interrupts() -> None:
    """Pool initializer: Ctrl-C is the parent's to handle (it terminates the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# -- transfers ----------------------------------------------------------------------


@dataclass(frozen=True)
class TransferJob:
    """One process's share of a transfer measurement (times are epoch seconds)."""

    settings: dict[str, Any]
    wallets: list[uuid.UUID]
    tasks: int
    start_at: float
    warmup: float
    duration: float
    key_prefix: str
    seed: int


@dataclass
class TransferOutcome:
    """What one process completed inside the measured window."""

    completed: int = 0
    latencies: list[float] = field(default_factory=list)
    retries: int = 0


async def _transfer_clients(job: TransferJob) -> TransferOutcome:
    settings = Settings(**job.settings, db_pool_size=job.tasks, db_max_overflow=0)
    outcome = TransferOutcome()
    window_start = job.start_at + job.warmup
    window_end = window_start + job.duration
    async with Databases(settings) as databases:
        mint = MintService(databases)
        engine = databases.engine(ServiceName.MINT)
        # Open the whole pool before the clock starts.
        opened = [await engine.connect() for _ in range(job.tasks)]
        for connection in opened:
            await connection.execute(text("SELECT 1"))
        for connection in opened:
            await connection.close()
        await asyncio.sleep(max(0.0, job.start_at - time.time()))

        async def client(number: int) -> None:
            rng = random.Random(job.seed * 1_000 + number)
            calls = 0
            while time.time() < window_end:
                source, target = rng.sample(job.wallets, 2)
                began = time.perf_counter()
                await mint.transfer(
                    source,
                    target,
                    Currency.AZR,
                    TRANSFER_AMOUNT,
                    f"{job.key_prefix}-{number}-{calls}",
                )
                took = time.perf_counter() - began
                calls += 1
                if window_start <= time.time() <= window_end:
                    outcome.completed += 1
                    outcome.latencies.append(took)

        await asyncio.gather(*(client(n) for n in range(job.tasks)))
        outcome.retries = mint.retries
    return outcome


def run_transfer_job(job: TransferJob) -> TransferOutcome:
    """Entry point of a client process: run ``job``'s clients to the end of the window."""
    return asyncio.run(_transfer_clients(job))


@dataclass(frozen=True)
class Layout:
    """How the clients are spread: ``processes`` processes of ``clients // processes``."""

    processes: int

    def describe(self, clients: int) -> str:
        """E.g. ``2 processes x 8 tasks``."""
        tasks = clients // self.processes
        plural = "es" if self.processes > 1 else ""
        return f"{self.processes} process{plural} x {tasks} task{'s' if tasks > 1 else ''}"


LAYOUTS = (Layout(1), Layout(2))


@dataclass
class TransferFigures:
    """Transfers per second by client count and layout (one value per repetition)."""

    tps: dict[tuple[int, Layout], list[float]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    retries: int = 0

    def median(self, clients: int, layout: Layout) -> float:
        """The median over the repetitions."""
        return statistics.median(self.tps[clients, layout])

    def best(self, clients: int) -> tuple[float, Layout]:
        """The better layout's median for ``clients``."""
        measured = [layout for layout in LAYOUTS if (clients, layout) in self.tps]
        best = max(measured, key=lambda layout: self.median(clients, layout))
        return self.median(clients, best), best


def transfer_round(
    pool: Pool,
    server: Server,
    wallets: list[uuid.UUID],
    plan: Plan,
    repetition: int,
    clients: int,
    figures: TransferFigures,
) -> None:
    """One repetition of ``clients`` concurrent clients, in every layout."""
    for layout in LAYOUTS:
        if clients % layout.processes or clients < layout.processes:
            continue
        start_at = time.time() + 1.5  # time to open every process's pool
        jobs = [
            TransferJob(
                settings=server.settings(),
                wallets=wallets,
                tasks=clients // layout.processes,
                start_at=start_at,
                warmup=plan.warmup,
                duration=plan.duration,
                key_prefix=uuid.uuid4().hex,
                seed=repetition * 100 + process,
            )
            for process in range(layout.processes)
        ]
        outcomes = pool.map(run_transfer_job, jobs)
        tps = sum(o.completed for o in outcomes) / plan.duration
        figures.tps.setdefault((clients, layout), []).append(tps)
        figures.retries += sum(o.retries for o in outcomes)
        if clients == 1:
            figures.latencies.extend(lat for o in outcomes for lat in o.latencies)
        say(
            f"transfers, {clients} client(s), {layout.describe(clients)},"
            f" run {repetition + 1}/{plan.repetitions}: {tps:.1f}/s"
        )


async def top_up_user_wallets(server: Server, wanted: int) -> int:
    """Bulk-create active AZR user wallets until there are ``wanted``; returns how many exist.

    The metrics' wallet count follows (``verify`` compares it with the wallets).
    """
    connection = await asyncpg.connect(server.dsn(server.database(ServiceName.MINT)), timeout=10)
    try:
        have = await connection.fetchval(f"SELECT count(*) FROM wallets WHERE {RECIPIENTS}")
        missing = max(0, wanted - have)
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO wallets (id, user_id, currency, kind, balance, staked, earned,"
                " status, created_at, updated_at)"
                " SELECT gen_random_uuid(), gen_random_uuid(), 'AZR', 'user', 0, 0, 0,"
                " 'active', now(), now() FROM generate_series(1, $1)",
                missing,
            )
            await connection.execute(
                "INSERT INTO economic_metrics (id, currency, total_supply, circulating_supply,"
                " staked_supply, burned_supply, wallet_count, created_at, updated_at)"
                " VALUES (gen_random_uuid(), 'AZR', 0, 0, 0, 0, $1, now(), now())"
                " ON CONFLICT (currency) DO UPDATE"
                " SET wallet_count = economic_metrics.wallet_count + excluded.wallet_count",
                missing,
            )
        await connection.execute("VACUUM ANALYZE wallets")
        return int(have + missing)
    finally:
        await connection.close()


async def fund_wallets(server: Server, count: int) -> list[uuid.UUID]:
    """``count`` user wallets (made in bulk) funded by one UBI round; their owner ids."""
    await top_up_user_wallets(server, count)
    connection = await asyncpg.connect(server.dsn(server.database(ServiceName.MINT)), timeout=10)
    try:
        rows = await connection.fetch(f"SELECT user_id FROM wallets WHERE {RECIPIENTS}")
    finally:
        await connection.close()
    async with Databases(Settings(**server.settings())) as databases:
        # One set-based round funds them all (1,000 mints would serialise on the treasury).
        funded = await MintService(databases).distribute_ubi(Currency.AZR, FUNDING, "funding")
    if funded.wallets_paid != count:
        raise RuntimeError(f"funding paid {funded.wallets_paid} wallets, not {count}")
    return [row["user_id"] for row in rows]


async def check_ledger(server: Server) -> None:
    """Fail the run when the transfers left the ledger inconsistent."""
    async with Databases(Settings(**server.settings())) as databases:
        report = await MintService(databases).verify()
    if not report.ok:
        raise RuntimeError(f"the ledger is inconsistent after the transfers: {report}")
    say(f"ledger verified: {report.transactions_checked} transactions, all consistent")


# -- pgbench ------------------------------------------------------------------------

_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.MULTILINE)


def _pgbench_env(server: Server) -> dict[str, str]:
    env = dict(os.environ)
    url = server.url
    env.update(
        {
            key: str(value)
            for key, value in (
                ("PGHOST", url.host),
                ("PGPORT", url.port),
                ("PGUSER", url.username),
                ("PGPASSWORD", url.password),
            )
            if value is not None
        }
    )
    return env


def _pgbench(server: Server, *args: str) -> str:
    command = ["pgbench", *args, server.database("pgbench")]
    done = subprocess.run(
        command, env=_pgbench_env(server), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}{done.stdout}")
    return done.stdout + done.stderr


@dataclass
class PgbenchFigures:
    """pgbench TPS by client count and protocol (one value per repetition)."""

    tps: dict[tuple[int, str], list[float]] = field(default_factory=dict)

    def median(self, clients: int, protocol: str = "prepared") -> float:
        """The median over the repetitions."""
        return statistics.median(self.tps[clients, protocol])


async def _create_database(server: Server, name: str) -> None:
    connection = await asyncpg.connect(server.dsn("postgres"), timeout=10)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def prepare_pgbench(server: Server, plan: Plan) -> None:
    """pgbench's own database, initialised and warmed up."""
    asyncio.run(_create_database(server, server.database("pgbench")))
    say(f"pgbench -i -s {PGBENCH_SCALE}")
    _pgbench(server, "-i", "-q", "-s", str(PGBENCH_SCALE))
    _pgbench(server, "-c", "16", "-j", "2", "-T", str(round(plan.warmup)), "-M", "prepared")


def _tps(output: str) -> float:
    found = _TPS.search(output)
    if found is None:
        raise RuntimeError(f"no tps line in pgbench's output:\n{output}")
    return float(found.group(1))


def pgbench_round(
    server: Server, plan: Plan, repetition: int, clients: int, figures: PgbenchFigures
) -> None:
    """One repetition of pgbench's TPC-B-like script at ``clients``, simple and prepared."""
    for protocol in ("simple", "prepared"):
        threads = str(min(2, clients))
        output = _pgbench(
            server, "-c", str(clients), "-j", threads, "-T", str(round(plan.duration)),
            "-M", protocol,
        )  # fmt: skip
        tps = _tps(output)
        figures.tps.setdefault((clients, protocol), []).append(tps)
        say(
            f"pgbench, {clients} client(s), {protocol},"
            f" run {repetition + 1}/{plan.repetitions}: {tps:.1f}/s"
        )


#: pgbench drives ``mint_move`` itself: the transfer's work in the database with no
#: Python in the loop (the arguments are built in SQL as the service builds them).
_MINT_MOVE_DRIVER = (
    "CREATE TABLE bench_owners (n integer PRIMARY KEY, user_id uuid NOT NULL)",
    "INSERT INTO bench_owners SELECT n, user_id"
    " FROM unnest($1::uuid[]) WITH ORDINALITY AS o(user_id, n)",
    """CREATE FUNCTION bench_uuid7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
    SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid()) placing
        substring(int8send((extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
        from 1 for 6), 52, 1), 53, 1), 'hex')::uuid $$""",
    """CREATE FUNCTION bench_transfer(a integer, b integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    s uuid := (SELECT user_id FROM bench_owners WHERE n = a);
    t uuid := (SELECT user_id FROM bench_owners WHERE n = b);
    tx uuid := bench_uuid7();
    stamp timestamptz := clock_timestamp();
    payload jsonb;
BEGIN
    payload := jsonb_build_object('transaction_id', tx, 'type', 'transfer', 'amount', '1',
        'currency', 'AZR', 'reference', NULL, 'from_user', s, 'to_user', t);
    PERFORM * FROM mint_move(tx, 'transfer', 'AZR', 1, s, 'user', t, 'user', false,
        gen_random_uuid()::text, bench_uuid7(), encode(sha256(tx::text::bytea), 'hex'),
        stamp + interval '1 day', NULL, NULL, stamp, ARRAY[bench_uuid7(), bench_uuid7()],
        jsonb_build_array(
            jsonb_build_object('id', bench_uuid7(), 'type', 'finance.transaction.completed',
                'source', 'mint', 'subject', s, 'payload', payload,
                'correlation_id', NULL, 'version', 1),
            jsonb_build_object('id', bench_uuid7(), 'type', 'finance.transaction.completed',
                'source', 'mint', 'subject', t, 'payload', payload,
                'correlation_id', NULL, 'version', 1))::text,
        jsonb_build_array(jsonb_build_object('id', bench_uuid7(), 'user_id', s,
            'action', 'mint.transfer', 'resource', 'transaction', 'resource_id', tx::text,
            'ip', NULL, 'user_agent', NULL,
            'metadata', jsonb_build_object('amount', '1', 'currency', 'AZR', 'to', t)))::text,
        0, 0);
END $$""",
)

_MINT_MOVE_SCRIPT = """\\set a random(1, {count})
\\set b random(1, {last})
\\set c 1 + ((:a + :b - 1) % {count})
SELECT bench_transfer(:a, :c);
"""


async def prepare_mint_move_driver(server: Server, wallets: list[uuid.UUID]) -> None:
    """The helper table and functions through which pgbench drives ``mint_move``."""
    connection = await asyncpg.connect(server.dsn(server.database(ServiceName.MINT)), timeout=10)
    try:
        create, fill, *functions = _MINT_MOVE_DRIVER
        await connection.execute(create)
        await connection.execute(fill, wallets)
        for statement in functions:
            await connection.execute(statement)
    finally:
        await connection.close()


def mint_move_round(
    server: Server, plan: Plan, repetition: int, script: str, figures: PgbenchFigures
) -> None:
    """One repetition of pgbench calling ``mint_move`` with 16 clients (no Python)."""
    command = [
        "pgbench", "-n", "-M", "prepared", "-c", "16", "-j", "2",
        "-T", str(round(plan.duration)), "-f", script, server.database(ServiceName.MINT),
    ]  # fmt: skip
    done = subprocess.run(
        command, env=_pgbench_env(server), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr}{done.stdout}")
    tps = _tps(done.stdout)
    figures.tps.setdefault((16, "mint_move"), []).append(tps)
    say(
        f"pgbench calling mint_move, 16 clients,"
        f" run {repetition + 1}/{plan.repetitions}: {tps:.1f}/s"
    )


# -- UBI ----------------------------------------------------------------------------


def _max_rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


async def _our_round(settings: dict[str, Any], period: str) -> dict[str, Any]:
    before = _max_rss_kib()
    async with Databases(Settings(**settings)) as databases:
        async with databases.engine(ServiceName.MINT).connect() as connection:
            await connection.execute(text("SELECT 1"))
        began = time.perf_counter()
        result = await MintService(databases).distribute_ubi(Currency.AZR, "1", period)
        seconds = time.perf_counter() - began
    return {
        "seconds": seconds,
        "wallets_paid": result.wallets_paid,
        "rss_before_kib": before,
        "rss_kib": _max_rss_kib(),
    }


def run_our_round(settings: dict[str, Any], period: str) -> dict[str, Any]:
    """Entry point of a fresh process: one UBI round through the service, timed."""
    return asyncio.run(_our_round(settings, period))


async def _bare_round(dsn: str, period: str) -> tuple[float, int]:
    connection = await asyncpg.connect(dsn, timeout=10)
    try:
        transaction_id = uuid.uuid4()
        began = time.perf_counter()
        async with connection.transaction():
            await connection.execute(
                "INSERT INTO transactions (id, type, amount, currency, status, reference,"
                " metadata, completed_at, created_at, updated_at)"
                " VALUES ($1, 'ubi', 1, 'AZR', 'completed', $2, '{}', now(), now(), now())",
                transaction_id,
                f"bare:{period}",
            )
            await connection.execute(f"UPDATE wallets SET balance = balance + 1 WHERE {RECIPIENTS}")
            status = await connection.execute(
                "INSERT INTO ledger_entries (id, transaction_id, wallet_id, amount,"
                " balance_after, created_at, updated_at)"
                " SELECT gen_random_uuid(), $1, id, 1, balance, now(), now()"
                f" FROM wallets WHERE {RECIPIENTS}",
                transaction_id,
            )
        return time.perf_counter() - began, int(status.split()[-1])
    finally:
        await connection.close()


async def _vacuum_wallets(server: Server) -> None:
    connection = await asyncpg.connect(server.dsn(server.database(ServiceName.MINT)), timeout=10)
    try:
        await connection.execute("VACUUM wallets")
    finally:
        await connection.close()


@dataclass
class UbiFigures:
    """UBI round durations, ours and bare, and our rounds' peak RSS."""

    wallets: int = 0
    ours: list[float] = field(default_factory=list)
    bare: list[float] = field(default_factory=list)
    rss_kib: list[int] = field(default_factory=list)
    rss_before_kib: list[int] = field(default_factory=list)


def measure_ubi(server: Server, plan: Plan) -> UbiFigures:
    """Our rounds (each in a fresh process) and bare SQL rounds, alternating ABBA."""
    context = multiprocessing.get_context("spawn")
    say(f"creating {plan.ubi_wallets:,} UBI recipients")
    figures = UbiFigures(wallets=asyncio.run(top_up_user_wallets(server, plan.ubi_wallets)))
    # The default statement timeout (30 s) is shorter than a large round on a slow machine.
    settings = server.settings(db_statement_timeout_ms=0)
    for repetition in range(plan.repetitions):
        order = ("ours", "bare") if repetition % 2 == 0 else ("bare", "ours")
        for who in order:
            period = f"{who}-{repetition}"
            asyncio.run(_vacuum_wallets(server))
            if who == "ours":
                with context.Pool(1, initializer=ignore_interrupts) as fresh:
                    result = fresh.apply(run_our_round, (settings, period))
                if result["wallets_paid"] != figures.wallets:
                    raise RuntimeError(f"our round paid {result['wallets_paid']} wallets")
                figures.ours.append(result["seconds"])
                figures.rss_kib.append(result["rss_kib"])
                figures.rss_before_kib.append(result["rss_before_kib"])
                say(f"UBI ours, run {repetition + 1}: {result['seconds']:.2f} s")
            else:
                seconds, paid = asyncio.run(
                    _bare_round(server.dsn(server.database(ServiceName.MINT)), period)
                )
                if paid != figures.wallets:
                    raise RuntimeError(f"the bare round paid {paid} wallets")
                figures.bare.append(seconds)
                say(f"UBI bare SQL, run {repetition + 1}: {seconds:.2f} s")
    return figures


# -- the run ------------------------------------------------------------------------


def report(transfers: TransferFigures, pgbench: PgbenchFigures, ubi: UbiFigures) -> None:
    """The human-readable lines, then the JSON line (last)."""
    figures: dict[str, Any] = {}
    for clients in CLIENTS:
        tps, layout = transfers.best(clients)
        reference = pgbench.median(clients)
        others = [
            f"{layout_.describe(clients)}: {transfers.median(clients, layout_):.1f}"
            for layout_ in LAYOUTS
            if layout_ != layout and (clients, layout_) in transfers.tps
        ]
        alternative = f"; {others[0]}" if others else ""
        print(
            f"transfers/s at {clients:>2} client(s): {tps:8.1f}"
            f"  [{layout.describe(clients)}{alternative}]"
            f" | pgbench tpcb-like prepared {reference:8.1f}"
            f" (simple {pgbench.median(clients, 'simple'):.1f})"
            f" | ratio {tps / reference:.2f}"
        )
        figures[f"transfer_tps_{clients}"] = round(tps, 1)
    figures["pgbench_tps_16"] = round(pgbench.median(16), 1)
    figures["ratio_vs_pgbench_16"] = round(
        figures["transfer_tps_16"] / figures["pgbench_tps_16"], 3
    )
    print(f"  (target: ratio >= 0.50 at 16 clients; retries after deadlocks: {transfers.retries})")
    server_only = pgbench.median(16, "mint_move")
    print(
        f"mint_move driven by pgbench (the transfer's database work, no Python), 16 clients:"
        f" {server_only:.1f}/s | ratio to pgbench {server_only / figures['pgbench_tps_16']:.2f}"
        f" | ours / this {figures['transfer_tps_16'] / server_only:.2f}"
    )
    figures["mint_move_pgbench_tps_16"] = round(server_only, 1)

    latencies = sorted(transfers.latencies)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    pgbench_latency = 1000 / pgbench.median(1)
    print(
        f"transfer latency at 1 client: p50 {p50:.2f} ms, p99 {p99:.2f} ms"
        f" ({len(latencies)} calls) | pgbench mean at 1 client {pgbench_latency:.2f} ms"
        f" | ratio p50 {p50 / pgbench_latency:.2f}"
    )
    figures["transfer_p50_ms"] = round(p50, 2)
    figures["transfer_p99_ms"] = round(p99, 2)

    ours, bare = statistics.median(ubi.ours), statistics.median(ubi.bare)
    print(
        f"UBI over {ubi.wallets:,} wallets: {ours:.2f} s"
        f" (runs {', '.join(f'{s:.2f}' for s in ubi.ours)})"
        f" | bare SQL {bare:.2f} s (runs {', '.join(f'{s:.2f}' for s in ubi.bare)})"
        f" | ratio {ours / bare:.2f}  (target <= 1.50)"
    )
    peak = max(ubi.rss_kib) / 1024
    print(
        f"UBI peak RSS: {peak:.1f} MB (the process after its imports:"
        f" {max(ubi.rss_before_kib) / 1024:.1f} MB)  (target < 200 MB)"
    )
    figures.update(
        {
            "ubi_wallets": ubi.wallets,
            "ubi_seconds": round(ours, 3),
            "ubi_ratio_vs_sql": round(ours / bare, 3),
            "ubi_peak_rss_mb": round(peak, 1),
        }
    )
    keys = (
        "transfer_tps_1",
        "transfer_tps_4",
        "transfer_tps_16",
        "pgbench_tps_16",
        "ratio_vs_pgbench_16",
        "ubi_wallets",
        "ubi_seconds",
        "ubi_ratio_vs_sql",
        "ubi_peak_rss_mb",
        "transfer_p50_ms",
        "transfer_p99_ms",
        "mint_move_pgbench_tps_16",
    )
    print(json.dumps({key: figures[key] for key in keys}), flush=True)


def run(server: Server, plan: Plan) -> None:
    """Set up, measure everything, report."""
    say(f"setting up {server.database(ServiceName.MINT)}")

    async def setup() -> None:
        async with Databases(Settings(**server.settings())) as databases:
            await lifecycle.setup(databases, SERVICES[ServiceName.MINT].migrations)

    asyncio.run(setup())
    say(f"funding {FUNDED_WALLETS} wallets")
    wallets = asyncio.run(fund_wallets(server, FUNDED_WALLETS))
    prepare_pgbench(server, plan)
    script = os.path.join(tempfile.mkdtemp(prefix="azb_"), "mint_move.sql")
    asyncio.run(prepare_mint_move_driver(server, wallets))
    with open(script, "w") as out:
        out.write(_MINT_MOVE_SCRIPT.format(count=len(wallets), last=len(wallets) - 1))
    transfers, pgbench = TransferFigures(), PgbenchFigures()
    # Ours and pgbench alternate client count by client count, so that both see the
    # same machine: on a shared host the load drifts over minutes.
    with multiprocessing.get_context("spawn").Pool(2, initializer=ignore_interrupts) as pool:
        for repetition in range(plan.repetitions):
            for clients in CLIENTS:
                transfer_round(pool, server, wallets, plan, repetition, clients, transfers)
                pgbench_round(server, plan, repetition, clients, pgbench)
            mint_move_round(server, plan, repetition, script, pgbench)
    asyncio.run(check_ledger(server))
    ubi = measure_ubi(server, plan)
    report(transfers, pgbench, ubi)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the arguments and run the benchmark."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a ~1-minute version")
    parser.add_argument(
        "--url",
        default=os.environ.get("AZORA_BENCH_POSTGRES_URL", DEFAULT_URL),
        help="PostgreSQL server URL (default: $AZORA_BENCH_POSTGRES_URL or %(default)s)",
    )
    args = parser.parse_args(argv)
    server = Server.fresh(args.url)
    plan = QUICK if args.quick else FULL
    try:
        with throwaway(server):
            run(server, plan)
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
