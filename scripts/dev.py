#!/usr/bin/env python3
"""The project's task entry: bootstraps ``.venv`` from the lock file, then runs a task.

    python3 scripts/dev.py run     # set up and seed the embedded databases, then azora serve
    python3 scripts/dev.py test    # the test suite (pytest; extra arguments pass through)
    python3 scripts/dev.py lint    # ruff and mypy
    python3 scripts/dev.py help

Needs only Python 3.11+. The environment is rebuilt when ``pyproject.toml`` or
``requirements.lock`` changes. ``run`` and ``test`` then become the task's process, so
Ctrl-C and other signals reach it directly and its exit code is this command's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import venv
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".installed"
INPUTS = (ROOT / "pyproject.toml", ROOT / "requirements.lock")

TASKS = {
    "run": "set up and seed the databases (first run), then serve live events until Ctrl-C",
    "test": "run the test suite (arguments after `test` go to pytest)",
    "lint": "ruff check, ruff format --check and mypy --strict",
    "help": "show this list",
}


def _say(message: str) -> None:
    print(f"[dev] {message}", file=sys.stderr, flush=True)


def ensure_environment() -> None:
    """Create or refresh .venv with the locked dependencies and the project (editable)."""
    if STAMP.exists() and all(STAMP.stat().st_mtime >= p.stat().st_mtime for p in INPUTS):
        return
    if not (BIN / "python").exists():
        _say(f"creating {VENV.relative_to(ROOT)}")
        venv.create(VENV, with_pip=True)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _say("installing locked dependencies (first run takes a minute)")
    subprocess.run([*pip, "-r", str(ROOT / "requirements.lock")], check=True)
    subprocess.run([*pip, "--no-deps", "-e", str(ROOT)], check=True)
    STAMP.touch()


#: The signals :func:`run_forwarding` passes on (those this platform has).
FORWARDED = [getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n)]


def _become(command: list[str]) -> int:
    """Run ``command`` in place of this process (POSIX), else as :func:`run_forwarding`.

    Nothing stands between the command and its signals then: a Ctrl-C in the terminal
    reaches it once, a signal sent to this process is its signal, and its exit code is
    this process's. Returns only where a process cannot be replaced (Windows).
    """
    if os.name == "nt":
        return run_forwarding(command)
    os.chdir(ROOT)
    os.execv(command[0], command)


def run_forwarding(command: list[str]) -> int:
    """Run ``command`` in the project's root to its end; its exit code (128 + N when
    signal N ended it).

    SIGINT, SIGTERM and SIGHUP sent to this process are passed on to the command, once
    each, and never end this process: the command stops as it chooses, then its code is
    returned. On POSIX the command has a process group of its own, so a Ctrl-C in the
    terminal (sent to this process's group) reaches it only through here, once; on
    Windows the console sends Ctrl-C to the command itself and nothing is passed on.
    """
    posix = os.name != "nt"
    child: subprocess.Popen[bytes] | None = None
    early: list[int] = []  # arrived before the command started

    def forward(signum: int, frame: FrameType | None) -> None:
        if child is None:
            early.append(signum)
        elif posix:
            child.send_signal(signum)  # a no-op once it has exited

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED}
    try:
        child = subprocess.Popen(command, cwd=ROOT, process_group=0 if posix else None)
        for signum in early:
            forward(signum, None)
        code = child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 128 - code if code < 0 else code


def main(argv: list[str]) -> int:
    """Run the task named by ``argv[0]``; returns its exit code."""
    if sys.version_info < (3, 11):  # noqa: UP036 - a plain `python3` may be older
        _say(f"Python 3.11 or newer is required (this is {sys.version.split()[0]})")
        return 2
    task, rest = (argv[0], argv[1:]) if argv else ("help", [])
    if task not in TASKS or task == "help":
        width = max(map(len, TASKS))
        print("usage: python3 scripts/dev.py TASK [ARGS...]\n")
        print("\n".join(f"  {name:<{width}}  {text}" for name, text in TASKS.items()))
        return 0 if task == "help" else 2
    ensure_environment()
    if task == "run":
        return _become([str(BIN / "azora"), "serve", *rest])
    if task == "test":
        return _become([str(BIN / "pytest"), *rest])
    for command in (
        [str(BIN / "ruff"), "check", "src", "tests", "scripts", "benchmarks"],
        [str(BIN / "ruff"), "format", "--check", "src", "tests", "scripts", "benchmarks"],
        [str(BIN / "mypy")],
    ):
        if code := run_forwarding(command):
            return code
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:  # Ctrl-C while the environment was being built
        sys.exit(130)
