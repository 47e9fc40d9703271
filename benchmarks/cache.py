"""Cache benchmark: hit ratio under a Zipf workload, and hit/miss latency against bare calls.

    python benchmarks/cache.py [--quick] [--url postgresql://...] [--redis-url redis://...]

What is measured, on a throwaway auth database (prefix ``azb_<random>``, dropped at the
end and on Ctrl-C) of the PostgreSQL server given by ``--url`` or
``AZORA_BENCH_POSTGRES_URL``, and the Redis given by ``--redis-url`` or
``AZORA_BENCH_REDIS_URL`` (the benchmark's keys are deleted at the end):

* **Workload**: 100,000 users (made by bulk SQL), every one read once through the cache
  first (priming: the steady state of a long-running deployment, where the cache holds
  the working set; the time it takes is printed); then 64 asyncio tasks in one process
  for 60 s (20 s with ``--quick``) after a warm-up. Each call is a read
  (``get_user_with_cache`` of the facade's user service, the user drawn from a Zipf
  distribution with s = 1.1 over the 100,000) with probability 0.95, else a write
  (``rename``: one unit of work that invalidates the user's key after its commit).
  Written users are drawn uniformly: a profile edit anywhere in the user base. Reported:
  the hit ratio (hits over lookups in the window, as :class:`CacheMetrics` counts them),
  and the p50/p99 of the reads. A second, shorter phase draws the writes from the same
  Zipf as the reads (the hottest users also write the most): every such write makes the
  next read of a hot key a miss, which bounds the hit ratio near 1 - 0.05/0.95 = 94.7%;
  it is printed with that bound, as ``hit_ratio_hot_writes``.
* **With the in-process layer** (``AZORA_CACHE_LOCAL_MAX_ENTRIES=10000``, off by
  default): the uniform-writes workload again (as long as the hot-writes phase) on a
  second cache object with the layer, and the p50 of a hit it answers; printed as
  ``local_*`` figures.
* **Hit**: one task reads one cached user again and again through
  ``get_user_with_cache`` (GET, decode, pydantic validation), in rounds that alternate
  with a bare redis-py ``GET`` of the same key and bytes. p50 of each, and the ratio.
* **Miss**: the same user's key is invalidated before each read (untimed), so each read
  misses, takes the lease, loads the row through SQLAlchemy and fills the entry;
  alternating with a bare asyncpg primary-key ``SELECT`` of the same row (a prepared
  statement on one connection). p50 of each, and the ratio.

The last line is one JSON object with ``hit_ratio``, ``hit_p50_us``, ``redis_get_p50_us``,
``ratio_hit_vs_get``, ``miss_p50_us``, ``asyncpg_pk_p50_us``, ``ratio_miss_vs_asyncpg``,
``get_user_p99_ms`` (and ``get_user_p50_ms``, ``hit_ratio_hot_writes``, ``ops_per_s``).
Targets: hit ratio >= 95%, hit <= 1.5x the bare GET, miss <= 2x the bare SELECT. The
client, PostgreSQL and Redis share this machine's cores. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import itertools
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from _common import Server, percentile, say, throwaway

from azora.auth.passwords import hash_password
from azora.auth.users import UserService, user_key
from azora.cache import Cache, open_cache
from azora.catalog import SERVICES
from azora.db import lifecycle
from azora.db.engines import Databases
from azora.settings import Settings
from azora.types import ServiceName

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
USERS = 100_000
TASKS = 64
WRITE_SHARE = 0.05
ZIPF_S = 1.1


@dataclass(frozen=True)
class Plan:
    """How long each part runs."""

    duration: float
    hot_writes_duration: float
    warmup: float
    latency_rounds: int
    hits_per_round: int
    misses_per_round: int


FULL = Plan(60.0, 20.0, 5.0, 10, 2_000, 300)
QUICK = Plan(20.0, 8.0, 3.0, 4, 1_000, 150)


# -- where things live ------------------------------------------------------------------


def cache_settings(server: Server, redis_url: str, **overrides: Any) -> Settings:
    """Settings for this run's databases with the cache on ``redis_url``."""
    return Settings(**server.settings(cache_url=redis_url, **overrides))


