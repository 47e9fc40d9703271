"""What the event registry refuses: an unknown type, a payload or subject that does not fit
its schema, a subscription pattern that is not one.

All are :class:`~azora.errors.InvalidInput`: the caller built something wrong, and the
message says what and where.
"""

from __future__ import annotations

from collections.abc import Sequence

from azora.errors import AzoraError, InvalidInput


class UnknownEventType(InvalidInput):
    """An event type (or a version of one) that the registry has no schema for."""

    code = "unknown_event_type"


class InvalidEventPayload(InvalidInput):
    """A payload that does not match its type's schema.

    ``problems`` lists every ``(path, reason)`` found; ``path`` and ``reason`` name the
    first, e.g. ``("amount", "money is an exact decimal string ...")``.
    """

    code = "invalid_event_payload"

    def __init__(self, event_type: str, problems: Sequence[tuple[str, str]]) -> None:
        self.event_type = event_type
        self.problems = list(problems) or [("", "invalid payload")]
        self.path, self.reason = self.problems[0]
        details = "; ".join(f"{path or '(payload)'}: {reason}" for path, reason in self.problems)
        super().__init__(
            f"invalid {event_type} payload: {details}",
            hint=f"see the JSON Schema of {event_type} in azora.events.catalog",
        )


class InvalidEventSubject(InvalidInput):
    """A user-scoped event without a subject, or a public event with one."""

    code = "invalid_event_subject"


class InvalidPattern(InvalidInput):
    """A subscription pattern that is not dotted tokens, ``*`` and a trailing ``>``."""

    code = "invalid_event_pattern"


class BusUnavailable(AzoraError):
    """The event bus could not be reached, or refused what was published; retry later."""

    code = "bus_unavailable"
