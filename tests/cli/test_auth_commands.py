"""``azora auth set-password`` against real databases on both backends."""

from __future__ import annotations

import asyncio

import pytest

from azora.auth.errors import InvalidCredentials
from azora.auth.service import AuthService
from azora.db.engines import Databases
from azora.db.seeding import DEV_SEED_PASSWORD, DEV_STUDENT_EMAIL
from azora.settings import Settings
from tests.cli.helpers import assert_clean_failure, invoke

NEW_PASSWORD = "a brand new operator phrase"


def _ready() -> None:
    for args in (("db", "setup"), ("db", "seed")):
        result = invoke(*args)
        assert result.exit_code == 0, result.output


def _signs_in(settings: Settings, email: str, password: str) -> bool:
    async def go() -> bool:
        async with Databases(settings) as databases:
            try:
                await AuthService(databases).login(email, password, "127.0.0.1", "tests")
            except InvalidCredentials:
                return False
            return True

    return asyncio.run(go())


def test_set_password_replaces_it_and_signs_the_account_out(cli_settings: Settings) -> None:
    _ready()
    assert _signs_in(cli_settings, DEV_STUDENT_EMAIL, DEV_SEED_PASSWORD)
    result = invoke(
        "auth", "set-password", " Student@Azora.World ", "--password-stdin", stdin=NEW_PASSWORD
    )
    assert result.exit_code == 0, result.output
    assert f"password set for {DEV_STUDENT_EMAIL}; 1 session(s) signed out" in result.stdout
    assert NEW_PASSWORD not in result.output
    assert not _signs_in(cli_settings, DEV_STUDENT_EMAIL, DEV_SEED_PASSWORD)
    assert _signs_in(cli_settings, DEV_STUDENT_EMAIL, NEW_PASSWORD)


@pytest.mark.parametrize(
    ("email", "stdin", "expected"),
    [
        (DEV_STUDENT_EMAIL, "short", "at least 12 characters"),
        ("nobody@azora.world", NEW_PASSWORD, "no account has the email nobody@azora.world"),
        (DEV_STUDENT_EMAIL, "", "the new password is empty"),
    ],
    ids=["weak", "unknown", "empty"],
)
def test_set_password_refuses_bad_input_and_changes_nothing(
    cli_settings: Settings, email: str, stdin: str, expected: str
) -> None:
    _ready()
    line = assert_clean_failure(
        invoke("auth", "set-password", email, "--password-stdin", stdin=stdin)
    )
    assert expected in line
    assert _signs_in(cli_settings, DEV_STUDENT_EMAIL, DEV_SEED_PASSWORD)


def test_set_password_without_a_terminal_asks_for_password_stdin(
    cli_settings: Settings,
) -> None:
    result = invoke("auth", "set-password", DEV_STUDENT_EMAIL, stdin=NEW_PASSWORD)
    line = assert_clean_failure(result)
    assert "no terminal" in line
    assert "--password-stdin" in result.stderr
