"""Typed events: the envelope, the registry of payload schemas, and name patterns.

Shared infrastructure (beside ``db/`` and ``cache/``): services describe their events'
payloads here, never each other's models. :data:`CATALOG` holds every type of EVENTS.md;
the unit of work checks each emitted event against it. Publishing an event that no
database change caused is :func:`azora.events.publish.publish` (imported from its module:
it builds on the unit of work, which itself imports this package).
"""

from __future__ import annotations

from azora.events.catalog import CATALOG
from azora.events.envelope import Envelope
from azora.events.errors import (
    InvalidEventPayload,
    InvalidEventSubject,
    InvalidPattern,
    UnknownEventType,
)
from azora.events.patterns import is_event_name, matches, validate_pattern
from azora.events.registry import Audience, EventType, Registry

__all__ = [
    "CATALOG",
    "Audience",
    "Envelope",
    "EventType",
    "InvalidEventPayload",
    "InvalidEventSubject",
    "InvalidPattern",
    "Registry",
    "UnknownEventType",
    "is_event_name",
    "matches",
    "validate_pattern",
]
