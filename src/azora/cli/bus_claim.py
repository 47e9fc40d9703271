"""One process per set of databases may run the in-process event bus (``memory://``).

The in-process bus lives in the memory of the process that runs it. A second process
on the same databases with its own ``memory://`` bus would claim outbox rows, publish
them into its own memory and archive them: the first process's clients and consumers
would never see those events. So a command that publishes to, or consumes from, the
in-process bus (``azora serve``, ``azora events relay``, ``azora events consume``)
first claims it for the databases, keyed by where the event history lives (the nexus
database), and refuses to start when another process holds the claim.

The claim is an advisory lock (``flock``) on a small file: the operating system
releases it when the process ends, however it ends. For embedded SQLite the file sits
beside the databases; for PostgreSQL in the temporary directory, named after the
server and database (so it sees processes on this machine only: with databases on a
server, use a broker for the bus).
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from azora.db.urls import resolve_target
from azora.errors import ConfigurationError
from azora.settings import Settings
from azora.types import ServiceName

if sys.platform != "win32":
    import fcntl


class InProcessBusTaken(ConfigurationError):
    """Another process already runs the in-process event bus for these databases."""


def uses_in_process_bus(settings: Settings) -> bool:
    """True when ``AZORA_EVENTS_URL`` names the in-process bus."""
    return urlsplit(settings.events_url).scheme == "memory"


def claim_path(settings: Settings) -> Path:
    """The lock file that stands for the in-process bus of ``settings``' databases.

    Raises:
        ConfigurationError: a configured database URL is malformed.
    """
    target = resolve_target(settings, ServiceName.NEXUS)
    if target.backend == "sqlite":
        return target.sqlite_path.parent / ".memory-bus.lock"
    digest = hashlib.sha256(target.short.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"azora-memory-bus-{digest}.lock"


class BusClaim:
    """This process's claim on the in-process bus of a set of databases (see the module
    docs); released by :meth:`release`, on leaving a ``with`` block, or at exit."""

    def __init__(self, handle: IO[str] | None) -> None:
        self._handle = handle

    @classmethod
    def acquire(cls, settings: Settings, command: str) -> BusClaim:
        """Claim the in-process bus for ``settings``' databases on behalf of ``command``;
        an empty claim when ``AZORA_EVENTS_URL`` is a broker (every process shares it).

        Raises:
            InProcessBusTaken: another live process holds the claim (nothing is changed).
            ConfigurationError: a configured database URL is malformed.
        """
        if not uses_in_process_bus(settings) or sys.platform == "win32":
            return cls(None)
        path = claim_path(settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise InProcessBusTaken(
                f"{holder} already runs the in-process event bus (AZORA_EVENTS_URL=memory://)"
                f" for these databases; `{command}` here would run a bus of its own, and"
                " the events it moved would never meet that process's",
                hint="let `azora serve` run the relay and the consumers (it does by default),"
                " or point every process at one broker: AZORA_EVENTS_URL=nats://host:4222"
                " or redis://host:6379/0",
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"`{command}` (pid {os.getpid()})")
        handle.flush()
        return cls(handle)

    def release(self) -> None:
        """Give the claim up (idempotent)."""
        if self._handle is not None:
            self._handle.close()  # closing the file releases the lock
            self._handle = None

    def __enter__(self) -> BusClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
