"""The cost of row-level security on a point lookup (part of ``benchmarks/auth.py``).

A mint database is set up and migrated by azora (so ``wallets`` carries its real
policies), filled with one wallet per user, and copied into ``wallets_plain``: the same
rows and indexes, no policies. Both are read through the application role, as the
application reads them: in a transaction acting for the wallet's owner (``set_config``
of ``azora.user_id``), ``SELECT * FROM <table> WHERE id = $1`` of that user's wallet.
Only the lookup is timed; the ``set_config`` round trip a unit of work adds per
transaction is timed on its own. Rounds alternate between the two tables, so both see
the same machine.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

import asyncpg
from _common import Server, say

from azora.catalog import SERVICES
from azora.db import lifecycle
from azora.db.engines import Databases
from azora.settings import Settings
from azora.types import ServiceName

_FILL = """
INSERT INTO wallets
    (id, user_id, currency, kind, balance, staked, earned, status, created_at, updated_at)
SELECT gen_random_uuid(), gen_random_uuid(), 'AZR', 'user', 0, 0, 0, 'active', now(), now()
FROM generate_series(1, $1)
"""


async def _prepare(server: Server, wallets: int) -> tuple[str, str]:
    settings = Settings(**server.settings())
    async with Databases(settings) as databases:
        await lifecycle.setup(databases, SERVICES[ServiceName.MINT].migrations)
    owner = await asyncpg.connect(server.dsn(server.database(ServiceName.MINT)))
    try:
        await owner.execute(_FILL, wallets)
        await owner.execute("CREATE TABLE wallets_plain (LIKE wallets INCLUDING ALL)")
        await owner.execute("INSERT INTO wallets_plain SELECT * FROM wallets")
        await owner.execute(f'GRANT SELECT ON wallets_plain TO "{settings.db_app_role}"')
        await owner.execute("ANALYZE wallets; ANALYZE wallets_plain")
    finally:
        await owner.close()
    app = server.url.set(drivername="postgresql", username=settings.db_app_role, password=None)
    return app.set(database=server.database(ServiceName.MINT)).render_as_string(
        hide_password=False
    ), settings.db_app_role


async def _round(
    connection: asyncpg.Connection, table: str, pairs: list[tuple[Any, Any]]
) -> tuple[list[float], list[float]]:
    lookup = await connection.prepare(f"SELECT * FROM {table} WHERE id = $1")
    scope = await connection.prepare("SELECT set_config('azora.user_id', $1, true)")
    lookups, scopes = [], []
    for wallet_id, user_id in pairs:
        async with connection.transaction():
            started = time.perf_counter()
            await scope.fetchval(str(user_id))
            middle = time.perf_counter()
            row = await lookup.fetchrow(wallet_id)
            ended = time.perf_counter()
            if row is None:
                raise RuntimeError(f"{table}: the owner could not read their own wallet")
        scopes.append(middle - started)
        lookups.append(ended - middle)
    return lookups, scopes


async def measure_rls(server: Server, *, quick: bool) -> dict[str, float]:
    """Point lookups on ``wallets`` with and without row-level security; figures in µs."""
    wallets = 20_000 if quick else 200_000
    rounds, per_round = (6, 1_000) if quick else (10, 3_000)
    say(f"rls: setting up a mint database with {wallets:,} wallets")
    dsn, _role = await _prepare(server, wallets)
    connection = await asyncpg.connect(dsn)
    try:
        rows = await connection.fetch("SELECT id, user_id FROM wallets_plain")
        pairs = [(r["id"], r["user_id"]) for r in rows]
        other = await connection.fetchval("SELECT count(*) FROM wallets WHERE id = $1", pairs[0][0])
        if other != 0:
            raise RuntimeError("wallets is readable without a user: row-level security is off")
        policed, plain, scopes = [], [], []
        for i in range(rounds):
            sample = random.sample(pairs, per_round)
            for table in (
                ("wallets", "wallets_plain") if i % 2 == 0 else ("wallets_plain", "wallets")
            ):
                lookups, scope_times = await _round(connection, table, sample)
                p50 = statistics.median(lookups) * 1e6
                (policed if table == "wallets" else plain).append(p50)
                scopes.append(statistics.median(scope_times) * 1e6)
            say(
                f"rls: round {i + 1}/{rounds}:"
                f" with {policed[-1]:.1f} us, without {plain[-1]:.1f} us"
            )
    finally:
        await connection.close()
    with_rls, without = statistics.median(policed), statistics.median(plain)
    set_scope = statistics.median(scopes)
    ratio = with_rls / without
    print(
        f"point lookup of one's own wallet ({wallets:,} wallets, {rounds} rounds x {per_round:,}):"
        f" with row-level security p50 {with_rls:.1f} us | same table without policies"
        f" {without:.1f} us | ratio {ratio:.3f} (target <= 1.2)"
    )
    print(
        f"  setting the user for a transaction (one set_config round trip per unit of work):"
        f" p50 {set_scope:.1f} us"
    )
    return {
        "rls_lookup_p50_us": round(with_rls, 1),
        "plain_lookup_p50_us": round(without, 1),
        "rls_overhead_ratio": round(ratio, 3),
        "set_scope_p50_us": round(set_scope, 1),
    }
