"""Where each service database lives: a PostgreSQL database or an embedded SQLite file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from azora.errors import ConfigurationError
from azora.settings import Settings
from azora.types import ServiceName

Backend = Literal["postgresql", "sqlite"]

_POSTGRES_DRIVERS = {"postgres", "postgresql", "postgresql+asyncpg", "postgresql+psycopg"}
_SQLITE_DRIVERS = {"sqlite", "sqlite+aiosqlite"}


@dataclass(frozen=True)
class DatabaseTarget:
    """One service's database: its async URL and how to show it safely."""

    service: ServiceName
    url: URL

    @property
    def backend(self) -> Backend:
        """``postgresql`` or ``sqlite``."""
        return "sqlite" if self.url.get_backend_name() == "sqlite" else "postgresql"

    @property
    def database(self) -> str:
        """The database name (PostgreSQL) or file path (SQLite)."""
        return self.url.database or ""

    @property
    def sqlite_path(self) -> Path:
        """The SQLite file; only meaningful for the SQLite backend."""
        return Path(self.database)

    @property
    def display(self) -> str:
        """The URL with its password masked, safe for messages and logs."""
        if self.backend == "sqlite":
            return self.database
        return self.url.set(drivername="postgresql").render_as_string(hide_password=True)

    @property
    def short(self) -> str:
        """A compact location for tables: ``host:port/database`` or the file path."""
        if self.backend == "sqlite":
            path = self.sqlite_path
            try:
                return str(path.relative_to(Path.cwd()))
            except ValueError:
                return str(path)
        return f"{self.url.host or 'localhost'}:{self.url.port or 5432}/{self.database}"

    def with_database(self, name: str) -> DatabaseTarget:
        """The same server, another database (e.g. the ``postgres`` maintenance database)."""
        return DatabaseTarget(self.service, self.url.set(database=name))


#: Connection options a PostgreSQL URL may carry (``?sslmode=require``), with their values.
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_POSTGRES_OPTIONS: dict[str, tuple[str, ...]] = {
    "ssl": _SSL_MODES,
    "sslmode": _SSL_MODES,
    "target_session_attrs": (
        "any",
        "primary",
        "standby",
        "read-write",
        "read-only",
        "prefer-standby",
    ),
}
_PASSWORD_IN_URL = re.compile(r"(?P<head>\b[a-z][a-z0-9+.-]*://[^\s:/@]*:)[^\s@]+@", re.IGNORECASE)


def mask_passwords(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _PASSWORD_IN_URL.sub(r"\g<head>***@", text)


def parse_url(raw: str, *, variable: str) -> URL:
    """Parse a configured URL and select the async driver.

    The port must be a number from 1 to 65535; a PostgreSQL URL may carry the options
    ``ssl`` (or libpq's ``sslmode``) and ``target_session_attrs``, a SQLite URL none.
    No message repeats the raw value (it may hold a password).

    Raises:
        ConfigurationError: not a URL (e.g. a port that is not a number, an unclosed
            ``[`` around an IPv6 address), a scheme Azora does not support, a port out
            of range, or an unknown option.
    """
    example = "expected e.g. postgresql://user:password@host:5432"
    try:
        url = make_url(raw.strip())
    except (ArgumentError, ValueError):
        # make_url raises ValueError for a port that is not a number; "[::1/db"
        # (an unclosed bracket) reads as host "[" and port ":1".
        raise ConfigurationError(f"{variable} is not a database URL", hint=example) from None
    if url.drivername in _POSTGRES_DRIVERS:
        return _postgres_url(url, variable, example)
    if url.drivername in _SQLITE_DRIVERS:
        if not url.database or url.database == ":memory:":
            raise ConfigurationError(f"{variable} must name a SQLite file, not memory")
        if url.query:
            raise ConfigurationError(
                f"{variable} carries options ({', '.join(sorted(url.query))});"
                " a SQLite URL takes none",
                hint="use sqlite:///path/to/file.db",
            )
        return url.set(drivername="sqlite+aiosqlite")
    raise ConfigurationError(
        f"{variable} uses unsupported scheme {url.drivername!r}",
        hint="use postgresql://... (or sqlite:///path for one service)",
    )


def _postgres_url(url: URL, variable: str, example: str) -> URL:
    shown = url.set(drivername="postgresql").render_as_string(hide_password=True)
    if url.host is not None and ("[" in url.host or "]" in url.host):
        raise ConfigurationError(f"{variable} is not a database URL", hint=example)
    if url.port is not None and not 1 <= url.port <= 65_535:
        raise ConfigurationError(
            f"{variable} has port {url.port}, outside 1-65535 ({shown})", hint=example
        )
    for name, value in url.query.items():
        allowed = _POSTGRES_OPTIONS.get(name)
        if allowed is None:
            raise ConfigurationError(
                f"{variable} carries the unknown option {name!r} ({shown})",
                hint=f"options azora passes on: {', '.join(_POSTGRES_OPTIONS)}",
            )
        if not isinstance(value, str) or value not in allowed:
            raise ConfigurationError(
                f"{variable}: option {name!r} must be one of {', '.join(allowed)} ({shown})",
                hint=example + "?sslmode=require",
            )
    if "sslmode" in url.query:  # libpq's name; asyncpg calls it ssl
        mode = url.query["sslmode"]
        url = url.difference_update_query(["sslmode"]).update_query_dict({"ssl": mode})
    return url.set(drivername="postgresql+asyncpg")


def resolve_target(settings: Settings, service: ServiceName) -> DatabaseTarget:
    """The database a service uses under ``settings``.

    Order: ``AZORA_<SERVICE>_DATABASE_URL``, then ``AZORA_DATABASE_URL`` (database
    ``<prefix>_<service>`` on that server), then the embedded SQLite file.

    Raises:
        ConfigurationError: a configured URL is malformed or unsupported.
    """
    override = settings.service_url_override(service)
    if override:
        variable = f"AZORA_{service.value.upper()}_DATABASE_URL"
        return DatabaseTarget(service, parse_url(override, variable=variable))
    if settings.database_url:
        server = parse_url(settings.database_url, variable="AZORA_DATABASE_URL")
        if server.get_backend_name() != "postgresql":
            raise ConfigurationError(
                "AZORA_DATABASE_URL must be a PostgreSQL server URL",
                hint="leave it unset for the embedded SQLite default",
            )
        return DatabaseTarget(service, server.set(database=f"{settings.db_name_prefix}_{service}"))
    path = (settings.data_dir / f"{service.value}.db").resolve()
    return DatabaseTarget(service, URL.create("sqlite+aiosqlite", database=str(path)))
