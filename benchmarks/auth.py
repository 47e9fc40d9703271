"""Auth benchmark: Argon2id hash time, and the cost of checking an access token.

* **Argon2id** (``argon2_ms``): the median time of one password hash with the
  production parameters (``azora.auth.passwords.PRODUCTION_PARAMETERS``: t=3, m=64 MiB,
  p=4) through ``Passwords.hash`` (which runs it in a worker thread), in rounds that
  alternate with a bare argon2-cffi ``PasswordHasher().hash`` (whose defaults are the
  same RFC 9106 profile). Target 50-250 ms on this machine.
* **Access-token check** (``token_verify_p50_ms`` / ``token_verify_p99_ms``): one
  ``AuthService.verify_access_token`` with its session's state already cached (JWT
  HS256 verification, key lookup by ``kid``, the cached revocation check, the
  principal), in rounds that alternate with a bare PyJWT ``jwt.decode`` of the same
  token. Measured with each cache the product can run: the in-process cache
  (``AZORA_CACHE_URL=memory://``, the default and the headline), Redis, and Redis with
  the in-process layer in front (``AZORA_CACHE_LOCAL_MAX_ENTRIES``). Target p99 < 1 ms,
  no database on the path.
* **Row-level security** (``rls_overhead_ratio``): a point lookup of one's own wallet
  with the policies of ``wallets`` against the same rows in a copy without policies,
  both through the application role (``benchmarks/_rls.py``). Target <= 1.2.

The auth database is a throwaway PostgreSQL database of this run (dropped at the end).
Progress goes to stderr; the last line is one JSON object with ``argon2_ms``,
``token_verify_p50_ms``, ``token_verify_p99_ms`` and the reference figures. More
sections (each an async function returning figures) can be appended to ``SECTIONS``;
their figures are merged into the same JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jwt
import redis.asyncio as aioredis
from _common import Server, percentile, say, throwaway
from _rls import measure_rls
from argon2 import PasswordHasher

from azora.auth.access import ALGORITHM
from azora.auth.config import AuthConfig
from azora.auth.passwords import PRODUCTION_PARAMETERS, Argon2Parameters, Passwords
from azora.auth.service import AuthService
from azora.cache import Cache, LocalLayer
from azora.cache.backends import MemoryBackend, RedisBackend
from azora.catalog import SERVICES
from azora.db import lifecycle
from azora.db.engines import Databases
from azora.settings import Settings
from azora.types import ServiceName

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "benchmark-only passphrase"


@dataclass(frozen=True)
class Plan:
    """How much each part measures."""

    quick: bool
    hash_rounds: int
    hashes_per_round: int
    verify_rounds: int
    verifies_per_round: int


FULL = Plan(False, 10, 10, 10, 50_000)
QUICK = Plan(True, 6, 5, 5, 10_000)


@dataclass(frozen=True)
class Run:
    """What every section gets: the server and prefix of this run, Redis, the plan."""

    server: Server
    redis_url: str | None
    plan: Plan


Section = Callable[[Run], Awaitable[dict[str, Any]]]


# -- Argon2id ---------------------------------------------------------------------------


async def argon2_section(run: Run) -> dict[str, Any]:
    """Median hash time with the production parameters vs bare argon2-cffi."""
    ours, bare = Passwords(), PasswordHasher()
    same = (bare.time_cost, bare.memory_cost, bare.parallelism) == (
        PRODUCTION_PARAMETERS.time_cost,
        PRODUCTION_PARAMETERS.memory_cost_kib,
        PRODUCTION_PARAMETERS.parallelism,
    )
    await ours.hash(PASSWORD)  # warm up (thread pool, first allocation)
    bare.hash(PASSWORD)
    timed_ours, timed_bare = [], []
    for round_ in range(run.plan.hash_rounds):
        for _ in range(run.plan.hashes_per_round):
            began = time.perf_counter()
            await ours.hash(PASSWORD)
            timed_ours.append(time.perf_counter() - began)
        for _ in range(run.plan.hashes_per_round):
            began = time.perf_counter()
            bare.hash(PASSWORD)
            timed_bare.append(time.perf_counter() - began)
        say(f"argon2: round {round_ + 1}/{run.plan.hash_rounds} done")
    ours_ms = statistics.median(timed_ours) * 1000
    bare_ms = statistics.median(timed_bare) * 1000
    p = PRODUCTION_PARAMETERS
    print(
        f"Argon2id (t={p.time_cost}, m={p.memory_cost_kib // 1024} MiB, p={p.parallelism}):"
        f" Passwords.hash p50 {ours_ms:.1f} ms (target 50-250 ms) | bare"
        f" PasswordHasher().hash {bare_ms:.1f} ms{'' if same else ' (other parameters!)'}"
        f" | ratio {ours_ms / bare_ms:.3f}  ({len(timed_ours)} hashes each)"
    )
    return {
        "argon2_ms": round(ours_ms, 1),
        "argon2_bare_ms": round(bare_ms, 1),
        "argon2_ratio": round(ours_ms / bare_ms, 3),
    }


# -- access-token check -----------------------------------------------------------------


@dataclass
class VerifyTimings:
    """Per-call seconds of ``verify_access_token`` and of a bare ``jwt.decode``."""

    ours: list[float]
    bare: list[float]

    def figures(self) -> tuple[float, float, float, float]:
        """(our p50, our p99, bare p50, bare p99) in milliseconds."""
        return (
            statistics.median(self.ours) * 1000,
            percentile(self.ours, 0.99) * 1000,
            statistics.median(self.bare) * 1000,
            percentile(self.bare, 0.99) * 1000,
        )


async def _verify_rounds(auth: AuthService, email: str, plan: Plan, label: str) -> VerifyTimings:
    secret = auth.config.jwt_secret.encode()
    issuer = auth.config.issuer
    signed = await auth.login(email, PASSWORD, "192.0.2.1", "benchmark")
    timings = VerifyTimings([], [])
    clock = time.perf_counter
    for round_ in range(plan.verify_rounds):
        # A fresh token per round, so a long run never outlives the 15-minute token.
        signed = await auth.refresh(signed.refresh_token)
        token = signed.access_token
        await auth.verify_access_token(token)  # the session's state is cached from here
        for _ in range(plan.verifies_per_round):
            began = clock()
            await auth.verify_access_token(token)
            timings.ours.append(clock() - began)
        for _ in range(plan.verifies_per_round):
            began = clock()
            jwt.decode(token, secret, algorithms=[ALGORITHM], audience=issuer, issuer=issuer)
            timings.bare.append(clock() - began)
        say(f"verify ({label}): round {round_ + 1}/{plan.verify_rounds} done")
    return timings


async def _redis_cache(url: str, *, local: bool) -> Cache:
    layer = LocalLayer(url, max_entries=10_000, ttl_ms=2_000) if local else None
    cache = Cache(RedisBackend(url, timeout_ms=100), timeout_ms=100, local=layer)
    await cache.start()
    return cache


async def _redis_reachable(url: str | None) -> bool:
    if url is None:
        return False
    client = aioredis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(await client.ping())
    except Exception:
        return False
    finally:
        await client.aclose()


async def token_section(run: Run) -> dict[str, Any]:
    """``verify_access_token`` with a hot cache, on each kind of cache, vs bare decode."""
    settings = Settings(**run.server.settings())
    say(f"verify: setting up {run.server.database(ServiceName.AUTH)}")
    async with Databases(settings) as databases:
        await lifecycle.setup(databases, SERVICES[ServiceName.AUTH].migrations)
        # Sign-in hashes are not what this part measures: OWASP's cheapest setting.
        cheap = Passwords(Argon2Parameters(time_cost=2, memory_cost_kib=19_456, parallelism=1))
        config = AuthConfig.from_settings(settings)
        caches: list[tuple[str, Cache]] = [("in-process", Cache(MemoryBackend()))]
        if await _redis_reachable(run.redis_url):
            assert run.redis_url is not None
            caches.append(("redis", await _redis_cache(run.redis_url, local=False)))
            caches.append(("redis+local", await _redis_cache(run.redis_url, local=True)))
        else:
            say(f"verify: Redis at {run.redis_url} unreachable, measuring the in-process cache")
        results: dict[str, VerifyTimings] = {}
        users: list[uuid.UUID] = []
        try:
            for label, cache in caches:
                auth = AuthService(databases, cache=cache, config=config, passwords=cheap)
                email = f"bench-{uuid.uuid4().hex[:10]}@example.org"
                users.append((await auth.register(email, PASSWORD, "Bench Mark")).user.id)
                results[label] = await _verify_rounds(auth, email, run.plan, label)
        finally:
            if run.redis_url is not None and len(caches) > 1:
                await _forget_sessions(run.redis_url, users)
            for _, cache in caches:
                await cache.aclose()
    return _report_tokens(results)


async def _forget_sessions(url: str, users: list[uuid.UUID]) -> None:
    client = aioredis.Redis.from_url(url)
    try:
        for user_id in users:
            keys = [k async for k in client.scan_iter(f"azora:auth.*:user:{user_id}:*")]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()


def _report_tokens(results: dict[str, VerifyTimings]) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for label, timings in results.items():
        p50, p99, bare50, bare99 = timings.figures()
        print(
            f"verify_access_token, cache hot ({label}): p50 {p50 * 1000:.1f} us, p99"
            f" {p99 * 1000:.1f} us (target p99 < 1000 us) | bare jwt.decode p50"
            f" {bare50 * 1000:.1f} us, p99 {bare99 * 1000:.1f} us | p50 ratio"
            f" {p50 / bare50:.2f}  ({len(timings.ours):,} calls each)"
        )
        key = {"in-process": "", "redis": "_redis", "redis+local": "_redis_local"}[label]
        figures[f"token_verify{key}_p50_ms"] = round(p50, 4)
        figures[f"token_verify{key}_p99_ms"] = round(p99, 4)
        if not key:
            figures["jwt_decode_p50_ms"] = round(bare50, 4)
            figures["jwt_decode_p99_ms"] = round(bare99, 4)
            figures["token_verify_ratio"] = round(p50 / bare50, 3)
    print(
        "  headline: the in-process cache, AZORA_CACHE_URL's default (memory://) and what"
        " a Redis deployment gets for hot sessions with AZORA_CACHE_LOCAL_MAX_ENTRIES > 0;"
        " plain Redis adds one round trip per check"
    )
    return figures


async def rls_section(run: Run) -> dict[str, Any]:
    """Row-level security's cost on a point lookup (see ``benchmarks/_rls.py``)."""
    return await measure_rls(run.server, quick=run.plan.quick)


#: The parts of this benchmark, in order; each returns figures for the JSON line.
SECTIONS: list[Section] = [argon2_section, token_section, rls_section]


async def measure(run: Run) -> dict[str, Any]:
    """Run every section and merge their figures."""
    figures: dict[str, Any] = {}
    for section in SECTIONS:
        figures.update(await section(run))
    return figures


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
        help="Redis URL (default: $AZORA_BENCH_REDIS_URL or %(default)s; skipped if down)",
    )
    args = parser.parse_args(argv)
    server = Server.fresh(args.url)
    run = Run(server, args.redis_url, QUICK if args.quick else FULL)
    try:
        with throwaway(server):
            figures = asyncio.run(measure(run))
    except KeyboardInterrupt:
        say("interrupted")
        sys.exit(130)
    print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
