"""``scripts/dev.py`` (and ``make run`` over it) as a user runs them: stopped with a signal,
the task stops the way it chose and nothing else is printed.

dev.py runs here with ``-I -S``: the standard library only, as on a fresh machine.
"""

from __future__ import annotations

import contextlib
import os
import re
import runpy
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest

ROOT = Path(__file__).resolve().parent.parent
DEV = ROOT / "scripts" / "dev.py"
ANNOUNCE = re.compile(r"serving on http://127\.0\.0\.1:\d+")


@pytest.fixture
def ready_environment() -> None:
    """dev.py would rebuild .venv first if it were older than its inputs: not in a test."""
    dev = runpy.run_path(str(DEV))
    stamp: Path = dev["STAMP"]
    if not stamp.exists() or any(stamp.stat().st_mtime < p.stat().st_mtime for p in dev["INPUTS"]):
        reason = "the environment needs a rebuild first: python3 scripts/dev.py help"
        if os.environ.get("AZORA_REQUIRE_SERVICES") == "1":  # CI runs through dev.py
            pytest.fail(reason)
        pytest.skip(reason)


def _line(stream: IO[bytes] | None, deadline: float) -> str:
    """The next line of an unbuffered pipe ('' once it ends); fails at ``deadline``."""
    assert stream is not None
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            pytest.fail(f"no whole line in time; so far {line!r}")
        if not (byte := os.read(stream.fileno(), 1)):
            break
        line += byte
    return line.decode()


def _finish(process: subprocess.Popen[bytes], stdin: bytes | None = None) -> tuple[str, str]:
    """What ``process`` prints until it exits (within 30 s, else it is killed)."""
    try:
        out, err = process.communicate(stdin, timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return out.decode(), (err or b"").decode()


def _serving(command: list[str], data: Path) -> subprocess.Popen[bytes]:
    """``command`` (leading a process group of its own, as in a terminal) once it announced
    that it serves."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZORA_")}
    env.update(AZORA_DATA_DIR=str(data), AZORA_SERVE_PORT="0", AZORA_ENV="development")
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        bufsize=0,
        start_new_session=True,
    )
    printed: list[str] = []
    deadline = time.monotonic() + 60
    try:
        while line := _line(process.stdout, deadline):
            printed.append(line)
            if ANNOUNCE.search(line):
                return process
        pytest.fail("it ended before announcing itself:\n" + "".join(printed))
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise


@pytest.mark.parametrize("to", ["the process", "its process group"])
@pytest.mark.usefixtures("ready_environment")
def test_ctrl_c_stops_dev_py_run_gracefully_without_a_traceback(tmp_path: Path, to: str) -> None:
    # "its process group" is a Ctrl-C in the terminal; "the process" is `kill -INT PID`.
    process = _serving([sys.executable, "-I", "-S", str(DEV), "run"], tmp_path / "data")
    if to == "the process":
        os.kill(process.pid, signal.SIGINT)
    else:
        os.killpg(process.pid, signal.SIGINT)
    rest, _ = _finish(process)
    assert process.returncode == 130
    assert rest.strip() == "interrupted"  # once, after the graceful stop; no traceback
    assert not list((tmp_path / "data").glob("*-wal"))  # its databases were closed


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.usefixtures("ready_environment")
def test_ctrl_c_in_the_terminal_stops_make_run_without_an_error_line(tmp_path: Path) -> None:
    make = ["make", "-C", str(ROOT), "--no-print-directory", "run", f"PYTHON={sys.executable}"]
    process = _serving(make, tmp_path / "data")
    os.killpg(process.pid, signal.SIGINT)
    rest, _ = _finish(process)
    assert rest.strip() == "interrupted"  # no "make: *** ... Interrupt" nor "Error 130"
    assert process.returncode == -signal.SIGINT  # make itself was interrupted, and says so


#: A command that says whether it shares its parent's process group, reports each signal
#: it gets, then exits 3 once told to on stdin.
REPORTER = (
    "import os, signal, sys\n"
    "got = []\n"
    "def report(signum, frame):\n"
    "    got.append(signum)\n"
    # Not print(): a handler that runs while print('ready') still holds stdout's buffer
    # would re-enter it (RuntimeError) and end the command.
    "    os.write(1, (signal.Signals(signum).name + '\\n').encode())\n"
    "for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):\n"
    "    signal.signal(sig, report)\n"
    "print('ready', 'grouped' if os.getpgrp() == os.getpgid(os.getppid()) else 'alone',"
    " flush=True)\n"
    "sys.stdin.readline()\n"
    "print('received', len(got), flush=True)\n"
    "sys.exit(3)\n"
)


@pytest.mark.parametrize(
    ("sig", "to_group"),
    [
        (signal.SIGINT, False),
        (signal.SIGINT, True),  # a Ctrl-C in the terminal
        (signal.SIGTERM, False),
        (signal.SIGHUP, False),
    ],
)
def test_a_task_command_gets_each_signal_once_and_gives_its_exit_code(
    sig: signal.Signals, to_group: bool
) -> None:
    # How `dev.py lint` runs its commands one after the other.
    runner = (
        "import runpy, sys\n"
        f"dev = runpy.run_path({str(DEV)!r})\n"
        f"sys.exit(dev['run_forwarding']([sys.executable, '-c', {REPORTER!r}]))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", runner],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    try:
        # Alone in its group, a terminal's Ctrl-C reaches it through dev.py only: once.
        assert _line(process.stdout, deadline) == "ready alone\n"
        if to_group:
            os.killpg(process.pid, sig)
        else:
            os.kill(process.pid, sig)
        assert _line(process.stdout, deadline) == f"{sig.name}\n"
        out, err = _finish(process, b"done\n")
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert out == "received 1\n"
    assert err == ""
    assert process.returncode == 3
