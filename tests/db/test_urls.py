"""Configured database URLs: parsed into a target, or refused with a readable, masked error."""

from __future__ import annotations

import pytest

from azora.db.urls import mask_passwords, parse_url
from azora.errors import ConfigurationError

VARIABLE = "AZORA_DATABASE_URL"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgresql://app:s3cret@db.example:abc/azora", "is not a database URL"),
        ("postgresql://app:s3cret@db.example:/azora", "is not a database URL"),
        ("postgresql://app:s3cret@[::1/azora", "is not a database URL"),
        ("postgresql://app:s3cret@db.example:5432:5433/azora", "is not a database URL"),
        ("postgresql://app:s3cret@db.example:99999", "has port 99999, outside 1-65535"),
        ("postgresql://app:s3cret@db.example:0", "has port 0, outside 1-65535"),
        ("postgresql://app:s3cret@db.example/x?foo=bar", "carries the unknown option 'foo'"),
        ("postgresql://app:s3cret@db.example/x?sslmode=sometimes", "option 'sslmode' must be"),
        ("sqlite:///one.db?mode=ro", "a SQLite URL takes none"),
    ],
)
def test_a_malformed_url_is_a_configuration_error_naming_the_variable(
    raw: str, expected: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_url(raw, variable=VARIABLE)
    assert caught.value.message.startswith(VARIABLE)
    assert expected in caught.value.message
    assert "s3cret" not in str(caught.value)


def test_a_bracketed_ipv6_host_and_a_port_parse() -> None:
    url = parse_url("postgresql://app:s3cret@[::1]:6543/azora", variable=VARIABLE)
    assert (url.host, url.port, url.drivername) == ("::1", 6543, "postgresql+asyncpg")


def test_libpq_sslmode_becomes_the_drivers_ssl_option() -> None:
    url = parse_url("postgresql://app@db.example/x?sslmode=require", variable=VARIABLE)
    assert dict(url.query) == {"ssl": "require"}


def test_mask_passwords_hides_every_password_in_a_text() -> None:
    text = "at postgresql://app:s3cret@h/db and redis://:pw2@h:6379/0, not nats://h:4222"
    assert mask_passwords(text) == (
        "at postgresql://app:***@h/db and redis://:***@h:6379/0, not nats://h:4222"
    )
