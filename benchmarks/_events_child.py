"""What the child processes of ``benchmarks/events.py`` share.

A child gets its job as one JSON object in ``argv[1]``, answers with JSON lines on
stdout, reads commands (one word a line) on stdin and ends by itself: on ``stop``, when
stdin closes (the parent went away) or at the job's ``deadline`` (epoch seconds),
whichever comes first.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any


def job() -> dict[str, Any]:
    """The job the parent gave this process."""
    loaded: dict[str, Any] = json.loads(sys.argv[1])
    return loaded


def raise_fd_limit() -> int:
    """Raise the soft open-file limit to the hard one; the new soft limit."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def run_load(run: Callable[[dict[str, Any]], Coroutine[Any, Any, None]], grace_s: float) -> None:
    """Run a load generator's ``run(job())`` (on uvloop if installed) with the open-file
    limit raised, and exit: 0 when done, 3 if still running ``grace_s`` past the deadline.
    """
    spec = job()
    raise_fd_limit()
    watchdog = threading.Timer(float(spec["deadline"]) - time.time() + grace_s, os._exit, (3,))
    watchdog.daemon = True
    watchdog.start()
    try:
        import uvloop  # optional: the load generator's speed only
    except ImportError:
        asyncio.run(run(spec))
    else:
        uvloop.run(run(spec))
    os._exit(0)


def reply(**fields: Any) -> None:
    """One JSON line to the parent."""
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def rss_kb(pid: int | str = "self") -> int:
    """The resident set size of process ``pid`` in KiB (``VmRSS``)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU time of process ``pid`` so far (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def all_cpu() -> dict[int, tuple[str, float]]:
    """Every process's name (``comm``) and CPU seconds so far, by PID."""
    found: dict[int, tuple[str, float]] = {}
    hz = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                raw = stat.read()
        except OSError:
            continue  # gone meanwhile
        name, rest = raw.split("(", 1)[1].rsplit(")", 1)
        fields = rest.split()
        found[int(entry)] = (name, (int(fields[11]) + int(fields[12])) / hz)
    return found


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far (``/proc/stat``)."""
    with open("/proc/stat") as stat:
        ticks = [int(value) for value in stat.readline().split()[1:]]
    idle = ticks[3] + ticks[4]  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - idle) / hz, sum(ticks) / hz


async def commands(deadline: float) -> AsyncIterator[str]:
    """The parent's commands; ends on EOF, on ``stop`` and at ``deadline``."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        left = deadline - time.time()
        if left <= 0:
            say("deadline reached, stopping")
            return
        try:
            line = await asyncio.wait_for(reader.readline(), left)
        except TimeoutError:
            say("deadline reached, stopping")
            return
        word = line.decode().strip()
        if not line or word == "stop":
            return
        if word:
            yield word


def say(message: str) -> None:
    """A progress line on stderr, marked with the process's role."""
    role = sys.argv[0].rsplit("/", 1)[-1].removeprefix("_events_").removesuffix(".py")
    print(f"[bench {time.strftime('%H:%M:%S')} {role}] {message}", file=sys.stderr, flush=True)
