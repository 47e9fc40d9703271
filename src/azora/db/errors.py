"""Database failures explained: which database, where (password masked) and what to do."""

from __future__ import annotations

import socket
import sqlite3

import asyncpg

from azora.errors import AzoraError


class DatabaseError(AzoraError):
    """A service database cannot be used as asked."""

    code = "database_error"


class DatabaseUnreachable(DatabaseError):
    """The server (or SQLite file) cannot be reached."""

    code = "database_unreachable"


class DatabaseAuthFailed(DatabaseError):
    """The server refused the credentials."""

    code = "database_auth_failed"


class DatabaseMissing(DatabaseError):
    """The database does not exist yet."""

    code = "database_missing"


class DatabaseNotMigrated(DatabaseError):
    """The database exists but its schema is not at the head revision."""

    code = "database_not_migrated"


class UnknownRevision(DatabaseError):
    """The database carries a migration revision this release does not know."""

    code = "unknown_revision"


class MigrationFailed(DatabaseError):
    """A migration failed; its transaction was rolled back."""

    code = "migration_failed"


class OperationRefused(DatabaseError):
    """A destructive operation that the environment forbids."""

    code = "operation_refused"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is None or any(item is s for s in seen):
            continue
        seen.append(item)
        todo.extend([item.__cause__, item.__context__, getattr(item, "orig", None)])
    return seen


def explain_connection_error(
    exc: BaseException, *, service: str, where: str
) -> DatabaseError | None:
    """Turn a driver/network exception into a readable :class:`DatabaseError`, if it is one.

    ``where`` is the masked URL or the file path shown to the reader.
    """
    label = f"the {service} database at {where}"
    for item in _chain(exc):
        if isinstance(item, asyncpg.InvalidPasswordError):
            return DatabaseAuthFailed(
                f"{label} refused the password",
                hint="check the user and password in AZORA_DATABASE_URL",
            )
        if isinstance(item, asyncpg.InvalidAuthorizationSpecificationError):
            return DatabaseAuthFailed(
                f"{label} refused the login: {item}",
                hint="check the user in AZORA_DATABASE_URL and the server's pg_hba.conf",
            )
        if isinstance(item, asyncpg.InvalidCatalogNameError):
            return DatabaseMissing(
                f"{label} does not exist", hint="run `azora db setup` to create it"
            )
        if isinstance(item, socket.gaierror):
            return DatabaseUnreachable(
                f"cannot resolve the host of {label}", hint="check the host in the URL"
            )
        if isinstance(item, ConnectionRefusedError):
            return DatabaseUnreachable(
                f"cannot reach {label}: connection refused",
                hint="is PostgreSQL running and listening there? check AZORA_DATABASE_URL",
            )
        if isinstance(item, TimeoutError):
            return DatabaseUnreachable(
                f"cannot reach {label}: timed out",
                hint="check the host and port, or raise AZORA_DB_CONNECT_TIMEOUT_S",
            )
        if isinstance(item, OSError):
            return DatabaseUnreachable(
                f"cannot reach {label}: {item.strerror or item}",
                hint="check the host and port in AZORA_DATABASE_URL",
            )
        if isinstance(item, asyncpg.CannotConnectNowError | asyncpg.TooManyConnectionsError):
            return DatabaseUnreachable(
                f"{label} is not accepting connections: {item}", hint="retry shortly"
            )
        if isinstance(item, sqlite3.OperationalError) and "unable to open" in str(item):
            return DatabaseUnreachable(
                f"cannot open {label}", hint="check AZORA_DATA_DIR exists and is writable"
            )
    return None
