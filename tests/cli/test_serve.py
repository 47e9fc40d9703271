"""``azora serve``, the README's main command, as a real process on the embedded default:
first run sets up and seeds, then it serves /health and Socket.IO until interrupted."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
import socketio

from azora.auth.passwords import Argon2Parameters, Passwords
from azora.auth.service import AuthService
from azora.db.engines import Databases
from azora.gateway.history import id_floor
from azora.settings import Settings
from azora.types import ServiceName

AZORA = str(Path(sys.executable).parent / "azora")
FAST = Argon2Parameters(time_cost=1, memory_cost_kib=1_024, parallelism=1)
ANNOUNCE = re.compile(r"serving on (http://127\.0\.0\.1:\d+)")

#: Runs a command with SIGINT and SIGTERM ignored, as a background job of a
#: non-interactive shell (a CI step, ``cmd &`` in a script) inherits SIGINT: azora serve
#: must stop on them all the same, whatever the test's own parent did with its signals.
IGNORING_SIGNALS = (
    "import os, signal, sys\n"
    "for sig in (signal.SIGINT, signal.SIGTERM):\n"
    "    signal.signal(sig, signal.SIG_IGN)\n"
    "os.execv(sys.argv[1], sys.argv[1:])\n"
)


def _env(data_dir: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZORA_")}
    env.update(AZORA_DATA_DIR=str(data_dir), AZORA_ENV="development", COLUMNS="200")
    env.update(settings)
    return env


def _start(data_dir: Path, *extra: str, port: int = 0, **settings: str) -> subprocess.Popen[str]:
    env = _env(data_dir, **settings)
    return subprocess.Popen(
        [sys.executable, "-c", IGNORING_SIGNALS, AZORA, "serve", "--port", str(port), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _served_url(process: subprocess.Popen[str], within: float = 60.0) -> tuple[str, str]:
    """The URL the process announces, and everything it printed until then."""
    assert process.stdout is not None
    printed: list[str] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        printed.append(line)
        if found := ANNOUNCE.search(line):
            return found.group(1), "".join(printed)
    _stop(process)
    pytest.fail("azora serve did not announce its address:\n" + "".join(printed))


def _stop(process: subprocess.Popen[str], sig: int = signal.SIGINT) -> tuple[int, str]:
    """Ctrl-C the process (or send it ``sig``); its exit code and what it printed last."""
    process.send_signal(sig)
    try:
        rest, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    return process.returncode, rest


def test_serve_sets_up_on_first_run_then_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    data = tmp_path / "data"
    process = _start(data)
    try:
        url, printed = _served_url(process)
        assert "seeded the development set" in printed
        with urllib.request.urlopen(f"{url}/health", timeout=10) as response:
            health = json.load(response)
        assert health["status"] == "ok"
        assert health["bus"] == {"tapping": True}
        with urllib.request.urlopen(f"{url}/socket.io/?EIO=4&transport=polling", timeout=10) as r:
            assert r.read().decode().startswith("0{")  # an Engine.IO handshake
        for _ in range(3):  # a browser or a probe opening /socket.io/ by hand
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(f"{url}/socket.io/", timeout=10)
            assert refused.value.code == 400
            refused.value.close()
    finally:
        code, rest = _stop(process)
    assert code == 130  # interrupted, like every command stopped with Ctrl-C
    assert rest.strip() == "interrupted"  # the client's mistakes leave the console alone
    assert sorted(p.name for p in data.glob("*.db")) == sorted(f"{s}.db" for s in ServiceName)
    assert not list(data.glob("*-wal"))  # each database closed (SQLite folds its WAL in)
    # A second run finds everything in place and seeds nothing new.
    again = _start(data, "--no-relay", "--no-consumers")
    try:
        _, printed = _served_url(again)
        assert "nothing to do: all 9 databases exist and are at head" in printed
        assert "seeded the development set" not in printed  # nothing new to seed
        assert "the gateway only" in printed
    finally:
        assert _stop(again)[0] == 130


def test_serve_stops_gracefully_on_sigterm_with_exit_0(tmp_path: Path) -> None:
    data = tmp_path / "data"
    process = _start(data)
    try:
        _served_url(process)
    finally:
        code, rest = _stop(process, signal.SIGTERM)
    assert code == 0  # asked to stop, as a service manager does: not a failure
    assert rest.strip() == "stopped"
    assert not list(data.glob("*-wal"))  # each database closed (SQLite folds its WAL in)


def test_ctrl_c_while_setting_up_stops_with_130(tmp_path: Path) -> None:
    data = tmp_path / "data"
    process = _start(data)
    assert process.stdout is not None
    first = process.stdout.readline()  # the first database is being set up
    code, rest = _stop(process)
    assert code == 130, first + rest
    assert rest.strip().endswith("interrupted")
    assert "Traceback" not in rest


def test_a_port_in_use_is_refused_in_one_line_before_anything_is_set_up(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        process = _start(data, port=port)
        printed, _ = process.communicate(timeout=30)
    assert process.returncode == 1
    assert printed.splitlines() == [
        f"error: 127.0.0.1:{port} is already in use",
        "hint: another process listens there (another azora serve?); "
        "choose another with --port (or AZORA_SERVE_PORT)",
    ]
    assert not data.exists()  # nothing set up, nothing seeded


async def _register_and_listen(data: Path, url: str) -> list[tuple[str, dict[str, Any]]]:
    """Register a student in the served databases, connect as them, collect their events."""
    since = id_floor(dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    email = f"saga-{uuid.uuid4().hex[:8]}@example.org"
    async with Databases(Settings(data_dir=data, env="development")) as databases:
        auth = AuthService(databases, passwords=Passwords(FAST))
        await auth.register(email, "a long enough passphrase", "Yaw Mensah")
        signed = await auth.login(email, "a long enough passphrase", "127.0.0.1", "pytest")
    received: list[tuple[str, dict[str, Any]]] = []
    wanted = {"system.user.registered", "finance.wallet.created", "notification.created"}
    done = asyncio.Event()

    async def record(name: str, data: Any = None) -> None:
        received.append((name, data))
        if wanted <= {n for n, _ in received}:
            done.set()

    client = socketio.AsyncClient(reconnection=False)
    client.on("*", record)
    # From just before the registration: what was pushed before connecting comes from
    # the history, the rest live.
    await client.connect(
        url,
        auth={"token": signed.access_token, "last_event_id": str(since)},
        transports=["websocket"],
        wait_timeout=10,  # socketio's default, 1 s, is short on a loaded machine
    )
    try:
        await asyncio.wait_for(done.wait(), 30)
    finally:
        await client.disconnect()
    assert all(d["subject"] == str(signed.user_id) for n, d in received if n in wanted)
    return received


def test_serve_runs_the_registration_saga_and_pushes_it_to_the_new_users_socket(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    process = _start(data)
    try:
        url, _ = _served_url(process)
        received = asyncio.run(_register_and_listen(data, url))
    finally:
        _stop(process)
    names = [name for name, _ in received]
    # Registration -> the mint opens the wallet, notifications says welcome; each once.
    for name in ("system.user.registered", "finance.wallet.created", "notification.created"):
        assert names.count(name) == 1, names


def _users(data: Path) -> int:
    with contextlib.closing(sqlite3.connect(data / "auth.db")) as connection:
        return int(connection.execute("SELECT count(*) FROM users").fetchone()[0])


def test_serve_in_production_loads_the_production_seed_only(tmp_path: Path) -> None:
    data = tmp_path / "data"
    process = _start(
        data,
        AZORA_ENV="production",
        AZORA_JWT_SECRET=secrets.token_hex(24),
        AZORA_ENCRYPTION_KEY=secrets.token_hex(24),
    )
    try:
        _, printed = _served_url(process)
    finally:
        _stop(process)
    assert "loading the production seed only" in printed
    assert "seeded the production set" in printed
    assert "development" not in printed
    assert "password" not in printed
    assert _users(data) == 0  # no account, so none with a known password


def test_a_second_process_on_the_in_process_bus_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    process = _start(data)
    try:
        _served_url(process)
        for args in (["events", "relay", "--once"], ["serve", "--port", "0"]):
            refused = subprocess.run(
                [AZORA, *args], env=_env(data), capture_output=True, text=True, timeout=60
            )
            assert refused.returncode == 1, refused.stdout + refused.stderr
            assert f"`azora serve` (pid {process.pid}) already runs" in refused.stderr
            assert "Traceback" not in refused.stdout + refused.stderr
    finally:
        _stop(process)
