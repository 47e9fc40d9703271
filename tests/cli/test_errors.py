"""Expected failures print one clear ``error:`` line (and a hint), exit 1, never a traceback."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from azora.settings import Settings
from azora.types import ServiceName
from tests.cli.helpers import (
    SERVICE_NAMES,
    assert_clean_failure,
    downgrade_to_base,
    execute_sql,
    invoke,
    total_rows,
)

UNREACHABLE = "postgresql://postgres@127.0.0.1:1"
UNREACHABLE_WITH_PASSWORD = "postgresql://postgres:s3cret@127.0.0.1:1"


def test_unknown_service_is_named_with_the_valid_ones() -> None:
    result = invoke("db", "status", "nosuch")
    line = assert_clean_failure(result)
    assert "unknown service 'nosuch'" in line
    for name in SERVICE_NAMES:
        assert name in result.stderr


@pytest.mark.parametrize("url", [UNREACHABLE, UNREACHABLE_WITH_PASSWORD])
def test_unreachable_server(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZORA_DATABASE_URL", url)
    result = invoke("db", "setup")
    line = assert_clean_failure(result)
    assert "cannot reach" in line
    assert "connection refused" in line
    assert "127.0.0.1:1" in line
    assert "s3cret" not in result.output
    if url == UNREACHABLE_WITH_PASSWORD:
        assert "postgres:***@127.0.0.1:1" in line


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("not a url", "AZORA_DATABASE_URL is not a database URL"),
        ("mysql://x@y/z", "AZORA_DATABASE_URL uses unsupported scheme 'mysql'"),
        ("sqlite:///one.db", "AZORA_DATABASE_URL must be a PostgreSQL server URL"),
    ],
)
def test_malformed_database_url(url: str, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZORA_DATABASE_URL", url)
    line = assert_clean_failure(invoke("db", "setup"))
    assert expected in line


def test_wrong_credentials(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = make_url(postgres_url).set(username="no_such_role_xyz", password=None, database=None)
    monkeypatch.setenv("AZORA_DATABASE_URL", url.render_as_string(hide_password=False))
    line = assert_clean_failure(invoke("db", "setup"))
    # A trust/peer server names the missing role; a password server refuses the password.
    assert "refused the login" in line or "refused the password" in line
    assert "no_such_role_xyz" in line


def test_seeding_an_unmigrated_database(cli_settings: Settings) -> None:
    assert invoke("db", "setup").exit_code == 0
    downgrade_to_base(cli_settings, ServiceName.HEALTH)
    result = invoke("db", "seed")
    line = assert_clean_failure(result)
    assert "health database is not migrated" in line
    assert "azora db setup" in result.stderr
    # Every database is checked before any is written: auth (seeded first) stays empty.
    assert total_rows(cli_settings, skip=ServiceName.HEALTH) == 0


def test_migrating_from_an_unknown_revision(cli_settings: Settings) -> None:
    assert invoke("db", "setup").exit_code == 0
    execute_sql(
        cli_settings,
        ServiceName.HEALTH,
        "UPDATE alembic_version SET version_num = 'ffffffffffff'",
    )
    line = assert_clean_failure(invoke("db", "migrate"))
    assert "health database" in line
    assert "'ffffffffffff'" in line
    assert "does not know" in line


@pytest.mark.parametrize(
    "args",
    [
        ["db", "health"],
        ["db", "status"],
        ["db", "setup"],
        ["db", "migrate"],
        ["up"],
        ["db", "seed"],
        ["db", "reset", "--yes"],
    ],
    ids=" ".join,
)
def test_production_without_secrets(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AZORA_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AZORA_ENV", "production")
    line = assert_clean_failure(invoke(*args))
    assert line.startswith("error: invalid configuration")
    assert "AZORA_JWT_SECRET" in line
    assert not (tmp_path / "data").exists()


# The installed console script, in a real process: exit code, stderr, no traceback.


def _azora_script() -> str:
    beside = Path(sys.executable).with_name("azora")
    script = str(beside) if beside.exists() else shutil.which("azora")
    if script is None:
        pytest.fail("the `azora` console script is not installed next to the interpreter")
    return script


def _run_script(
    args: list[str], tmp_path: Path, **azora_env: str
) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AZORA_") and k not in {"FORCE_COLOR", "COLUMNS"}
    }
    env["AZORA_DATA_DIR"] = str(tmp_path / "data")
    env.update(azora_env)
    return subprocess.run(
        [_azora_script(), *args],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _assert_one_error(process: subprocess.CompletedProcess[str]) -> str:
    assert process.returncode == 1, process
    assert "Traceback" not in process.stdout + process.stderr
    lines = process.stderr.strip().splitlines()
    assert lines, process
    assert lines[0].startswith("error: "), process.stderr
    assert len(lines) <= 2, process.stderr
    assert all(line.startswith("hint: ") for line in lines[1:]), process.stderr
    return lines[0]


def test_script_unknown_service(tmp_path: Path) -> None:
    line = _assert_one_error(_run_script(["db", "status", "nosuch"], tmp_path))
    assert "unknown service 'nosuch'" in line


def test_script_unreachable_server_masks_the_password(tmp_path: Path) -> None:
    process = _run_script(["db", "setup"], tmp_path, AZORA_DATABASE_URL=UNREACHABLE_WITH_PASSWORD)
    line = _assert_one_error(process)
    assert "cannot reach" in line
    assert "connection refused" in line
    assert "***" in line
    assert "s3cret" not in process.stdout + process.stderr


def test_script_production_without_secrets(tmp_path: Path) -> None:
    process = _run_script(["db", "health"], tmp_path, AZORA_ENV="production")
    line = _assert_one_error(process)
    assert "AZORA_JWT_SECRET" in line
    assert not (tmp_path / "data").exists()
