"""Event names and the patterns that select them, with NATS subject semantics.

A name is two or more lower-case tokens joined by dots (``finance.stake.created``). A
pattern is a name in which a token may be ``*`` (exactly one token) and the last token
may be ``>`` (one or more tokens): ``finance.*`` matches ``finance.ubi`` but not
``finance.stake.created``; ``finance.>`` matches both; neither matches ``finance``.
"""

from __future__ import annotations

import re

from azora.errors import quoted
from azora.events.errors import InvalidPattern

TOKEN = re.compile(r"[a-z][a-z0-9_]*")
NAME = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")


def is_event_name(name: str) -> bool:
    """Whether ``name`` is a well-formed event type name (no wildcards)."""
    return NAME.fullmatch(name) is not None


def validate_pattern(pattern: str) -> str:
    """Return ``pattern`` unchanged if it is a valid subscription pattern.

    Raises:
        InvalidPattern: empty, an empty or malformed token, a wildcard inside a token,
            or ``>`` anywhere but last.
    """
    if not isinstance(pattern, str) or not pattern:
        raise InvalidPattern("an event pattern is a non-empty string such as 'finance.>'")
    tokens = pattern.split(".")
    for position, token in enumerate(tokens):
        if token == "*" or TOKEN.fullmatch(token):
            continue
        if token == ">":
            if position == len(tokens) - 1:
                continue
            raise InvalidPattern(
                f"invalid event pattern {quoted(pattern)}: '>' must be the last token",
                hint="'finance.>' matches every finance event",
            )
        raise InvalidPattern(
            f"invalid event pattern {quoted(pattern)}: token {quoted(token)} is not a"
            " lower-case word, '*' or a trailing '>'",
            hint="tokens are separated by single dots, e.g. 'finance.*.created'",
        )
    return pattern


def matches(pattern: str, name: str) -> bool:
    """Whether the event type ``name`` is selected by ``pattern`` (NATS semantics).

    Raises:
        InvalidPattern: ``pattern`` is not a valid pattern (see :func:`validate_pattern`).
    """
    wanted = validate_pattern(pattern).split(".")
    tokens = name.split(".")
    for position, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > position
        if position >= len(tokens) or (token != "*" and token != tokens[position]):
            return False
    return len(tokens) == len(wanted)
