"""Cache fixtures: each cache test runs on the in-process backend and on the real Redis.

``AZORA_TEST_REDIS_URL`` names the shared Redis (default ``redis://127.0.0.1:6379/0``);
every test uses its own key space and deletes its keys. Tests that stop and restart
Redis get a private ``redis-server`` on a free port, started and stopped by PID.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
from tests.conftest import REQUIRE_SERVICES

from azora.cache import Cache, KeySpace
from azora.cache.backends import MemoryBackend, RedisBackend

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _unavailable(message: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(message)
    pytest.skip(message)


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


@pytest.fixture
def space() -> KeySpace:
    """A key space of this test alone."""
    return KeySpace(f"test-{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest, space: KeySpace) -> AsyncIterator[Cache]:
    """A cache on each backend; the test's keys are deleted afterwards."""
    if request.param == "memory":
        yield Cache(MemoryBackend())
        return
    url = request.getfixturevalue("redis_url")
    backend = RedisBackend(url, timeout_ms=500)
    cache = Cache(backend, timeout_ms=500)
    try:
        yield cache
    finally:
        keys = [key async for key in backend.client.scan_iter(f"azora:{space.namespace}:*")]
        if keys:
            await backend.client.delete(*keys)
        await cache.aclose()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateRedis:
    """A redis-server of one test, on its own port; stopped by PID."""

    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start the server and wait until it answers."""
        binary = shutil.which("redis-server")
        assert binary is not None
        self._process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self._directory),
             "--enable-debug-command", "local"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and wait for it."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None


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
