"""Database health: reachable, how fast, at which revision, and intact — per service database.

The CLI's ``azora db health`` and the HTTP API's health endpoint both call
:func:`check_databases`. The integrity check is the cheap one each backend has: SQLite's
``PRAGMA quick_check`` (reads every page, without cross-checking the indexes), and on
PostgreSQL the count of data checksum failures the server has seen in the database
(when the cluster has data checksums; without them PostgreSQL cannot tell cheaply).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from azora.db.admin import database_exists, explain
from azora.db.engines import Databases, app_target, reading
from azora.db.errors import DatabaseAuthFailed, DatabaseMissing, damaged, explain_damage
from azora.db.migrate import MigrationSource, current_revision, head_revision
from azora.db.urls import DatabaseTarget
from azora.errors import AzoraError
from azora.types import ServiceName


@dataclass(frozen=True)
class DatabaseHealth:
    """The health of one service database at one moment."""

    service: ServiceName
    backend: str
    location: str
    up: bool
    latency_ms: float | None
    revision: str | None
    head: str | None
    error: str | None = None
    #: The integrity check's verdict (``ok``, ``damaged``, or why it was not checked);
    #: ``None`` when the database could not be reached.
    integrity: str | None = None

    @property
    def migrated(self) -> bool:
        """True when the database is reachable and at the head revision."""
        return self.up and self.revision == self.head


async def _round_trip_ms(connection: AsyncConnection, samples: int = 3) -> float:
    best = float("inf")
    for _ in range(samples):
        started = time.perf_counter()
        await connection.execute(text("SELECT 1"))
        best = min(best, (time.perf_counter() - started) * 1000)
    return best


async def _integrity(connection: AsyncConnection) -> tuple[str, str | None]:
    """The verdict of the cheap integrity check, and what is wrong when damaged."""
    if connection.dialect.name == "sqlite":
        rows = [str(r[0]) for r in await connection.exec_driver_sql("PRAGMA quick_check(3)")]
        if rows == ["ok"]:
            return "ok", None
        return "damaged", "PRAGMA quick_check: " + "; ".join(rows)
    checksums, failures = (
        await connection.execute(
            text(
                "SELECT current_setting('data_checksums'), checksum_failures"
                " FROM pg_stat_database WHERE datname = current_database()"
            )
        )
    ).one()
    if checksums != "on":
        return "not checked (no data checksums)", None
    if failures:
        return "damaged", f"{failures} data checksum failures (see the server log)"
    return "ok (data checksums)", None


async def _why_down(databases: Databases, target: DatabaseTarget, exc: BaseException) -> str:
    """Why the application could not use ``target``, for the table."""
    if target.backend == "sqlite":
        return str(explain(exc, target))
    # The probe logged in as the application role: name it, not the owner's URL.
    error = explain(exc, app_target(target, databases.settings))
    if not isinstance(error, DatabaseAuthFailed | DatabaseMissing):
        return str(error)
    try:
        exists = await database_exists(target, databases.settings)
    except AzoraError:
        return str(error)  # the owner cannot tell either
    if not exists:
        return str(
            DatabaseMissing(
                f"the {target.service} database at {target.display} does not exist yet",
                hint="run `azora db setup` to create it",
            )
        )
    if isinstance(error, DatabaseAuthFailed):
        role = databases.settings.db_app_role
        return str(
            DatabaseAuthFailed(
                error.message,
                hint=f"run `azora db setup` (it creates the role {role!r} and grants it the"
                " database); set AZORA_DB_APP_PASSWORD if the server asks for a password",
            )
        )
    return str(error)


async def check_database(
    databases: Databases,
    source: MigrationSource,
    *,
    timeout_s: float = 5.0,
    integrity: bool = True,
    integrity_timeout_s: float = 30.0,
) -> DatabaseHealth:
    """Probe one database; never raises for an unhealthy database.

    ``latency_ms`` is the fastest of three ``SELECT 1`` round trips on an open
    connection (the fastest, so concurrent checks do not inflate each other). A damaged
    database (failed integrity check, or a file that is not a database) is reported
    down, with the recovery in its error. An integrity check slower than
    ``integrity_timeout_s`` is reported as not finished, and the database stays up.
    ``integrity=False`` skips the check (a frequent probe: SQLite's reads every page).
    """
    target = databases.target(source.service)
    head = head_revision(source)

    def down(error: str, integrity: str | None = None) -> DatabaseHealth:
        return DatabaseHealth(
            source.service, target.backend, target.short, False, None, None, head, error, integrity
        )

    def up(latency_ms: float, revision: str | None, integrity: str) -> DatabaseHealth:
        return DatabaseHealth(
            source.service,
            target.backend,
            target.short,
            True,
            latency_ms,
            revision,
            head,
            integrity=integrity,
        )

    if target.backend == "sqlite" and not target.sqlite_path.exists():
        return down("not created yet: run `azora db setup`")
    engine = databases.engine(source.service)
    try:
        async with asyncio.timeout(timeout_s):
            async with reading(engine).connect() as connection:
                latency_ms = await _round_trip_ms(connection)
            revision = await current_revision(engine)
    except TimeoutError:
        return down(f"no answer within {timeout_s:g} s")
    except Exception as exc:  # any failure here is the answer, reported not raised
        return down(await _why_down(databases, target, exc), _damaged_or_none(exc, target))
    if not integrity:
        return up(latency_ms, revision, "not checked")
    try:
        async with asyncio.timeout(integrity_timeout_s), reading(engine).connect() as connection:
            verdict, problem = await _integrity(connection)
    except TimeoutError:
        verdict, problem = f"not finished within {integrity_timeout_s:g} s", None
    except Exception as exc:  # a check that fails on a damaged page is a verdict too
        return down(str(explain(exc, target)), _damaged_or_none(exc, target))
    if problem is not None:
        what = f"the {source.service} database at {target.display} is damaged ({problem})"
        return down(str(damaged(source.service, what)), verdict)
    return up(latency_ms, revision, verdict)


def _damaged_or_none(exc: BaseException, target: DatabaseTarget) -> str | None:
    found = explain_damage(exc, service=target.service, where=target.display)
    return "damaged" if found is not None else None


async def check_databases(
    databases: Databases,
    sources: Sequence[MigrationSource],
    *,
    timeout_s: float = 5.0,
    integrity: bool = True,
) -> list[DatabaseHealth]:
    """Probe the given databases concurrently (see :func:`check_database`); results keep
    the order of ``sources``."""
    return list(
        await asyncio.gather(
            *(
                check_database(databases, s, timeout_s=timeout_s, integrity=integrity)
                for s in sources
            )
        )
    )


@dataclass
class RecentHealth:
    """The databases' health as a frequent probe should see it: checked at most once per
    ``max_age_s`` (0: on every ask), one check at a time, never waited for while recent
    results exist.

    ``GET /health`` probes every database (about 6 ms of CPU each on SQLite); asked ten
    times a second, or by anyone who can reach the port, that alone would take half a
    core. Here an ask within ``max_age_s`` of the last check gets its results; a later
    one starts a check in the background and still gets the last results while they are
    younger than ``timeout_s`` (a check reports a database that does not answer within
    it as down, so older results are never needed), their age told. Only the first ask,
    and those after a long silence, wait for the check.
    """

    databases: Databases
    sources: Sequence[MigrationSource]
    max_age_s: float = 1.0
    timeout_s: float = 5.0
    _last: list[DatabaseHealth] | None = field(default=None, init=False)
    _checked_at: float = field(default=0.0, init=False)
    _running: asyncio.Task[list[DatabaseHealth]] | None = field(default=None, init=False)

    async def results(self) -> tuple[list[DatabaseHealth], float]:
        """The latest results (as :func:`check_databases`, without integrity checks) and
        their age in seconds (0 when checked for this ask). Never raises for an unhealthy
        database."""
        age = time.monotonic() - self._checked_at
        if self._last is not None and age < self.max_age_s:
            return self._last, age
        running = self._running
        if running is None:
            running = self._running = asyncio.create_task(self._check(), name="health-check")
        if self._last is not None and age < self.timeout_s:
            return self._last, age
        # Shielded: an asker that gives up (its client left) does not cancel the others'.
        return await asyncio.shield(running), 0.0

    async def aclose(self) -> None:
        """Cancel a check under way (when the server stops)."""
        running = self._running
        if running is not None:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running

    async def _check(self) -> list[DatabaseHealth]:
        try:
            results = await check_databases(
                self.databases, self.sources, timeout_s=self.timeout_s, integrity=False
            )
        finally:
            self._running = None
        self._last, self._checked_at = results, time.monotonic()
        return results
