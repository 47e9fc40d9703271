"""Tables of the ``azora_nexus`` database: event history and personalisation."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import CheckConstraint, Index, String, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from azora.db.base import TYPE_ANNOTATION_MAP, Entity, new_metadata
from azora.db.infra import AuditLogMixin, DeadLetterMixin, OutboxEventMixin, ProcessedEventMixin


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class EventRecord(Entity, Base):
    """An event seen on the bus, kept as history (one row per event id, the whole envelope)."""

    __tablename__ = "event_records"

    event_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    type: Mapped[str] = mapped_column(String(120))
    source: Mapped[str] = mapped_column(String(32))
    subject_user_id: Mapped[uuid.UUID | None] = mapped_column()
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    occurred_at: Mapped[dt.datetime] = mapped_column()
    correlation_id: Mapped[uuid.UUID | None] = mapped_column()
    version: Mapped[int] = mapped_column(default=1, server_default=text("1"))

    __table_args__ = (
        Index("ix_event_records_type_occurred_at", "type", "occurred_at"),
        Index("ix_event_records_subject_user_id_occurred_at", "subject_user_id", "occurred_at"),
    )


class UserPreference(Entity, Base):
    """A user's stated preferences and interests (one per user)."""

    __tablename__ = "user_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    preferences: Mapped[dict[str, Any]] = mapped_column(default=dict)
    interests: Mapped[list[str]] = mapped_column(default=list)


class Recommendation(Entity, Base):
    """Something suggested to a user (a course, a job, ...) with a relevance score."""

    __tablename__ = "recommendations"

    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(String(32))
    # Lives in another service's database: no foreign key.
    item_id: Mapped[uuid.UUID] = mapped_column()
    # Relevance from 0 to 1.
    score: Mapped[float] = mapped_column(default=0.0)
    reason: Mapped[str | None] = mapped_column()
    dismissed_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (CheckConstraint("score >= 0 AND score <= 1", name="score_range"),)


class Interaction(Entity, Base):
    """A user's interaction with an item (viewed, enrolled, applied, ...)."""

    __tablename__ = "interactions"

    user_id: Mapped[uuid.UUID] = mapped_column()
    kind: Mapped[str] = mapped_column(String(32))
    item_type: Mapped[str] = mapped_column(String(32))
    # Lives in another service's database: no foreign key.
    item_id: Mapped[uuid.UUID] = mapped_column()
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)

    __table_args__ = (Index("ix_interactions_user_id_created_at", "user_id", "created_at"),)


class OutboxEvent(OutboxEventMixin, Base):
    pass


class AuditLog(AuditLogMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class DeadLetter(DeadLetterMixin, Base):
    pass
