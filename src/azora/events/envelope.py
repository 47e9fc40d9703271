"""The envelope every event travels in (EVENTS.md): who, what, when, and the payload.

The seed's publishing shape ``{type, payload, source, timestamp}`` maps onto it with
:meth:`Envelope.from_seed`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from azora.db.ids import new_id
from azora.events.fields import Timestamp
from azora.events.patterns import NAME

EventName = Annotated[str, StringConstraints(pattern=f"^{NAME.pattern}$", max_length=120)]


class Envelope(BaseModel):
    """One event as delivered.

    ``id`` is a UUIDv7 (unique, time-ordered); ``subject`` is the user the event
    concerns, ``None`` for a public event; ``occurred_at`` is when the change committed,
    in UTC; ``correlation_id`` ties the events of one request or saga together;
    ``version`` is the payload's schema version. The payload is checked against its
    type's schema by :meth:`azora.events.registry.Registry.validate_event`, not here.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: uuid.UUID = Field(default_factory=new_id)
    type: EventName
    source: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    subject: uuid.UUID | None = None
    payload: dict[str, Any]
    occurred_at: Timestamp
    correlation_id: uuid.UUID | None = None
    version: int = Field(default=1, ge=1, strict=True)

    @field_validator("id")
    @classmethod
    def _time_ordered(cls, value: uuid.UUID) -> uuid.UUID:
        if value.version != 7:
            raise ValueError("an event id is a UUIDv7 (time-ordered)")
        return value

    @classmethod
    def from_seed(cls, message: Mapping[str, Any]) -> Envelope:
        """The envelope of a message in the seed's shape ``{type, payload, source, timestamp}``.

        It gets a fresh id, no subject (public) and version 1.

        Raises:
            pydantic.ValidationError: a key is missing or malformed.
        """
        return cls(
            type=message.get("type"),
            payload=message.get("payload"),
            source=message.get("source"),
            occurred_at=message.get("timestamp"),
        )
