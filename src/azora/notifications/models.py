"""Tables of the ``azora_notifications`` database."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from azora.db.base import TYPE_ANNOTATION_MAP, Entity, new_metadata
from azora.db.columns import str_enum
from azora.db.infra import AuditLogMixin, DeadLetterMixin, OutboxEventMixin, ProcessedEventMixin


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class NotificationKind(StrEnum):
    """How a notification should look."""

    INFO = "info"
    WARNING = "warning"
    SUCCESS = "success"
    ERROR = "error"


class Notification(Entity, Base):
    """Something a user is told; soft-deleted, so it stays in the history."""

    __tablename__ = "notifications"

    user_id: Mapped[uuid.UUID] = mapped_column()
    kind: Mapped[NotificationKind] = mapped_column(
        str_enum(NotificationKind, "kind"), default=NotificationKind.INFO
    )
    title: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column()
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    is_read: Mapped[bool] = mapped_column(default=False)
    read_at: Mapped[dt.datetime | None] = mapped_column()
    deleted_at: Mapped[dt.datetime | None] = mapped_column()

    # A user's inbox: unread first, newest first, without a sort.
    __table_args__ = (
        Index("ix_notifications_user_id_is_read_created_at", "user_id", "is_read", "created_at"),
    )


class NotificationPreference(Entity, Base):
    """A user's notification settings (one row per user)."""

    __tablename__ = "notification_preferences"

    user_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    #: notification kinds the user does not want to receive.
    muted_kinds: Mapped[list[str]] = mapped_column(default=list)
    #: delivery channel → settings (e.g. ``{"email": true}``).
    channels: Mapped[dict[str, Any]] = mapped_column(default=dict)


class OutboxEvent(OutboxEventMixin, Base):
    pass


class AuditLog(AuditLogMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class DeadLetter(DeadLetterMixin, Base):
    pass
