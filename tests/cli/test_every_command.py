"""Every ``azora`` command, under malformed settings, fails with one readable line.

The commands are found by walking the command tree, so a new one is covered the day it
is added (give its required parameters a harmless value in ``HARMLESS``). The bulk runs
in-process through the console script's own entry point (:func:`azora.cli.app.main`),
which is where an exception escaping a command would surface; a few run as real
processes of the installed script.
"""

from __future__ import annotations

import io
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from azora.cli.app import app, main
from azora.settings import get_settings
from tests.cli.test_errors import _run_script

SECRET = "s3cret"

#: Malformed settings, by what is wrong with them. Each makes every command that reads
#: the settings (or, for the first group, the database URLs) fail.
BAD_DATABASE_URLS = {
    "port not a number": {"AZORA_DATABASE_URL": f"postgresql://app:{SECRET}@db.example:abc/x"},
    "unclosed IPv6 bracket": {"AZORA_DATABASE_URL": f"postgresql://app:{SECRET}@[::1/x"},
    "port out of range": {"AZORA_DATABASE_URL": f"postgresql://app:{SECRET}@127.0.0.1:99999"},
    "unknown option": {"AZORA_DATABASE_URL": f"postgresql://app:{SECRET}@db.example/x?a=b"},
    "unsupported scheme": {"AZORA_DATABASE_URL": f"mysql://app:{SECRET}@db.example/x"},
}
BAD_SETTINGS = {
    "unknown environment": {"AZORA_ENV": "staging"},
    "pool size not a number": {"AZORA_DB_POOL_SIZE": "abc"},
    "negative timeout": {"AZORA_DB_CONNECT_TIMEOUT_S": "-1"},
    "events URL port": {"AZORA_EVENTS_URL": f"redis://:{SECRET}@events.example:abc/0"},
    "events URL scheme": {"AZORA_EVENTS_URL": f"kafka://app:{SECRET}@events.example"},
    "cache URL scheme": {"AZORA_CACHE_URL": f"memcached://app:{SECRET}@cache.example"},
    "cache URL bracket": {"AZORA_CACHE_URL": "redis://[::1:6379/0"},
}

#: A harmless value for each required parameter, by name (nothing exists to act on).
HARMLESS = {"service": "health", "message": "harmless", "email": "nobody@example.org"}
#: Options that make a command finish (or not ask), by command.
FINITE: dict[tuple[str, ...], list[str]] = {
    ("db", "reset"): ["--yes"],
    ("events", "relay"): ["--once"],
    ("events", "tail"): ["--count", "1"],
    ("auth", "set-password"): ["--password-stdin"],
}
#: Commands that read no settings at all.
SETTINGS_FREE = {("version",)}
#: Commands that read no database URL (they succeed whatever it is).
NO_DATABASE = {("version",), ("db", "makemigrations")}


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """The path of every command under ``command`` (a group has ``commands``)."""
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        yield path
        return
    for name, sub in sorted(subcommands.items()):
        yield from _walk(sub, (*path, name))


def _command(path: tuple[str, ...]) -> Any:
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command


def _argv(path: tuple[str, ...]) -> list[str]:
    """``path`` with harmless values for its required parameters."""
    args = list(path)
    for param in _command(path).params:
        if not param.required:
            continue
        assert param.name in HARMLESS, f"azora {' '.join(path)}: add {param.name!r} to HARMLESS"
        if param.param_type_name == "option":
            args += [param.opts[0], HARMLESS[param.name]]
        else:
            args.append(HARMLESS[param.name])
    return [*args, *FINITE.get(path, [])]


COMMANDS = sorted(_walk(typer.main.get_command(app)))


def test_the_walk_finds_the_commands() -> None:
    assert {("db", "health"), ("mint", "verify"), ("serve",), ("events", "tail")} <= set(COMMANDS)
    assert len(COMMANDS) >= 20