async def delete_keys(redis_url: str, user_ids: Sequence[uuid.UUID]) -> int:
    """Delete the cache entries (and leases) of this run's users."""
    client = aioredis.Redis.from_url(redis_url)
    deleted = 0
    try:
        for start in range(0, len(user_ids), 5_000):
            keys = [str(user_key(u)) for u in user_ids[start : start + 5_000]]
            deleted += int(await client.delete(*keys, *(k + ":lease" for k in keys)))
    finally:
        await client.aclose()
    return deleted


async def make_users(server: Server, count: int) -> list[uuid.UUID]:
    """``count`` users made by one ``INSERT ... SELECT`` (one shared password hash)."""
    async with Databases(Settings(**server.settings())) as databases:
        await lifecycle.setup(databases, SERVICES[ServiceName.AUTH].migrations)
    connection = await asyncpg.connect(server.dsn(server.database(ServiceName.AUTH)))
    try:
        await connection.execute(
            """
            INSERT INTO users (id, email, password_hash, name, role, is_email_verified,
                               is_active, failed_login_count, created_at, updated_at)
            SELECT gen_random_uuid(), 'user' || g || '@bench.azora.test', $1, 'User ' || g,
                   'student', true, true, 0, now(), now()
            FROM generate_series(1, $2) AS g
            """,
            hash_password("benchmark-only password"),
            count,
        )
        await connection.execute("ANALYZE users")
        rows = await connection.fetch("SELECT id FROM users")
    finally:
        await connection.close()
    ids = [row["id"] for row in rows]
    random.Random(7).shuffle(ids)  # rank -> user: no relation to insertion order
    return ids


# -- the Zipf workload ------------------------------------------------------------------


class Zipf:
    """Ranks 0..n-1 drawn with probability proportional to 1 / (rank + 1) ** s."""

    def __init__(self, n: int, s: float, seed: int) -> None:
        weights = [1 / (rank + 1) ** s for rank in range(n)]
        total = sum(weights)
        self._cdf = list(itertools.accumulate(w / total for w in weights))
        self._random = random.Random(seed)

    def draw(self) -> int:
        """One rank."""
        return min(bisect.bisect_left(self._cdf, self._random.random()), len(self._cdf) - 1)


@dataclass
class WorkloadFigures:
    """What one workload phase measured inside its window."""

    hit_ratio: float
    reads: int
    writes: int
    seconds: float
    read_latencies: list[float] = field(repr=False)

    @property
    def ops_per_s(self) -> float:
        """Completed calls per second in the window."""
        return (self.reads + self.writes) / self.seconds


async def prime(users: UserService, ids: list[uuid.UUID]) -> float:
    """Read every user once through the cache (64 tasks); the seconds it took."""
    queue = iter(ids)
    started = time.perf_counter()

    async def client() -> None:
        for user_id in queue:
            await users.get_user_cached(user_id)

    await asyncio.gather(*(client() for _ in range(TASKS)))
    return time.perf_counter() - started


async def workload(
    users: UserService,
    cache: Cache,
    ids: list[uuid.UUID],
    *,
    duration: float,
    warmup: float,
    hot_writes: bool,
) -> WorkloadFigures:
    """64 tasks of Zipf reads and 5% writes; figures from the window after the warm-up."""
    zipf = Zipf(len(ids), ZIPF_S, seed=11)
    chooser = random.Random(13)
    started = time.perf_counter()
    window_start, window_end = started + warmup, started + warmup + duration
    latencies: list[float] = []
    counts = {"reads": 0, "writes": 0}
    snapshot: dict[str, int] = {}

    async def client() -> None:
        while (now := time.perf_counter()) < window_end:
            if chooser.random() < WRITE_SHARE:
                rank = zipf.draw() if hot_writes else chooser.randrange(len(ids))
                await users.rename(ids[rank], f"User {chooser.randrange(10**9)}")
                if now >= window_start:
                    counts["writes"] += 1
                continue
            user_id = ids[zipf.draw()]
            began = time.perf_counter()
            await users.get_user_cached(user_id)
            if began >= window_start:
                latencies.append(time.perf_counter() - began)
                counts["reads"] += 1

    async def mark_window() -> None:
        await asyncio.sleep(max(0.0, window_start - time.perf_counter()))
        snapshot.update(hits=cache.metrics.hits, misses=cache.metrics.misses)

    await asyncio.gather(mark_window(), *(client() for _ in range(TASKS)))
    hits = cache.metrics.hits - snapshot["hits"]
    misses = cache.metrics.misses - snapshot["misses"]
    return WorkloadFigures(
        hit_ratio=hits / max(1, hits + misses),
        reads=counts["reads"],
        writes=counts["writes"],
        seconds=duration,
        read_latencies=latencies,
    )


