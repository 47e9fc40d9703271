"""Set-up creates a password-less application role only where the server lets it in.

The local test server trusts its clients, so a password-less role is accepted there;
the refusals are shown by a role the server will not log in (``NOLOGIN``) and, for a
server that asks for a password, by the decision on the exception the driver raises.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError

from azora.catalog import SERVICES
from azora.db import lifecycle
from azora.db.admin import check_app_login, database_exists
from azora.db.engines import Databases
from azora.db.errors import app_login_refusal
from azora.db.urls import resolve_target
from azora.errors import ConfigurationError
from azora.settings import Settings
from azora.types import ServiceName
from tests import databases as dbs

WHERE = "postgresql://azora_app@db.example:5432/azora_auth"


def _wrapped(error: BaseException) -> DBAPIError:
    """``error`` as SQLAlchemy hands it over from a failed connection."""
    return DBAPIError("connect", None, error)


def test_a_server_that_asks_for_a_password_is_refused_with_the_setting_to_use() -> None:
    asked = asyncpg.InvalidPasswordError('password authentication failed for user "azora_app"')
    refusal = app_login_refusal(_wrapped(asked), role="azora_app", where=WHERE)
    assert isinstance(refusal, ConfigurationError)
    assert refusal.message == (
        f"the server at {WHERE} asks the application role 'azora_app' for a password,"
        " and AZORA_DB_APP_PASSWORD is not set"
    )
    assert refusal.hint is not None
    assert "AZORA_DB_APP_PASSWORD" in refusal.hint


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.InvalidAuthorizationSpecificationError('role "azora_app" does not exist'),
        asyncpg.InvalidCatalogNameError('database "azora_auth" does not exist'),
        ConnectionRefusedError(111, "Connection refused"),
    ],
    ids=["role missing", "database missing", "unreachable"],
)
def test_failures_past_authentication_are_left_to_set_up(error: BaseException) -> None:
    assert app_login_refusal(_wrapped(error), role="azora_app", where=WHERE) is None


def test_another_refusal_of_the_role_is_reported_as_the_server_says() -> None:
    refused = asyncpg.InvalidAuthorizationSpecificationError(
        'no pg_hba.conf entry for host "10.0.0.5", user "azora_app", database "azora_auth"'
    )
    refusal = app_login_refusal(_wrapped(refused), role="azora_app", where=WHERE)
    assert isinstance(refusal, ConfigurationError)
    assert "refuses the application role 'azora_app': no pg_hba.conf entry" in refusal.message


# On the real server (trust authentication).

only_postgresql = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


@pytest.fixture
def nologin_role(postgres_url: str, fresh_settings: Settings) -> Iterator[str]:
    """A role that exists but may not log in; dropped afterwards, after the test's
    databases (which would hold its privileges, had set-up granted any)."""
    role = f"azt_nologin_{uuid.uuid4().hex[:12]}"

    async def run(sql: str) -> None:
        connection = await asyncpg.connect(postgres_url)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(run(f'CREATE ROLE "{role}" NOLOGIN'))
    yield role
    asyncio.run(dbs.drop_prefixed(postgres_url, fresh_settings.db_name_prefix))
    asyncio.run(run(f'DROP ROLE IF EXISTS "{role}"'))


@only_postgresql
async def test_a_trusting_server_accepts_a_password_less_role(fresh_settings: Settings) -> None:
    absent = fresh_settings.model_copy(update={"db_app_role": f"azt_new_{uuid.uuid4().hex[:8]}"})
    for settings in (fresh_settings, absent):  # the usual role, and one not created yet
        assert settings.db_app_password is None
        await check_app_login(resolve_target(settings, ServiceName.AUTH), settings)


@only_postgresql
async def test_setup_refuses_a_role_the_server_will_not_log_in_and_writes_nothing(
    fresh_settings: Settings, nologin_role: str
) -> None:
    settings = fresh_settings.model_copy(update={"db_app_role": nologin_role})
    target = resolve_target(settings, ServiceName.AUTH)
    async with Databases(settings) as databases:
        with pytest.raises(ConfigurationError) as caught:
            await lifecycle.setup(databases, SERVICES[ServiceName.AUTH].migrations)
    assert f"refuses the application role {nologin_role!r}" in caught.value.message
    assert "not permitted to log in" in caught.value.message
    assert not await database_exists(target, settings)
