"""Settings from ``AZORA_*`` variables, and where each service's database resolves to."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from azora.db.urls import resolve_target
from azora.errors import ConfigurationError
from azora.settings import DEV_ENCRYPTION_KEY, DEV_JWT_SECRET, load_settings
from azora.types import ALL_SERVICES, Environment, ServiceName


def test_embedded_default_is_one_sqlite_file_per_service(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.env is Environment.DEVELOPMENT
    for service in ALL_SERVICES:
        target = resolve_target(settings, service)
        assert target.backend == "sqlite"
        assert target.url.drivername == "sqlite+aiosqlite"
        assert target.sqlite_path == tmp_path.resolve() / ".azora" / f"{service}.db"


def test_data_dir_moves_the_sqlite_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZORA_DATA_DIR", str(tmp_path / "elsewhere"))
    settings = load_settings()
    for service in ALL_SERVICES:
        target = resolve_target(settings, service)
        assert target.sqlite_path == (tmp_path / "elsewhere" / f"{service}.db").resolve()
        assert target.display == str(target.sqlite_path)


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_database_url_gives_prefixed_databases_on_that_server(
    scheme: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZORA_DATABASE_URL", f"{scheme}://app:pw@db.example:6543")
    monkeypatch.setenv("AZORA_DB_NAME_PREFIX", "acme")
    settings = load_settings()
    for service in ALL_SERVICES:
        target = resolve_target(settings, service)
        assert target.backend == "postgresql"
        assert target.url.drivername == "postgresql+asyncpg"
        assert (target.url.host, target.url.port, target.url.username) == (
            "db.example",
            6543,
            "app",
        )
        assert target.database == f"acme_{service}"
        assert target.short == f"db.example:6543/acme_{service}"


def test_default_prefix_is_azora(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZORA_DATABASE_URL", "postgresql://app@db.example/ignored")
    settings = load_settings()
    assert resolve_target(settings, ServiceName.MINT).database == "azora_mint"


def test_a_service_override_applies_to_that_service_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZORA_DATABASE_URL", "postgresql://app@db.example:5432")
    monkeypatch.setenv("AZORA_MINT_DATABASE_URL", "postgresql://ledger@ledger.example:5433/money")
    settings = load_settings()
    mint = resolve_target(settings, ServiceName.MINT)
    assert (mint.url.host, mint.url.port, mint.database) == ("ledger.example", 5433, "money")
    assert mint.url.drivername == "postgresql+asyncpg"
    for service in ALL_SERVICES:
        if service is not ServiceName.MINT:
            target = resolve_target(settings, service)
            assert (target.url.host, target.database) == ("db.example", f"azora_{service}")

    monkeypatch.setenv("AZORA_MINT_DATABASE_URL", f"sqlite:///{tmp_path / 'mint.db'}")
    mint = resolve_target(load_settings(), ServiceName.MINT)
    assert mint.backend == "sqlite"
    assert mint.url.drivername == "sqlite+aiosqlite"
    assert mint.sqlite_path == tmp_path / "mint.db"


@pytest.mark.parametrize(
    ("variable", "raw", "expected"),
    [
        ("AZORA_DATABASE_URL", "not a url", "AZORA_DATABASE_URL is not a database URL"),
        ("AZORA_DATABASE_URL", "mysql://x@y/z", "unsupported scheme 'mysql'"),
        ("AZORA_DATABASE_URL", "sqlite:///one.db", "must be a PostgreSQL server URL"),
        ("AZORA_MINT_DATABASE_URL", "oracle://x@y/z", "AZORA_MINT_DATABASE_URL uses"),
        ("AZORA_MINT_DATABASE_URL", "sqlite://", "must name a SQLite file"),
    ],
)
def test_bad_urls_fail_when_resolved(
    variable: str, raw: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, raw)
    settings = load_settings()
    with pytest.raises(ConfigurationError, match=expected):
        resolve_target(settings, ServiceName.MINT)


def test_display_masks_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZORA_DATABASE_URL", "postgresql://app:s3cret@db.example:5432")
    target = resolve_target(load_settings(), ServiceName.AUTH)
    assert target.display == "postgresql://app:***@db.example:5432/azora_auth"
    assert "s3cret" not in target.display
    assert target.url.password == "s3cret"  # still there for connecting


def _production(monkeypatch: pytest.MonkeyPatch, jwt: str | None, key: str | None) -> None:
    monkeypatch.setenv("AZORA_ENV", "production")
    for name, value in (("AZORA_JWT_SECRET", jwt), ("AZORA_ENCRYPTION_KEY", key)):
        if value is not None:
            monkeypatch.setenv(name, value)


_GOOD = secrets.token_hex(20)


@pytest.mark.parametrize(
    ("jwt", "key", "expected"),
    [
        (None, None, "AZORA_JWT_SECRET must be set when AZORA_ENV=production"),
        ("   ", _GOOD, "AZORA_JWT_SECRET must be set"),
        (_GOOD, None, "AZORA_ENCRYPTION_KEY must be set when AZORA_ENV=production"),
        (DEV_JWT_SECRET, _GOOD, "AZORA_JWT_SECRET is the development placeholder"),
        (_GOOD, DEV_ENCRYPTION_KEY, "AZORA_ENCRYPTION_KEY is the development placeholder"),
        ("x" * 31, _GOOD, "AZORA_JWT_SECRET must be at least 32 characters"),
        (_GOOD, "y" * 31, "AZORA_ENCRYPTION_KEY must be at least 32 characters"),
    ],
)
def test_production_refuses_weak_secrets(
    jwt: str | None, key: str | None, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _production(monkeypatch, jwt, key)
    with pytest.raises(ConfigurationError, match=expected) as caught:
        load_settings()
    assert caught.value.hint is not None
    for secret in (jwt, key):
        if secret and secret.strip():
            assert secret not in str(caught.value)


def test_production_accepts_real_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    jwt, key = secrets.token_hex(20), secrets.token_hex(20)
    assert len(jwt) == len(key) == 40
    _production(monkeypatch, jwt, key)
    settings = load_settings()
    assert settings.env is Environment.PRODUCTION
    assert settings.jwt_secret_value() == jwt
    assert settings.encryption_key_value() == key
    assert jwt not in repr(settings)


def test_outside_production_the_placeholders_are_used() -> None:
    settings = load_settings()
    assert settings.jwt_secret_value() == DEV_JWT_SECRET
    assert settings.encryption_key_value() == DEV_ENCRYPTION_KEY


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        ("AZORA_DB_POOL_SIZE", "0"),
        ("AZORA_DB_POOL_SIZE", "many"),
        ("AZORA_DB_MAX_OVERFLOW", "-1"),
        ("AZORA_DB_CONNECT_TIMEOUT_S", "0"),
        ("AZORA_DB_STATEMENT_TIMEOUT_MS", "-5"),
        ("AZORA_DB_NAME_PREFIX", "Bad-Prefix"),
        ("AZORA_DB_ECHO", "maybe"),
        ("AZORA_ENV", "staging"),
    ],
)
def test_invalid_values_name_the_variable(
    variable: str, raw: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, raw)
    with pytest.raises(ConfigurationError) as caught:
        load_settings()
    assert caught.value.message.startswith(f"invalid configuration: {variable}: ")
    assert caught.value.hint == "fix the AZORA_* environment variables"


def test_production_refuses_a_weak_retired_jwt_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    _production(monkeypatch, secrets.token_hex(20), secrets.token_hex(20))
    monkeypatch.setenv("AZORA_JWT_RETIRED_SECRETS", f"{secrets.token_hex(20)},short-one")
    with pytest.raises(ConfigurationError, match="every retired secret must be at least 32"):
        load_settings()
    monkeypatch.setenv("AZORA_JWT_RETIRED_SECRETS", f"{secrets.token_hex(20)}, ")
    assert len(load_settings().jwt_retired_secret_values()) == 1
    assert "short-one" not in repr(load_settings())


def test_retired_jwt_secrets_are_a_comma_separated_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().jwt_retired_secret_values() == ()
    monkeypatch.setenv("AZORA_JWT_RETIRED_SECRETS", " first-retired , second-retired ,")
    settings = load_settings()
    assert settings.jwt_retired_secret_values() == ("first-retired", "second-retired")
    assert "first-retired" not in repr(settings)


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        (
            {"AZORA_AUTH_SESSION_IDLE_TTL_S": "7200", "AZORA_AUTH_SESSION_MAX_AGE_S": "3600"},
            "AZORA_AUTH_SESSION_MAX_AGE_S must not be shorter",
        ),
        (
            {"AZORA_AUTH_LOCKOUT_BASE_S": "600", "AZORA_AUTH_LOCKOUT_MAX_S": "60"},
            "AZORA_AUTH_LOCKOUT_MAX_S must not be shorter",
        ),
        ({"AZORA_AUTH_ACCESS_TOKEN_TTL_S": "86400"}, "AZORA_AUTH_ACCESS_TOKEN_TTL_S"),
    ],
)
def test_inconsistent_auth_settings_are_refused(
    variables: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=expected):
        load_settings()
