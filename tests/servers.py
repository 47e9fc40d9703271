"""Servers of one test, each on a free loopback port: for tests that stop and restart them.

:class:`PrivateRedis` (the cache's outage and restart tests) and :class:`PrivateNats`
(the event bus's broker-down test). Each is started and stopped by its own PID.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateServer:
    """A server process on ``port``; subclasses say how to run it and when it answers."""

    name = "server"

    def __init__(self, port: int) -> None:
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        """The command line that runs the server."""
        raise NotImplementedError

    def answers(self, connection: socket.socket) -> bool:
        """True once a fresh connection to the server shows it is ready."""
        return True

    def start(self) -> None:
        """Start the server and wait (up to 10 s) until it answers."""
        self._process = subprocess.Popen(
            self.argv(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                    sock.settimeout(1)
                    if self.answers(sock):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"{self.name} did not start on port {self.port}")

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


class PrivateRedis(PrivateServer):
    """A redis-server of one test, keeping nothing on disk."""

    name = "redis-server"

    def __init__(self, port: int, directory: Path) -> None:
        super().__init__(port)
        self.url = f"redis://127.0.0.1:{port}/0"
        self._directory = directory

    def argv(self) -> list[str]:
        binary = shutil.which("redis-server")
        assert binary is not None
        return [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self._directory),
            "--enable-debug-command", "local",
        ]  # fmt: skip


class PrivateNats(PrivateServer):
    """A nats-server with JetStream of one test, with a store of its own."""

    name = "nats-server"
    binary = "/usr/sbin/nats-server"

    def __init__(self, port: int, store: Path) -> None:
        super().__init__(port)
        self.url = f"nats://127.0.0.1:{port}"
        self._store = store

    def argv(self) -> list[str]:
        return [
            self.binary,
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-js",
            "-sd",
            str(self._store),
        ]

    def answers(self, connection: socket.socket) -> bool:
        return connection.makefile("rb").readline().startswith(b"INFO ")