# -- hit and miss latency ---------------------------------------------------------------


@dataclass
class LatencyFigures:
    """Per-call timings (seconds) of ours and the bare reference, all rounds together."""

    hit: list[float] = field(default_factory=list)
    local_hit: list[float] = field(default_factory=list)
    redis_get: list[float] = field(default_factory=list)
    miss: list[float] = field(default_factory=list)
    asyncpg_pk: list[float] = field(default_factory=list)


async def latencies(
    server: Server,
    redis_url: str,
    users: UserService,
    cache: Cache,
    user_id: uuid.UUID,
    plan: Plan,
) -> LatencyFigures:
    """Alternating rounds: cached hit vs bare GET, then miss vs bare primary-key SELECT."""
    figures = LatencyFigures()
    key = user_key(user_id)
    raw = aioredis.Redis.from_url(redis_url)
    connection = await asyncpg.connect(server.dsn(server.database(ServiceName.AUTH)))
    select = await connection.prepare(
        "SELECT id, email, name, role, is_email_verified, is_active, created_at"
        " FROM users WHERE id = $1 AND deleted_at IS NULL"
    )
    clock = time.perf_counter
    try:
        await users.get_user_cached(user_id)  # cached from here on
        assert await raw.get(str(key)) is not None
        for round_ in range(plan.latency_rounds):
            for _ in range(plan.hits_per_round):
                began = clock()
                await users.get_user_cached(user_id)
                figures.hit.append(clock() - began)
            for _ in range(plan.hits_per_round):
                began = clock()
                await raw.get(str(key))
                figures.redis_get.append(clock() - began)
            for _ in range(plan.misses_per_round):
                await cache.invalidate(key)
                began = clock()
                await users.get_user_cached(user_id)
                figures.miss.append(clock() - began)
            for _ in range(plan.misses_per_round):
                began = clock()
                await select.fetchrow(user_id)
                figures.asyncpg_pk.append(clock() - began)
            say(f"latency round {round_ + 1}/{plan.latency_rounds} done")
    finally:
        await raw.aclose()
        await connection.close()
    return figures


# -- report -----------------------------------------------------------------------------


async def local_hits(users: UserService, user_id: uuid.UUID, count: int) -> list[float]:
    """Per-call timings of hits the in-process layer answers."""
    await users.get_user_cached(user_id)
    timings = []
    for _ in range(count):
        began = time.perf_counter()
        await users.get_user_cached(user_id)
        timings.append(time.perf_counter() - began)
    return timings


