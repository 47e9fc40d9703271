"""The registry refuses unknown types, malformed payloads and misplaced subjects, clearly."""

from __future__ import annotations

import uuid

import pytest
from pydantic import BaseModel, ConfigDict

from azora.errors import InvalidInput
from azora.events import (
    CATALOG,
    Audience,
    EventType,
    InvalidEventPayload,
    InvalidEventSubject,
    Registry,
    UnknownEventType,
)
from azora.events.fields import Payload

USER = uuid.UUID("0190f0a2-0000-7000-8000-000000000002")
SESSION = uuid.UUID("0190f0a2-0000-7000-8000-000000000005")


class Ping(Payload):
    n: int


def _login(**changes: object) -> dict[str, object]:
    return {"user_id": str(USER), "session_id": str(SESSION), "method": "password", **changes}


def test_an_unknown_type_is_refused_by_name() -> None:
    with pytest.raises(UnknownEventType, match=r"'finance\.wallet\.exploded'") as caught:
        CATALOG.validate("finance.wallet.exploded", {})
    assert isinstance(caught.value, InvalidInput)
    assert caught.value.code == "unknown_event_type"


def test_an_unknown_version_is_refused_with_the_known_ones() -> None:
    with pytest.raises(UnknownEventType, match=r"system.user.login has no version 2 \(known: 1\)"):
        CATALOG.validate("system.user.login", _login(), version=2)


def test_a_valid_payload_comes_back_normalised() -> None:
    payload = _login(user_id=USER)  # a UUID object becomes its string
    assert CATALOG.validate("system.user.login", payload) == _login()


def test_a_missing_key_names_its_path() -> None:
    payload = _login()
    del payload["session_id"]
    with pytest.raises(InvalidEventPayload) as caught:
        CATALOG.validate("system.user.login", payload)
    assert (caught.value.path, caught.value.reason) == ("session_id", "Field required")
    assert str(caught.value).startswith("invalid system.user.login payload: session_id: Field")


def test_a_misspelt_key_is_refused() -> None:
    with pytest.raises(InvalidEventPayload, match="methd: Extra inputs are not permitted"):
        CATALOG.validate("system.user.login", _login(methd="password"))


def test_a_bad_value_names_its_path_and_every_problem_is_listed() -> None:
    with pytest.raises(InvalidEventPayload) as caught:
        CATALOG.validate("system.user.login", _login(user_id="not-a-uuid", session_id=None))
    assert [path for path, _ in caught.value.problems] == ["user_id", "session_id"]
    assert caught.value.code == "invalid_event_payload"


def test_a_nested_path_is_dotted() -> None:
    alert = {"severity": "warning", "message": "disk", "details": {"free": [1]}}
    with pytest.raises(InvalidEventPayload, match=r"details\.free"):
        CATALOG.validate("system.alert", alert)


def test_a_payload_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(InvalidEventPayload, match="the payload is a JSON object"):
        CATALOG.validate("system.alert", ["not", "an", "object"])


def test_a_user_scoped_type_needs_its_subject() -> None:
    assert CATALOG.validate_event("system.user.login", _login(), subject=USER) == _login()
    with pytest.raises(InvalidEventSubject, match=r"subject \(the user's id\) is required"):
        CATALOG.validate_event("system.user.login", _login(), subject=None)


def test_a_public_type_has_no_subject() -> None:
    alert = {"severity": "info", "message": "deploy finished"}
    assert CATALOG.validate_event("system.alert", alert, subject=None) == {
        **alert,
        "component": None,
        "details": {},
    }
    with pytest.raises(InvalidEventSubject, match=r"system\.alert is public"):
        CATALOG.validate_event("system.alert", alert, subject=USER)


def test_registering_checks_name_version_strictness_and_duplicates() -> None:
    registry = Registry()
    registry.register(EventType("test.ping", Ping, Audience.PUBLIC, "a ping"))
    registry.register(EventType("test.ping", Ping, Audience.PUBLIC, "a ping", version=2))
    assert registry.names() == ["test.ping"]
    assert registry.get("test.ping").version == 2
    assert "test.ping" in registry
    with pytest.raises(ValueError, match="registered already"):
        registry.register(EventType("test.ping", Ping, Audience.PUBLIC, "again"))
    for name in ("Test.Ping", "ping", "test..ping", "test.*"):
        with pytest.raises(ValueError, match="dotted event name"):
            registry.register(EventType(name, Ping, Audience.PUBLIC, "bad name"))
    with pytest.raises(ValueError, match="versions start at 1"):
        registry.register(EventType("test.pong", Ping, Audience.PUBLIC, "v0", version=0))

    class Loose(BaseModel):
        model_config = ConfigDict(extra="ignore")

    with pytest.raises(ValueError, match="forbid extra keys"):
        registry.register(EventType("test.loose", Loose, Audience.PUBLIC, "loose"))


def test_matching_lists_the_registered_names_a_pattern_selects() -> None:
    assert CATALOG.matching("finance.stake.*") == [
        "finance.stake.created",
        "finance.stake.released",
    ]
    assert CATALOG.matching("notification.>") == ["notification.created", "notification.read"]
    assert CATALOG.matching("*.user.>") == [
        "system.user.login",
        "system.user.mfa_enabled",
        "system.user.registered",
    ]
