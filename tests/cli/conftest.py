"""Point the command line at a test's databases through the environment, as an operator would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from azora.settings import Settings

ApplySettings = Callable[[Settings], Settings]


@pytest.fixture(autouse=True)
def _wide_plain_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tables render one line per row without colour codes; a stray ``.azora`` stays in tmp."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "400")
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def use_settings(monkeypatch: pytest.MonkeyPatch) -> ApplySettings:
    """Export a :class:`Settings`' database location as ``AZORA_*`` variables."""

    def apply(settings: Settings) -> Settings:
        monkeypatch.setenv("AZORA_ENV", "test")
        if settings.database_url is None:
            monkeypatch.setenv("AZORA_DATA_DIR", str(settings.data_dir))
        else:
            monkeypatch.setenv("AZORA_DATABASE_URL", settings.database_url)
            monkeypatch.setenv("AZORA_DB_NAME_PREFIX", settings.db_name_prefix)
        return settings

    return apply


@pytest.fixture
def cli_settings(fresh_settings: Settings, use_settings: ApplySettings) -> Settings:
    """Nine databases that do not exist yet, configured for the CLI through the environment."""
    return use_settings(fresh_settings)
