"""Database failures explained: which database, where (password masked) and what to do."""

from __future__ import annotations

import socket
import sqlite3

import asyncpg

from azora.errors import AzoraError, ConfigurationError


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


class DatabaseDamaged(DatabaseError):
    """The database's storage is damaged (a corrupt page), or the file is not a database."""

    code = "database_damaged"


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


#: SQLite's primary result codes for a damaged file and for a file that is not a database.
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26


def damaged(service: str, what: str) -> DatabaseDamaged:
    """The error for a damaged ``service`` database; ``what`` says what is wrong with it.

    The hint names the recovery: a backup, or in development a reset (which loses the data).
    """
    return DatabaseDamaged(
        f"{what}: the {service} database cannot be trusted",
        hint=f"restore it from a backup, or in development run `azora db reset {service}`,"
        " which destroys its data",
    )


def explain_damage(exc: BaseException, *, service: str, where: str) -> DatabaseDamaged | None:
    """The readable error when ``exc`` says the database's storage is damaged (SQLite:
    a corrupt page, or a file that is not a database at all); ``None`` otherwise."""
    for item in _chain(exc):
        if not isinstance(item, sqlite3.DatabaseError):
            continue
        code = getattr(item, "sqlite_errorcode", 0) & 0xFF
        if code == _SQLITE_NOTADB:
            return damaged(service, f"{where} is not an SQLite database")
        if code == _SQLITE_CORRUPT:
            return damaged(service, f"the {service} database at {where} is damaged ({item})")
    return None


def app_login_refusal(exc: BaseException, *, role: str, where: str) -> ConfigurationError | None:
    """What a failed password-less login of the application role means for set-up.

    ``exc`` is the failure of logging in as ``role`` with no password at ``where`` (its
    masked URL). ``None`` when the server let the role past authentication: the role or
    the database is missing (set-up creates them) or the server is unreachable (set-up
    says so itself). An error when the server asks for a password, or refuses the role
    for another reason (``pg_hba.conf``, ``NOLOGIN``, peer authentication).
    """
    for item in _chain(exc):
        if isinstance(item, asyncpg.InvalidPasswordError):
            return ConfigurationError(
                f"the server at {where} asks the application role {role!r} for a password,"
                " and AZORA_DB_APP_PASSWORD is not set",
                hint="set AZORA_DB_APP_PASSWORD (`azora db setup` gives the role that"
                " password) and run the command again",
            )
        if isinstance(item, asyncpg.InvalidAuthorizationSpecificationError):
            if "does not exist" in str(item):  # trust or peer let it through to the look-up
                return None
            return ConfigurationError(
                f"the server at {where} refuses the application role {role!r}: {item}",
                hint="let the role log in (LOGIN, and a pg_hba.conf rule), or set"
                " AZORA_DB_APP_PASSWORD for password authentication",
            )
    return None


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
