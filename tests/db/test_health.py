"""RecentHealth: the databases checked at most once per max age, one check at a time."""

from __future__ import annotations

import asyncio
import os

import asyncpg

from azora.catalog import SERVICES
from azora.db.engines import Databases
from azora.db.health import RecentHealth
from azora.types import ServiceName
from tests import databases as dbs

SOURCES = [spec.migrations for spec in SERVICES.values()]


async def test_asks_within_the_max_age_share_one_check(databases: Databases) -> None:
    health = RecentHealth(databases, SOURCES, max_age_s=60)
    together = await asyncio.gather(*(health.results() for _ in range(20)))
    first = together[0][0]
    assert all(results is first for results, _ in together)  # one check for the twenty
    assert [r.service for r in first] == [s.service for s in SOURCES]
    assert all(r.up and r.migrated for r in first)
    later, age = await health.results()
    assert later is first
    assert 0 <= age < 60


async def test_results_older_than_the_max_age_are_served_while_a_check_runs(
    databases: Databases,
) -> None:
    health = RecentHealth(databases, SOURCES, max_age_s=0.05)
    first, _ = await health.results()
    await asyncio.sleep(0.06)
    during, age = await health.results()  # not waited for: the last results, aged
    assert during is first
    assert age >= 0.05
    assert health._running is not None
    await health._running
    second, age = await health.results()
    assert second is not first
    assert age < 0.05
    assert [r.up for r in second] == [True] * len(SOURCES)


async def test_results_older_than_the_check_timeout_are_waited_for(
    databases: Databases,
) -> None:
    health = RecentHealth(databases, SOURCES, max_age_s=0.01, timeout_s=0.5)
    first, _ = await health.results()
    await asyncio.sleep(0.55)
    second, age = await health.results()
    assert second is not first
    assert age == 0.0


async def test_max_age_zero_starts_a_check_on_every_ask(databases: Databases) -> None:
    health = RecentHealth(databases, SOURCES, max_age_s=0)
    first, _ = await health.results()
    assert health._running is None
    assert (await health.results())[0] is first  # served while the check it started runs
    assert health._running is not None
    second = await health._running
    assert second is not first


async def test_an_asker_that_gives_up_does_not_cancel_the_shared_check(
    databases: Databases,
) -> None:
    health = RecentHealth(databases, SOURCES, max_age_s=60)
    impatient = asyncio.ensure_future(health.results())
    patient = asyncio.ensure_future(health.results())
    await asyncio.sleep(0)
    impatient.cancel()
    results, _ = await patient
    assert all(r.up for r in results)
    assert (await health.results())[0] is results


async def test_a_database_gone_is_reported_down_once_the_results_age(
    databases: Databases,
) -> None:
    health = RecentHealth(databases, SOURCES, max_age_s=0.01, timeout_s=0.5)
    assert all(r.up for r in (await health.results())[0])
    target = databases.target(ServiceName.NOTIFICATIONS)
    if target.backend == "sqlite":
        await databases.engine(ServiceName.NOTIFICATIONS).dispose()
        target.sqlite_path.rename(target.sqlite_path.with_suffix(".moved"))
    else:  # the database's connections refused from now on
        await databases.engine(ServiceName.NOTIFICATIONS).dispose()
        await _disallow_connections(databases, target.database)
    try:
        await asyncio.sleep(0.55)
        results, _ = await health.results()
        down = {r.service for r in results if not r.up}
        assert down == {ServiceName.NOTIFICATIONS}
    finally:
        if target.backend == "sqlite":
            target.sqlite_path.with_suffix(".moved").rename(target.sqlite_path)
        else:
            await _disallow_connections(databases, target.database, allow=True)


async def _disallow_connections(databases: Databases, name: str, *, allow: bool = False) -> None:
    admin_url = os.environ["AZORA_TEST_POSTGRES_URL"]
    connection = await asyncpg.connect(dbs._dsn(admin_url), timeout=5)
    try:
        await connection.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {allow}')
    finally:
        await connection.close()
