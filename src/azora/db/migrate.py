"""Per-service Alembic histories: apply, roll back, inspect, detect drift, create revisions.

Each service database has its own history under ``src/azora/<service>/migrations/``
and shares one environment (``azora/db/migrations/env.py``). An upgrade or downgrade
runs in a single transaction (PostgreSQL and SQLite both have transactional DDL), so a
failure leaves the database exactly as it was.

Alembic's ``op`` and ``context`` are process-wide proxies: run one migration command
at a time per process (never under ``asyncio.gather``).
"""

from __future__ import annotations

import functools
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import MetaData
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from azora.db.engines import build_engine, reading
from azora.db.errors import MigrationFailed, UnknownRevision
from azora.db.urls import DatabaseTarget
from azora.settings import Settings
from azora.types import ServiceName

_ENV_DIR = Path(__file__).with_name("migrations")


@dataclass(frozen=True)
class MigrationSource:
    """What Alembic needs to know about one service: its models and its history."""

    service: ServiceName
    metadata: MetaData
    versions: Path


@dataclass(frozen=True)
class MigrationResult:
    """The revision before and after an upgrade or downgrade."""

    service: ServiceName
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        """True when the operation moved the database to another revision."""
        return self.before != self.after


def alembic_config(source: MigrationSource, connection: Connection | None = None) -> Config:
    """An Alembic configuration for ``source``, bound to ``connection`` when given."""
    config = Config()
    config.set_main_option("script_location", str(_ENV_DIR))
    config.set_main_option("version_locations", str(source.versions))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.set_main_option("truncate_slug_length", "40")
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    if ruff:
        config.set_section_option("post_write_hooks", "hooks", "ruff_fix, ruff_format")
        for name, args in (
            ("ruff_fix", "check --fix --quiet --exit-zero REVISION_SCRIPT_FILENAME"),
            ("ruff_format", "format --quiet REVISION_SCRIPT_FILENAME"),
        ):
            config.set_section_option("post_write_hooks", f"{name}.type", "exec")
            config.set_section_option("post_write_hooks", f"{name}.executable", ruff)
            config.set_section_option("post_write_hooks", f"{name}.options", args)
    config.attributes["connection"] = connection
    config.attributes["metadata"] = source.metadata
    return config


def head_revision(source: MigrationSource) -> str | None:
    """The newest revision of ``source``'s history (``None`` when it has none).

    Read again only when its scripts change (``GET /health`` asks often)."""
    scripts = tuple(
        sorted((path.name, path.stat().st_mtime_ns) for path in source.versions.glob("*.py"))
    )
    return _head(source, scripts)


@functools.lru_cache(maxsize=64)
def _head(source: MigrationSource, scripts: tuple[tuple[str, int], ...]) -> str | None:
    return ScriptDirectory.from_config(alembic_config(source)).get_current_head()


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (``None`` for an empty database)."""
    async with reading(engine).connect() as connection:
        return await connection.run_sync(_current)


def check_known(source: MigrationSource, revision: str | None) -> None:
    """Make sure ``revision`` belongs to ``source``'s history.

    Raises:
        UnknownRevision: it does not (e.g. the database was migrated by a newer release).
    """
    if revision is None:
        return
    script = ScriptDirectory.from_config(alembic_config(source))
    try:
        script.get_revision(revision)
    except CommandError:
        raise UnknownRevision(
            f"the {source.service} database is at revision {revision!r},"
            " which this release of azora does not know",
            hint="it was migrated by another release; upgrade azora or restore a backup",
        ) from None


async def _run(
    engine: AsyncEngine, source: MigrationSource, action: str, revision: str
) -> MigrationResult:
    def run(connection: Connection) -> MigrationResult:
        before = _current(connection)
        check_known(source, before)
        config = alembic_config(source, connection)
        if action == "upgrade":
            command.upgrade(config, revision)
        else:
            command.downgrade(config, revision)
        return MigrationResult(source.service, before, _current(connection))

    try:
        async with engine.begin() as connection:
            return await connection.run_sync(run)
    except (DBAPIError, CommandError) as exc:
        raise MigrationFailed(
            f"{action} of the {source.service} database failed and was rolled back:"
            f" {_first_line(exc)}",
            hint="the database is unchanged; fix the cause and run the command again",
        ) from exc


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


async def upgrade(
    engine: AsyncEngine, source: MigrationSource, revision: str = "head"
) -> MigrationResult:
    """Apply migrations up to ``revision`` in one transaction.

    Raises:
        UnknownRevision: the database is at a revision this release does not know.
        MigrationFailed: a migration failed; nothing was changed.
    """
    return await _run(engine, source, "upgrade", revision)


async def downgrade(
    engine: AsyncEngine, source: MigrationSource, revision: str = "base"
) -> MigrationResult:
    """Roll migrations back to ``revision`` (default: empty) in one transaction.

    Raises:
        UnknownRevision: the database is at a revision this release does not know.
        MigrationFailed: a downgrade step failed; nothing was changed.
    """
    return await _run(engine, source, "downgrade", revision)


def _describe(diff: Any) -> str:
    if isinstance(diff, list):  # column modifications come grouped
        return "; ".join(_describe(d) for d in diff)
    kind, *rest = diff
    names = []
    for item in rest:
        name = getattr(item, "name", None)
        table = getattr(item, "table", None)
        if name is not None:
            names.append(
                f"{table.name}.{name}"
                if table is not None and kind.endswith(("column", "index"))
                else str(name)
            )
        elif isinstance(item, str):
            names.append(item)
    return f"{kind} {' '.join(names)}".strip()


async def drift(engine: AsyncEngine, source: MigrationSource) -> list[str]:
    """Differences between the models and the live schema, one readable line each.

    An empty list means the live schema matches the models.
    """

    def compare(connection: Connection) -> list[str]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return [_describe(d) for d in compare_metadata(context, source.metadata)]

    async with engine.connect() as connection:
        return await connection.run_sync(compare)


def _next_revision_id(source: MigrationSource) -> str:
    numbers = [
        int(m.group(1))
        for path in source.versions.glob("*.py")
        if (m := re.match(r"^(\d{4})_", path.name))
    ]
    return f"{max(numbers, default=0) + 1:04d}"


async def make_migration(source: MigrationSource, message: str) -> Path | None:
    """Write a new revision with the changes between the history's head and the models.

    The comparison runs against a scratch SQLite database migrated to head, so it needs
    no server and never touches an operator's data. Returns the new file, or ``None``
    when the models match the head (nothing to write).
    """
    source.versions.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="azora-makemigrations-") as scratch:
        target = DatabaseTarget(
            source.service,
            URL.create("sqlite+aiosqlite", database=str(Path(scratch) / "scratch.db")),
        )
        engine = build_engine(target, Settings(), pooled=False)
        try:
            await upgrade(engine, source)
            if not await drift(engine, source):
                return None
            rev_id = _next_revision_id(source)

            def revise(connection: Connection) -> None:
                command.revision(
                    alembic_config(source, connection),
                    message=message,
                    autogenerate=True,
                    rev_id=rev_id,
                )

            async with engine.begin() as connection:
                await connection.run_sync(revise)
        finally:
            await engine.dispose()
    return next(source.versions.glob(f"{rev_id}_*.py"))
