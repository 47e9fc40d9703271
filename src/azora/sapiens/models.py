"""Tables of the ``azora_sapiens`` database: AI tutoring, learning paths and assessments."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from azora.db.base import TYPE_ANNOTATION_MAP, Entity, new_metadata
from azora.db.columns import str_enum, utcnow
from azora.db.infra import AuditLogMixin, DeadLetterMixin, OutboxEventMixin, ProcessedEventMixin


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class SessionStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"


class MessageRole(StrEnum):
    STUDENT = "student"
    TUTOR = "tutor"
    SYSTEM = "system"


class Level(StrEnum):
    """A level of mastery, also used as the difficulty of paths, questions and assessments."""

    BEGINNER = "beginner"
    INTERMEDIATE = "intermediate"
    ADVANCED = "advanced"


class PathStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    COMPLETED = "completed"
    ABANDONED = "abandoned"


class TutoringSession(Entity, Base):
    """A conversation between a student and the AI tutor about one subject."""

    __tablename__ = "tutoring_sessions"

    student_id: Mapped[uuid.UUID] = mapped_column(index=True)
    subject: Mapped[str] = mapped_column(String(120))
    status: Mapped[SessionStatus] = mapped_column(
        str_enum(SessionStatus, "status"), default=SessionStatus.ACTIVE
    )
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column()

    messages: Mapped[list[Message]] = relationship(
        lazy="raise",
        order_by="(Message.created_at, Message.id)",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class Message(Entity, Base):
    """One turn of a tutoring session."""

    __tablename__ = "messages"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tutoring_sessions.id", ondelete="CASCADE")
    )
    role: Mapped[MessageRole] = mapped_column(str_enum(MessageRole, "role"))
    content: Mapped[str] = mapped_column()

    __table_args__ = (Index("ix_messages_session_id_created_at", "session_id", "created_at"),)


class LearningInsight(Entity, Base):
    """Something the tutor inferred about a student during a session."""

    __tablename__ = "learning_insights"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tutoring_sessions.id", ondelete="CASCADE"), index=True
    )
    student_id: Mapped[uuid.UUID] = mapped_column(index=True)
    insight_type: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column()
    confidence: Mapped[float] = mapped_column()

    __table_args__ = (
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_range"),
    )


class LearningPath(Entity, Base):
    """A personalised sequence of steps towards a target level in one subject."""

    __tablename__ = "learning_paths"

    student_id: Mapped[uuid.UUID] = mapped_column(index=True)
    subject: Mapped[str] = mapped_column(String(120), index=True)
    title: Mapped[str] = mapped_column(String(200))
    current_level: Mapped[Level] = mapped_column(
        str_enum(Level, "current_level"), default=Level.BEGINNER
    )
    target_level: Mapped[Level] = mapped_column(
        str_enum(Level, "target_level"), default=Level.ADVANCED
    )
    difficulty: Mapped[Level] = mapped_column(str_enum(Level, "difficulty"), default=Level.BEGINNER)
    estimated_hours: Mapped[float | None] = mapped_column()
    total_steps: Mapped[int] = mapped_column(default=0)
    completed_steps: Mapped[int] = mapped_column(default=0)
    status: Mapped[PathStatus] = mapped_column(
        str_enum(PathStatus, "status"), default=PathStatus.ACTIVE
    )

    steps: Mapped[list[PathStep]] = relationship(
        lazy="raise",
        order_by="PathStep.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    __table_args__ = (
        CheckConstraint(
            "completed_steps >= 0 AND completed_steps <= total_steps",
            name="completed_steps_range",
        ),
        CheckConstraint("estimated_hours >= 0", name="estimated_hours_nonnegative"),
    )


class PathStep(Entity, Base):
    """One step of a learning path, in order of ``position`` (from 1)."""

    __tablename__ = "path_steps"

    path_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("learning_paths.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column()
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column()
    estimated_hours: Mapped[float | None] = mapped_column()
    # Links and materials, e.g. [{"title": ..., "url": ...}].
    resources: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    completed: Mapped[bool] = mapped_column(default=False)
    completed_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        UniqueConstraint("path_id", "position"),
        CheckConstraint("position >= 1", name="position_positive"),
        CheckConstraint("estimated_hours >= 0", name="estimated_hours_nonnegative"),
    )


class Question(Entity, Base):
    """A question a student asked the tutor, and its answer once given."""

    __tablename__ = "questions"

    student_id: Mapped[uuid.UUID] = mapped_column()
    question: Mapped[str] = mapped_column()
    answer: Mapped[str | None] = mapped_column()
    topic: Mapped[str | None] = mapped_column(String(120))
    difficulty: Mapped[Level | None] = mapped_column(str_enum(Level, "difficulty"))
    asked_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (Index("ix_questions_student_id_asked_at", "student_id", "asked_at"),)


class Assessment(Entity, Base):
    """An adaptive assessment, optionally part of a learning path."""

    __tablename__ = "assessments"

    student_id: Mapped[uuid.UUID] = mapped_column(index=True)
    path_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("learning_paths.id", ondelete="SET NULL"), index=True
    )
    title: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    difficulty: Mapped[Level] = mapped_column(str_enum(Level, "difficulty"), default=Level.BEGINNER)
    max_score: Mapped[float] = mapped_column(default=100.0)
    passing_score: Mapped[float] = mapped_column()
    questions: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    # The student's answers by question id.
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    score: Mapped[float | None] = mapped_column()
    started_at: Mapped[dt.datetime | None] = mapped_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        CheckConstraint("max_score > 0", name="max_score_positive"),
        CheckConstraint(
            "passing_score >= 0 AND passing_score <= max_score", name="passing_score_range"
        ),
        CheckConstraint("score >= 0 AND score <= max_score", name="score_range"),
    )


class Progress(Entity, Base):
    """A student's progress along a learning path (one row per student and path).

    ``current_step`` is the position of the step being worked on (0 before the first);
    ``completion_rate`` is a percentage from 0 to 100.
    """

    __tablename__ = "progress"

    student_id: Mapped[uuid.UUID] = mapped_column()
    path_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("learning_paths.id", ondelete="CASCADE"), index=True
    )
    current_step: Mapped[int] = mapped_column(default=0)
    total_steps: Mapped[int] = mapped_column(default=0)
    completion_rate: Mapped[float] = mapped_column(default=0.0)
    time_spent_minutes: Mapped[int] = mapped_column(default=0)
    last_activity_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        UniqueConstraint("student_id", "path_id"),
        CheckConstraint(
            "current_step >= 0 AND current_step <= total_steps", name="current_step_range"
        ),
        CheckConstraint(
            "completion_rate >= 0 AND completion_rate <= 100", name="completion_rate_range"
        ),
        CheckConstraint("time_spent_minutes >= 0", name="time_spent_nonnegative"),
    )


class StudentProfile(Entity, Base):
    """What the tutor knows about how a student learns (one per student)."""

    __tablename__ = "student_profiles"

    student_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    learning_style: Mapped[str | None] = mapped_column(String(32))
    strengths: Mapped[list[str]] = mapped_column(default=list)
    weaknesses: Mapped[list[str]] = mapped_column(default=list)
    interests: Mapped[list[str]] = mapped_column(default=list)
    # Free-form goals, e.g. {"target_level": "advanced", "weekly_hours": 5}.
    goals: Mapped[dict[str, Any]] = mapped_column(default=dict)


class OutboxEvent(OutboxEventMixin, Base):
    pass


class AuditLog(AuditLogMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class DeadLetter(DeadLetterMixin, Base):
    pass
