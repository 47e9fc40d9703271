"""Waking the outbox relay after commits: a throttled ``NOTIFY`` outside the writers' transactions.

PostgreSQL serialises every committing transaction that has a pending ``NOTIFY`` on one
global lock, so a ``NOTIFY`` inside the writers' transactions (or in a trigger) would
throttle the ledger. Instead, once a unit of work that emitted events has committed (and
after ``mint_move``, which writes outbox rows inside a SQL function), the writer pokes
this process's :class:`OutboxNotifier`, which sends ``SELECT pg_notify('azora_outbox',
'<service>')`` on a connection of its own, in the background:

- **leading edge**: the first poke after a quiet spell is announced at once;
- **throttled**: then at most one notify per ``interval`` (5 ms by default) per database,
  with a **trailing** notify when pokes came in meanwhile, so the last commit is always
  announced (after it committed, so the relay it wakes sees its rows);
- **never in the writer's way**: :meth:`OutboxNotifier.poke` only schedules; a failure
  (server away, connection dropped) is logged at debug level and swallowed. The relay's
  polling is the fallback, so a lost notify delays an event by at most the idle interval.

The connection is opened on first use with the application engine's URL and closed after
``linger`` seconds without a poke (or when the event loop cancels the sender). Only
PostgreSQL is notified; on SQLite a poke does nothing and the relay polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from azora.db.engines import Databases
from azora.types import ServiceName

logger = logging.getLogger(__name__)

#: The channel the relay listens on; the payload is the name of the service whose outbox grew.
CHANNEL = "azora_outbox"

#: At most one notify per database this often (seconds), plus a trailing one.
NOTIFY_INTERVAL_S = 0.005

_NOTIFY = "SELECT pg_notify($1, $2)"
_RETRY_AFTER_FAILURE_S = 1.0


def driver_dsn(databases: Databases, service: ServiceName) -> str:
    """The asyncpg DSN of ``service``'s application engine (credentials included).

    For a connection of its own (``LISTEN``/``NOTIFY``) beside the engine's pool.
    """
    url = databases.engine(service).url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def connect_driver(databases: Databases, service: ServiceName, application_name: str) -> Any:
    """A new asyncpg connection to ``service``'s database as the application role.

    Raises:
        OSError, asyncpg.PostgresError, TimeoutError: the server cannot be reached.
    """
    settings = databases.settings
    return await asyncpg.connect(
        driver_dsn(databases, service),
        timeout=settings.db_connect_timeout_s,
        server_settings={"application_name": application_name},
    )


@dataclass
class _Sender:
    """The notify state of one database: its background task and whether a poke waits."""

    pending: bool = False
    task: asyncio.Task[None] | None = None
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class OutboxNotifier:
    """Announces outbox growth on ``azora_outbox``, throttled (see the module docstring).

    One notifier per :class:`~azora.db.engines.Databases` (:meth:`of`), so every writer
    of a process shares the throttle; it works in the event loop of its first poke.
    """

    def __init__(
        self,
        databases: Databases,
        *,
        interval: float = NOTIFY_INTERVAL_S,
        linger: float = 5.0,
    ) -> None:
        # Weak: the registry keys notifiers by their Databases and must not keep it alive.
        self._databases = weakref.ref(databases)
        self.interval = interval
        self.linger = linger
        self._postgres: dict[ServiceName, bool] = {}
        self._senders: dict[ServiceName, _Sender] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Notifies sent (for tests and diagnostics).
        self.sent = 0

    @classmethod
    def of(cls, databases: Databases) -> OutboxNotifier:
        """The notifier shared by every writer of ``databases`` (created on first use)."""
        notifier = _NOTIFIERS.get(databases)
        if notifier is None:
            notifier = _NOTIFIERS[databases] = cls(databases)
        return notifier

    def poke(self, service: ServiceName) -> None:
        """Have ``service``'s relay woken soon: now, or after the interval (trailing).

        Call it after a commit that wrote outbox rows. Returns at once, never raises, and
        does nothing on SQLite or outside a running event loop.
        """
        try:
            if not self._is_postgres(service):
                return
            loop = asyncio.get_running_loop()
        except Exception:  # no loop, or a configuration the writer already got past
            return
        if loop is not self._loop:
            # A new event loop (tests run one per test): the old loop's tasks are gone.
            self._loop, self._senders = loop, {}
        sender = self._senders.get(service)
        if sender is None:
            sender = self._senders[service] = _Sender()
        if sender.task is None:
            sender.task = loop.create_task(self._send(service, sender))
        else:
            sender.pending = True
            sender.wake.set()

    def _is_postgres(self, service: ServiceName) -> bool:
        known = self._postgres.get(service)
        if known is None:
            databases = self._databases()
            known = databases is not None and databases.target(service).backend == "postgresql"
            self._postgres[service] = known
        return known

    async def _send(self, service: ServiceName, sender: _Sender) -> None:
        """Notify, then again after each interval in which pokes came, until idle."""
        connection: Any = None
        try:
            while True:
                sender.pending = False
                sender.wake.clear()
                pause = self.interval
                try:
                    if connection is None:
                        connection = await self._connect(service)
                    await connection.execute(_NOTIFY, CHANNEL, service.value)
                    self.sent += 1
                except Exception as exc:
                    # The relay polls anyway; a lost notify only delays the events.
                    logger.debug("notifying the relay of %s failed: %r", service, exc)
                    _terminate(connection)
                    connection = None
                    pause = max(self.interval, _RETRY_AFTER_FAILURE_S)
                await asyncio.sleep(pause)
                if sender.pending:
                    continue  # the trailing notify
                try:
                    await asyncio.wait_for(sender.wake.wait(), self.linger)
                except TimeoutError:
                    return  # quiet for a while: let the connection go
        finally:
            sender.task = None
            _terminate(connection)

    async def _connect(self, service: ServiceName) -> Any:
        databases = self._databases()
        if databases is None:
            raise RuntimeError("the databases are gone")
        return await connect_driver(databases, service, f"azora-notify-{service.value}")


def _terminate(connection: Any) -> None:
    if connection is not None:
        with contextlib.suppress(Exception):
            connection.terminate()


_NOTIFIERS: weakref.WeakKeyDictionary[Databases, OutboxNotifier] = weakref.WeakKeyDictionary()
