"""What the benchmarks share: progress lines, percentiles, the event they commit for a
user, and the throwaway databases of one run."""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.engine import URL, make_url

from azora.db.outbox import EventMessage
from azora.types import Environment, ServiceName


def say(message: str) -> None:
    """A progress line on stderr."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def notification(user: uuid.UUID, sequence: int) -> EventMessage:
    """A ``notification.created`` event for ``user`` (title: its sequence number)."""
    return EventMessage(
        type="notification.created",
        source="notifications",
        subject=user,
        payload={
            "user_id": str(user),
            "notification_id": str(uuid.uuid4()),
            "kind": "system",
            "title": f"benchmark {sequence}",
        },
    )


@dataclass(frozen=True)
class Server:
    """The PostgreSQL server and the prefix (``azb_<random>``) of this run's databases."""

    url: URL
    prefix: str

    @classmethod
    def fresh(cls, url: str) -> Server:
        """The server at ``url`` with a new, unused prefix."""
        return cls(make_url(url), f"azb_{uuid.uuid4().hex[:12]}")

    def dsn(self, database: str) -> str:
        """A libpq/asyncpg URL for ``database`` on the server."""
        url = self.url.set(drivername="postgresql", database=database)
        return url.render_as_string(hide_password=False)

    def database(self, name: ServiceName | str) -> str:
        """The name of a database of this run (as ``Settings`` derives it for a service)."""
        return f"{self.prefix}_{name}"

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """``Settings`` arguments for this run's databases (plain values, to pickle)."""
        return {
            "env": Environment.TEST,
            "database_url": self.url.render_as_string(hide_password=False),
            "db_name_prefix": self.prefix,
            **overrides,
        }


async def drop_databases(server: Server) -> list[str]:
    """Drop every database of this run (connections still open are ended)."""
    connection = await asyncpg.connect(server.dsn("postgres"), timeout=10)
    try:
        rows = await connection.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE $1", server.prefix + "\\_%"
        )
        for row in rows:
            await connection.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
        return [row["datname"] for row in rows]
    finally:
        await connection.close()


@contextmanager
def throwaway(server: Server) -> Iterator[None]:
    """Drop this run's databases on the way out, however it ends (Ctrl-C included)."""
    try:
        yield
    finally:
        dropped = asyncio.run(drop_databases(server))
        say(f"dropped {', '.join(dropped) or 'nothing'}")