def _main(
    argv: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """Run the console script's entry point in this process: exit code, stdout, stderr."""
    monkeypatch.setattr(sys, "argv", ["azora", *argv])
    monkeypatch.setattr(sys, "stdin", io.StringIO("a harmless passw0rd\n"))
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # typer installs its own
    get_settings.cache_clear()
    with pytest.raises(SystemExit) as exited:
        main()
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err


def _assert_readable_failure(argv: list[str], variable: str, code: int, out: str, err: str) -> None:
    """Exit 1 naming ``variable`` (an ``error:`` line, or a report's row), or 2 for usage;
    no traceback, no bug caught by the last resort, no password."""
    where = f"azora {' '.join(argv)} (exit {code}):\n{out}{err}"
    assert code in (1, 2), where
    assert "Traceback" not in out + err, where
    assert "internal error" not in err, where
    assert SECRET not in out + err, where
    if code == 1:
        assert variable in out + err, where
        lines = err.strip().splitlines()
        if lines:  # otherwise a report (``db status``) says it per database
            assert lines[0].startswith("error: "), where
            assert all(line.startswith("hint: ") for line in lines[1:]), where


@pytest.mark.parametrize("problem", [*BAD_DATABASE_URLS, *BAD_SETTINGS])
def test_every_command_fails_readably_on_malformed_settings(
    problem: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    monkeypatch.setenv("AZORA_DATA_DIR", str(tmp_path / "data"))
    environment = BAD_DATABASE_URLS.get(problem) or BAD_SETTINGS[problem]
    ((variable, value),) = environment.items()
    monkeypatch.setenv(variable, value)
    for path in COMMANDS:
        if path in SETTINGS_FREE or (problem in BAD_DATABASE_URLS and path in NO_DATABASE):
            continue
        argv = _argv(path)
        _assert_readable_failure(argv, variable, *_main(argv, monkeypatch, capsys))
    assert not (tmp_path / "data").exists() or problem in BAD_DATABASE_URLS


def test_commands_that_read_no_settings_still_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AZORA_DB_POOL_SIZE", "abc")
    for path in SETTINGS_FREE:
        code, _, err = _main(_argv(path), monkeypatch, capsys)
        assert code == 0, err


def test_a_bug_is_one_line_naming_the_file_with_its_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(f"unexpected state of postgresql://app:{SECRET}@db.example/x\nmore")

    monkeypatch.setattr("azora.cli.db.check_databases", broken)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("AZORA_DATA_DIR", str(tmp_path / "data"))
    code, out, err = _main(["db", "health"], monkeypatch, capsys)
    assert code == 1
    assert "Traceback" not in out + err
    assert SECRET not in out + err
    error, hint = err.strip().splitlines()
    assert error == (
        "error: internal error: RuntimeError: unexpected state of postgresql://app:***@db.example/x"
    )
    assert hint.startswith("hint: this is a bug in azora; the traceback is in ")
    (saved,) = tmp_path.glob("azora-error-*.txt")
    assert str(saved) in hint
    trace = saved.read_text()
    assert trace.startswith("Traceback")
    assert "RuntimeError" in trace
    assert "broken" in trace
    assert SECRET not in trace


# The installed script in real processes, for the cases first reported.
SCRIPT_CASES = [
    pytest.param(argv, environment, id=" ".join(argv))
    for argv, environment in (
        (["db", "health"], BAD_DATABASE_URLS["port not a number"]),
        (["mint", "verify"], BAD_DATABASE_URLS["unclosed IPv6 bracket"]),
        (["db", "status", "mint"], {"AZORA_MINT_DATABASE_URL": f"postgresql://a:{SECRET}@h:x/y"}),
        (["events", "relay", "--once"], BAD_SETTINGS["events URL port"]),
        (["serve"], BAD_SETTINGS["pool size not a number"]),
    )
]


@pytest.mark.parametrize(("argv", "environment"), SCRIPT_CASES)
def test_the_script_fails_readably_on_malformed_settings(
    argv: list[str], environment: dict[str, str], tmp_path: Path
) -> None:
    process = _run_script(argv, tmp_path, **environment)
    ((variable, _),) = environment.items()
    _assert_readable_failure(argv, variable, process.returncode, process.stdout, process.stderr)
    assert process.returncode == 1
