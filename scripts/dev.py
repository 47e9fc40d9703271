#!/usr/bin/env python3
"""The project's task entry: bootstraps ``.venv`` from the lock file, then runs a task.

    python3 scripts/dev.py run     # set up and seed the embedded databases, then azora serve
    python3 scripts/dev.py test    # the test suite (pytest; extra arguments pass through)
    python3 scripts/dev.py lint    # ruff and mypy
    python3 scripts/dev.py help

Needs only Python 3.11+. The environment is rebuilt when ``pyproject.toml`` or
``requirements.lock`` changes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

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


def _exec(command: list[str]) -> int:
    return subprocess.run(command, cwd=ROOT).returncode


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
        return _exec([str(BIN / "azora"), "serve", *rest])
    if task == "test":
        return _exec([str(BIN / "pytest"), *rest])
    for command in (
        [str(BIN / "ruff"), "check", "src", "tests", "scripts", "benchmarks"],
        [str(BIN / "ruff"), "format", "--check", "src", "tests", "scripts", "benchmarks"],
        [str(BIN / "mypy")],
    ):
        if code := _exec(command):
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
