"""``azora serve``, the README's main command, as a real process on the embedded default:
first run sets up and seeds, then it serves /health and Socket.IO until interrupted."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time
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

FAST = Argon2Parameters(time_cost=1, memory_cost_kib=1_024, parallelism=1)
ANNOUNCE = re.compile(r"serving on (http://127\.0\.0\.1:\d+)")


def _start(data_dir: Path, *extra: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZORA_")}
    env.update(AZORA_DATA_DIR=str(data_dir), AZORA_ENV="development", COLUMNS="200")
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "azora"), "serve", "--port", "0", *extra],
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


def _stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    """Ctrl-C the process; its exit code and what it printed last."""
    process.send_signal(signal.SIGINT)
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
    finally:
        code, rest = _stop(process)
    assert code == 130  # interrupted, like every command stopped with Ctrl-C
    assert "interrupted" in rest
    assert sorted(p.name for p in data.glob("*.db")) == sorted(f"{s}.db" for s in ServiceName)
    # A second run finds everything in place and seeds nothing new.
    again = _start(data, "--no-relay", "--no-consumers")
    try:
        _, printed = _served_url(again)
        assert "nothing to do: all 9 databases exist and are at head" in printed
        assert "seeded the development set" not in printed  # nothing new to seed
        assert "the gateway only" in printed
    finally:
        assert _stop(again)[0] == 130


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