def report(
    primed: float,
    main: WorkloadFigures,
    hot: WorkloadFigures,
    local: WorkloadFigures,
    timings: LatencyFigures,
) -> None:
    """The human-readable lines, then the JSON line (last)."""
    print(f"primed {USERS:,} users through the cache in {primed:.1f} s ({USERS / primed:,.0f}/s)")
    p50_ms = statistics.median(main.read_latencies) * 1000
    p99_ms = percentile(main.read_latencies, 0.99) * 1000
    print(
        f"Zipf s={ZIPF_S} over {USERS:,} users, {TASKS} tasks, {WRITE_SHARE:.0%} writes"
        f" (uniform), {main.seconds:.0f} s: hit ratio {main.hit_ratio:.2%} (target >= 95%)"
        f" | {main.reads:,} reads, {main.writes:,} writes, {main.ops_per_s:,.0f} calls/s"
        f" | get_user_with_cache p50 {p50_ms:.2f} ms, p99 {p99_ms:.2f} ms"
    )
    bound = 1 - WRITE_SHARE / (1 - WRITE_SHARE)
    print(
        f"  writes drawn from the same Zipf ({hot.seconds:.0f} s): hit ratio"
        f" {hot.hit_ratio:.2%} (bound with invalidate-on-write about {bound:.1%})"
    )
    local_p99 = percentile(local.read_latencies, 0.99) * 1000
    local_hit = statistics.median(timings.local_hit) * 1e6
    print(
        f"  with the in-process layer ({local.seconds:.0f} s): hit ratio {local.hit_ratio:.2%}"
        f" | {local.ops_per_s:,.0f} calls/s | p50"
        f" {statistics.median(local.read_latencies) * 1000:.2f} ms, p99 {local_p99:.2f} ms"
        f" | a hit it answers: p50 {local_hit:.1f} us"
    )
    hit, get = statistics.median(timings.hit) * 1e6, statistics.median(timings.redis_get) * 1e6
    print(
        f"cached hit p50 {hit:.1f} us | bare redis-py GET of the same key {get:.1f} us"
        f" | ratio {hit / get:.2f} (target <= 1.5)  ({len(timings.hit):,} calls each)"
    )
    miss = statistics.median(timings.miss) * 1e6
    select = statistics.median(timings.asyncpg_pk) * 1e6
    print(
        f"miss p50 {miss:.1f} us | bare asyncpg primary-key SELECT {select:.1f} us"
        f" | ratio {miss / select:.2f} (target <= 2.0)  ({len(timings.miss):,} calls each)"
    )
    figures = {
        "hit_ratio": round(main.hit_ratio, 4),
        "hit_p50_us": round(hit, 1),
        "redis_get_p50_us": round(get, 1),
        "ratio_hit_vs_get": round(hit / get, 3),
        "miss_p50_us": round(miss, 1),
        "asyncpg_pk_p50_us": round(select, 1),
        "ratio_miss_vs_asyncpg": round(miss / select, 3),
        "get_user_p99_ms": round(p99_ms, 3),
        "get_user_p50_ms": round(p50_ms, 3),
        "hit_ratio_hot_writes": round(hot.hit_ratio, 4),
        "ops_per_s": round(main.ops_per_s, 1),
        "local_hit_ratio": round(local.hit_ratio, 4),
        "local_get_user_p99_ms": round(local_p99, 3),
        "local_hit_p50_us": round(local_hit, 1),
        "local_ops_per_s": round(local.ops_per_s, 1),
    }
    print(json.dumps(figures), flush=True)


async def measure(server: Server, redis_url: str, plan: Plan, ids: list[uuid.UUID]) -> None:
    """Run every part against the facade's user service and report."""
    settings = cache_settings(server, redis_url)
    cache = open_cache(settings)
    try:
        async with Databases(settings) as databases:
            users = UserService(databases, cache=cache)
            say(f"priming {len(ids):,} entries")
            primed = await prime(users, ids)
            say(f"workload: {plan.warmup:.0f} s warm-up + {plan.duration:.0f} s")
            main = await workload(
                users, cache, ids, duration=plan.duration, warmup=plan.warmup, hot_writes=False
            )
            say(f"hot writes: {plan.hot_writes_duration:.0f} s")
            hot = await workload(
                users, cache, ids, duration=plan.hot_writes_duration, warmup=1.0, hot_writes=True
            )
            timings = await latencies(server, redis_url, users, cache, ids[0], plan)
            layered = open_cache(cache_settings(server, redis_url, cache_local_max_entries=10_000))
            try:
                with_local = UserService(databases, cache=layered)
                say(f"with the in-process layer: {plan.hot_writes_duration:.0f} s")
                local = await workload(
                    with_local,
                    layered,
                    ids,
                    duration=plan.hot_writes_duration,
                    warmup=1.0,
                    hot_writes=False,
                )
                timings.local_hit = await local_hits(
                    with_local, ids[0], plan.latency_rounds * plan.hits_per_round
                )
            finally:
                await layered.aclose()
    finally:
        await cache.aclose()
    report(primed, main, hot, local, timings)


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
        "--redis-url",
        default=os.environ.get("AZORA_BENCH_REDIS_URL", DEFAULT_REDIS_URL),
        help="Redis URL (default: $AZORA_BENCH_REDIS_URL or %(default)s)",
    )
    args = parser.parse_args(argv)
    server = Server.fresh(args.url)
    plan = QUICK if args.quick else FULL
    ids: list[uuid.UUID] = []
    try:
        with throwaway(server):
            try:
                say(f"making {USERS:,} users in {server.database(ServiceName.AUTH)}")
                ids.extend(asyncio.run(make_users(server, USERS)))
                asyncio.run(measure(server, args.redis_url, plan, ids))
            finally:
                if ids:
                    say(f"deleted {asyncio.run(delete_keys(args.redis_url, ids))} cache keys")
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
