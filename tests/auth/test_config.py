"""The auth configuration comes from the ``AZORA_JWT_*`` and ``AZORA_AUTH_*`` settings."""

from __future__ import annotations

import datetime as dt

import pytest

from azora.auth.config import AuthConfig, LockoutPolicy
from azora.settings import DEV_ENCRYPTION_KEY, DEV_JWT_SECRET, load_settings


def test_settings_become_the_auth_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZORA_AUTH_ACCESS_TOKEN_TTL_S", "300")
    monkeypatch.setenv("AZORA_AUTH_LOCKOUT_THRESHOLD", "3")
    monkeypatch.setenv("AZORA_JWT_RETIRED_SECRETS", "an older secret of at least 32 chars")
    config = AuthConfig.from_settings(load_settings())
    assert config.access_token_ttl == dt.timedelta(minutes=5)
    assert config.lockout.account_threshold == 3
    assert config.jwt_retired_secrets == ("an older secret of at least 32 chars",)
    assert (config.jwt_secret, config.encryption_key) == (DEV_JWT_SECRET, DEV_ENCRYPTION_KEY)
    assert DEV_JWT_SECRET not in repr(config)
    assert DEV_ENCRYPTION_KEY not in repr(config)


def test_the_defaults() -> None:
    config = AuthConfig.from_settings(load_settings())
    assert config.access_token_ttl == dt.timedelta(minutes=15)
    assert config.session_idle_ttl == dt.timedelta(days=7)
    assert config.session_max_age == dt.timedelta(days=30)
    assert config.password_reset_ttl == dt.timedelta(minutes=30)
    assert config.lockout == LockoutPolicy()


def test_the_lockout_doubles_up_to_its_maximum() -> None:
    policy = LockoutPolicy(
        account_threshold=5, base=dt.timedelta(seconds=30), maximum=dt.timedelta(minutes=5)
    )
    delays = [policy.delay(n, 5).total_seconds() for n in range(3, 11)]
    assert delays == [0, 0, 30, 60, 120, 240, 300, 300]
    assert policy.delay(10_000, 5) == dt.timedelta(minutes=5)
