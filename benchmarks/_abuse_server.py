"""``azora serve`` as ``benchmarks/abuse.py`` runs it (a process of its own, on the
embedded default), and the users it signs in on the served databases."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import re
import signal
import sys
import threading
import uuid
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from _common import say

from azora.auth.passwords import Argon2Parameters, Passwords
from azora.auth.service import AuthService
from azora.db.engines import Databases

AZORA = Path(sys.executable).parent / "azora"
ANNOUNCE = re.compile(r"serving on http://127\.0\.0\.1:(\d+)")
HOST = "127.0.0.1"
PASSWORD = "benchmark-only passphrase"
#: Sign-in hashes are not measured here: the cheapest parameters (as the gateway tests).
CHEAP = Argon2Parameters(time_cost=1, memory_cost_kib=1_024, parallelism=1)


@dataclass(frozen=True)
class Served:
    pid: int
    port: int
    output: deque[str]  # what it printed last

    @property
    def socket_io(self) -> str:
        return f"ws://{HOST}:{self.port}/socket.io/?EIO=4&transport=websocket"


def _die_with_parent() -> None:
    """In the child, before it runs: SIGTERM when the benchmark process dies."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _kill(pid: int) -> None:
    say(f"azora serve ({pid}) outlived the run's deadline; killing it")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


async def _drain(process: asyncio.subprocess.Process, output: deque[str]) -> None:
    assert process.stdout is not None
    while line := await process.stdout.readline():
        output.append(line.decode(errors="replace"))


@contextlib.asynccontextmanager
async def served(data: Path, budget: float, settings: dict[str, str]) -> AsyncIterator[Served]:
    """``azora serve`` on the embedded default in ``data``, with ``settings`` (environment
    variables) added, until the block ends (SIGINT; killed if it has not stopped 30 s
    later, or once ``budget`` seconds have passed)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AZORA_")}
    env.update(AZORA_DATA_DIR=str(data), AZORA_ENV="development", COLUMNS="200")
    env["AZORA_ADMIN_PASSWORD"] = PASSWORD  # else a generated one is printed
    env.update(settings)
    process = await asyncio.create_subprocess_exec(
        str(AZORA),
        *("serve", "--host", HOST, "--port", "0"),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        preexec_fn=_die_with_parent,
    )
    deadline = threading.Timer(budget, _kill, (process.pid,))
    deadline.daemon = True
    deadline.start()
    output: deque[str] = deque(maxlen=40)
    draining: asyncio.Task[None] | None = None
    try:
        assert process.stdout is not None
        async with asyncio.timeout(120):
            while not (found := ANNOUNCE.search(output[-1] if output else "")):
                line = await process.stdout.readline()
                if not line:
                    raise RuntimeError("azora serve ended:\n" + "".join(output))
                output.append(line.decode(errors="replace"))
        draining = asyncio.create_task(_drain(process, output))
        yield Served(process.pid, int(found.group(1)), output)
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            say(f"azora serve ({process.pid}) did not stop; killing it")
            process.kill()
            await process.wait()
        deadline.cancel()
        if draining is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(draining, 5)


async def sign_in(databases: Databases, count: int) -> list[tuple[uuid.UUID, str]]:
    """``count`` new users of the served databases, and an access token of each."""
    auth = AuthService(databases, passwords=Passwords(CHEAP))
    users = []
    for number in range(count):
        email = f"abuse-{number}-{uuid.uuid4().hex[:8]}@example.org"
        await auth.register(email, PASSWORD, f"Abuse User {number}")
        signed = await auth.login(email, PASSWORD, HOST, "benchmark")
        users.append((signed.user_id, signed.access_token))
    return users
