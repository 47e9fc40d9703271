"""Patterns select event names as NATS subjects do: ``*`` one token, ``>`` the rest."""

from __future__ import annotations

import pytest

from azora.events import InvalidPattern, matches, validate_pattern


@pytest.mark.parametrize(
    ("pattern", "name", "expected"),
    [
        ("finance.stake.created", "finance.stake.created", True),
        ("finance.stake.created", "finance.stake.released", False),
        ("finance.stake", "finance.stake.created", False),
        ("finance.stake.created.extra", "finance.stake.created", False),
        ("finance.*", "finance.wallet", True),
        ("finance.*", "finance.wallet.created", False),
        ("finance.*", "finance", False),
        ("finance.*.created", "finance.wallet.created", True),
        ("finance.*.created", "finance.stake.released", False),
        ("*.*.completed", "education.course.completed", True),
        ("*", "notification", True),
        ("*", "notification.read", False),
        ("finance.>", "finance.wallet.created", True),
        ("finance.>", "finance.wallet", True),
        ("finance.>", "finance", False),
        ("finance.>", "education.course.completed", False),
        ("*.user.>", "system.user.registered", True),
        (">", "system.alert", True),
        ("notification.>", "notifications.created", False),
    ],
)
def test_pattern_table(pattern: str, name: str, expected: bool) -> None:
    assert matches(pattern, name) is expected


@pytest.mark.parametrize(
    "pattern",
    ["", ".", "finance.", ".finance", "finance..created", "finance.>.created", ">.x",
     "fin*.x", "finance.st>", "Finance.*", "finance.stake created", "finance.**"],
)  # fmt: skip
def test_invalid_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(InvalidPattern) as caught:
        matches(pattern, "finance.stake.created")
    assert caught.value.code == "invalid_event_pattern"
    assert repr(pattern) in str(caught.value) or pattern == ""


def test_a_valid_pattern_is_returned_unchanged() -> None:
    assert validate_pattern("finance.*.created") == "finance.*.created"
    assert validate_pattern("finance.>") == "finance.>"
