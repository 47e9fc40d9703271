"""Fixtures shared by the whole suite: the two backends and their throwaway databases.

``AZORA_TEST_POSTGRES_URL`` enables the PostgreSQL half of every database test;
``AZORA_TEST_REDIS_URL`` names the Redis (default ``redis://127.0.0.1:6379/0``) and
``AZORA_TEST_NATS_URL`` the NATS server with JetStream (default ``nats://127.0.0.1:4222``); tests
that stop and restart Redis get a private ``redis-server`` on a free port, started and
stopped by PID. With ``AZORA_REQUIRE_SERVICES=1`` a missing or unreachable server fails
the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import pytest
import redis

from azora.db.engines import Databases
from azora.settings import Settings, get_settings
from tests import databases as dbs
from tests.servers import PrivateRedis, free_port

BACKENDS = ("sqlite", "postgresql")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
REQUIRE_SERVICES = os.environ.get("AZORA_REQUIRE_SERVICES") == "1"
_KEEP_ENV = {
    "AZORA_TEST_POSTGRES_URL",
    "AZORA_TEST_REDIS_URL",
    "AZORA_TEST_NATS_URL",
    "AZORA_REQUIRE_SERVICES",
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No developer AZORA_* variable leaks into a test, and settings are re-read."""
    for name in list(os.environ):
        if name.startswith("AZORA_") and name not in _KEEP_ENV:
            monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _unavailable(message: str) -> NoReturn:
    """Skip the test for want of a service, or fail it under AZORA_REQUIRE_SERVICES=1."""
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The PostgreSQL server for tests; skips (or fails when required) without one."""
    url = os.environ.get("AZORA_TEST_POSTGRES_URL")
    if not url:
        _unavailable("set AZORA_TEST_POSTGRES_URL to run the PostgreSQL tests")
    try:
        asyncio.run(dbs.ping_postgres(url))
    except Exception as exc:
        _unavailable(f"PostgreSQL at AZORA_TEST_POSTGRES_URL is unreachable: {exc}")
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each database test runs once on SQLite and once on PostgreSQL."""
    name: str = request.param
    if name == "postgresql":
        request.getfixturevalue("postgres_url")
    return name


def _pg_url_if(backend: str, request: pytest.FixtureRequest) -> str | None:
    return request.getfixturevalue("postgres_url") if backend == "postgresql" else None


@pytest.fixture
def fresh_settings(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Settings]:
    """Settings for nine databases that do not exist yet (dropped after the test)."""
    pg_url = _pg_url_if(backend, request)
    prefix = dbs.new_prefix()
    yield dbs.settings_for(backend, data_dir=tmp_path / "data", prefix=prefix, pg_url=pg_url)
    if pg_url:
        asyncio.run(dbs.drop_prefixed(pg_url, prefix))


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sqlite-template")
    asyncio.run(
        dbs.setup_all(dbs.settings_for("sqlite", data_dir=directory, prefix="", pg_url=None))
    )
    return directory


@pytest.fixture(scope="session")
def _postgres_template(postgres_url: str) -> Iterator[Settings]:
    prefix = dbs.new_prefix()
    settings = dbs.settings_for("postgresql", data_dir=Path(), prefix=prefix, pg_url=postgres_url)
    asyncio.run(dbs.setup_all(settings))
    yield settings
    asyncio.run(dbs.drop_prefixed(postgres_url, prefix))


@pytest.fixture
def migrated_settings(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Settings]:
    """Settings for nine migrated, empty databases, emptied again after the test.

    The schema is shared across tests: a test that changes it uses ``fresh_settings``.
    """
    if backend == "sqlite":
        template: Path = request.getfixturevalue("_sqlite_template")
        data_dir = tmp_path / "data"
        dbs.copy_sqlite_files(template, data_dir)
        yield dbs.settings_for("sqlite", data_dir=data_dir, prefix="", pg_url=None)
        return
    yield request.getfixturevalue("postgres_settings")


@pytest.fixture
def postgres_settings(request: pytest.FixtureRequest) -> Iterator[Settings]:
    """The shared migrated PostgreSQL databases, emptied after the test (for the tests
    of what only PostgreSQL has, and the PostgreSQL half of ``migrated_settings``)."""
    settings: Settings = request.getfixturevalue("_postgres_template")
    yield settings
    asyncio.run(dbs.truncate_all(settings))


@pytest.fixture
async def databases(migrated_settings: Settings) -> AsyncIterator[Databases]:
    """Engines for the nine migrated databases of the test's backend."""
    async with Databases(migrated_settings) as opened:
        yield opened


def _ping(url: str) -> None:
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The shared Redis for tests; skips (or fails under AZORA_REQUIRE_SERVICES=1)."""
    url = os.environ.get("AZORA_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    try:
        _ping(url)
    except Exception as exc:
        _unavailable(f"Redis at {url} is unreachable: {exc}")
    return url


def _ping_nats(url: str) -> None:
    """Read the server's INFO line (synchronously: async fixtures ask for this one)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 4222), 1) as sock:
        sock.settimeout(1)
        info = sock.makefile("rb").readline()
    if not info.startswith(b"INFO ") or not json.loads(info[5:]).get("jetstream"):
        raise RuntimeError("the server does not offer JetStream")


@pytest.fixture(scope="session")
def nats_url() -> str:
    """The shared NATS (with JetStream) for tests; skips (or fails when required)."""
    url = os.environ.get("AZORA_TEST_NATS_URL", DEFAULT_NATS_URL)
    try:
        _ping_nats(url)
    except Exception as exc:
        _unavailable(f"NATS with JetStream at {url} is unreachable: {exc!r}")
    return url


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A private redis-server (not started); always stopped at the end."""
    if shutil.which("redis-server") is None:
        _unavailable("redis-server is not installed")
    server = PrivateRedis(free_port(), tmp_path)
    try:
        yield server
    finally:
        server.stop()
