"""The registry of event types: one payload schema per (type, version).

Every event is checked against it before it is written (``UnitOfWork.emit``,
:func:`azora.events.publish.publish`), so what reaches the outbox, the bus and the
clients always has the shape its schema documents. The types of EVENTS.md are registered
in :data:`azora.events.catalog.CATALOG`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ValidationError

from azora.events.errors import InvalidEventPayload, InvalidEventSubject, UnknownEventType
from azora.events.patterns import is_event_name, matches


class Audience(StrEnum):
    """Who may receive an event: anyone who subscribed, or only its subject."""

    PUBLIC = "public"  # subject is null
    USER = "user"  # subject is the user it concerns; only that user receives it


@dataclass(frozen=True)
class EventType:
    """One event type: its name, payload schema, schema version and audience."""

    name: str
    payload: type[BaseModel]
    audience: Audience
    description: str
    version: int = 1

    @property
    def user_scoped(self) -> bool:
        """Whether events of this type must name their user (``subject``)."""
        return self.audience is Audience.USER

    def json_schema(self) -> dict[str, Any]:
        """The payload's JSON Schema, titled with the type and its version."""
        schema = self.payload.model_json_schema(mode="serialization")
        schema["title"] = self.name
        schema["description"] = self.description
        schema["x-version"] = self.version
        schema["x-audience"] = str(self.audience)
        return schema


class Registry:
    """Event types by name and version (see the module docstring)."""

    def __init__(self) -> None:
        self._types: dict[str, dict[int, EventType]] = {}

    def register(self, event_type: EventType) -> EventType:
        """Add ``event_type`` and return it.

        Raises:
            ValueError: a malformed name, a version below 1, a payload schema that
                accepts unknown keys, or a (name, version) registered already.
        """
        if not is_event_name(event_type.name):
            raise ValueError(f"{event_type.name!r} is not a lower-case dotted event name")
        if event_type.version < 1:
            raise ValueError(f"{event_type.name}: versions start at 1")
        if event_type.payload.model_config.get("extra") != "forbid":
            raise ValueError(f"{event_type.name}: the payload schema must forbid extra keys")
        versions = self._types.setdefault(event_type.name, {})
        if event_type.version in versions:
            raise ValueError(f"{event_type.name} v{event_type.version} is registered already")
        versions[event_type.version] = event_type
        return event_type

    def get(self, name: str, version: int | None = None) -> EventType:
        """The type ``name`` at ``version`` (the latest when ``None``).

        Raises:
            UnknownEventType: no such type, or not at that version.
        """
        versions = self._types.get(name)
        if not versions:
            raise UnknownEventType(
                f"unknown event type {name!r}",
                hint="register a payload schema for it in azora.events.catalog",
            )
        if version is None:
            return versions[max(versions)]
        found = versions.get(version)
        if found is None:
            known = ", ".join(str(v) for v in sorted(versions))
            raise UnknownEventType(f"{name} has no version {version!r} (known: {known})")
        return found

    def names(self) -> list[str]:
        """Every registered type name, sorted."""
        return sorted(self._types)

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def matching(self, pattern: str) -> list[str]:
        """The registered names ``pattern`` selects, sorted.

        Raises:
            InvalidPattern: ``pattern`` is not a valid pattern.
        """
        return [name for name in self.names() if matches(pattern, name)]

    def validate(self, name: str, payload: Any, version: int = 1) -> dict[str, Any]:
        """``payload`` checked against ``name``'s schema, as a normalised JSON-ready dict.

        Normalised: ids and times become strings, money a plain decimal string, optional
        fields absent from ``payload`` are present with their default.

        Raises:
            UnknownEventType: no such type or version.
            InvalidEventPayload: not an object, a missing or unknown key, a wrong value.
        """
        event_type = self.get(name, version)
        if not isinstance(payload, Mapping):
            raise InvalidEventPayload(name, [("", "the payload is a JSON object")])
        try:
            model = event_type.payload.model_validate(dict(payload))
        except ValidationError as exc:
            problems = [
                (".".join(str(part) for part in error["loc"]), error["msg"])
                for error in exc.errors(include_url=False)
            ]
            raise InvalidEventPayload(name, problems) from None
        return model.model_dump(mode="json")

    def validate_event(
        self, name: str, payload: Any, *, subject: uuid.UUID | None, version: int = 1
    ) -> dict[str, Any]:
        """Like :meth:`validate`, and check that ``subject`` fits the type's audience.

        Raises:
            UnknownEventType, InvalidEventPayload: as :meth:`validate`.
            InvalidEventSubject: a user-scoped type without a subject, or a public one
                with a subject.
        """
        normalised = self.validate(name, payload, version)
        event_type = self.get(name, version)
        if event_type.user_scoped and subject is None:
            raise InvalidEventSubject(
                f"{name} concerns one user: its subject (the user's id) is required"
            )
        if not event_type.user_scoped and subject is not None:
            raise InvalidEventSubject(
                f"{name} is public: its subject must be empty",
                hint="a public event reaches every subscriber; name no user",
            )
        return normalised

    def json_schemas(self) -> dict[str, dict[str, Any]]:
        """Each type's name mapped to the JSON Schema of its latest version's payload."""
        return {name: self.get(name).json_schema() for name in self.names()}
