"""Tables of the ``azora_health`` database."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Index, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from azora.db.base import TYPE_ANNOTATION_MAP, Entity, new_metadata
from azora.db.columns import str_enum, utcnow
from azora.db.infra import AuditLogMixin, DeadLetterMixin, OutboxEventMixin, ProcessedEventMixin


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class LogLevel(StrEnum):
    """Severity of a log line."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"
    FATAL = "FATAL"


class HealthStatus(StrEnum):
    """The outcome of one health check."""

    UP = "up"
    DEGRADED = "degraded"
    DOWN = "down"


class Log(Entity, Base):
    """A log line a service kept."""

    __tablename__ = "logs"

    level: Mapped[LogLevel] = mapped_column(str_enum(LogLevel, "level"), index=True)
    message: Mapped[str] = mapped_column()
    service: Mapped[str] = mapped_column(String(64), index=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)

    __table_args__ = (Index("ix_logs_created_at", "created_at"),)


class ComplianceLog(Entity, Base):
    """A compliance-relevant action taken on or by a user."""

    __tablename__ = "compliance_logs"

    action: Mapped[str] = mapped_column(String(120))
    user_id: Mapped[uuid.UUID] = mapped_column(index=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", default=dict)

    __table_args__ = (Index("ix_compliance_logs_created_at", "created_at"),)


class HealthCheck(Entity, Base):
    """One probe of a dependency (database, cache, bus, ...) and what it found."""

    __tablename__ = "health_checks"

    target: Mapped[str] = mapped_column(String(64))
    status: Mapped[HealthStatus] = mapped_column(str_enum(HealthStatus, "status"))
    #: empty when the target did not answer at all.
    latency_ms: Mapped[float | None] = mapped_column()
    detail: Mapped[str | None] = mapped_column()
    checked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index("ix_health_checks_target_checked_at", "target", "checked_at"),
        CheckConstraint("latency_ms >= 0", name="latency_ms_non_negative"),
    )


class OutboxEvent(OutboxEventMixin, Base):
    pass


class AuditLog(AuditLogMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class DeadLetter(DeadLetterMixin, Base):
    pass
