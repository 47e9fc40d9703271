"""Tables of the ``azora_education`` database.

A student's money lives in the mint ledger; education keeps no wallet of its own.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from azora.db.base import TYPE_ANNOTATION_MAP, Entity, new_metadata
from azora.db.columns import str_enum, utcnow
from azora.db.infra import AuditLogMixin, DeadLetterMixin, OutboxEventMixin, ProcessedEventMixin
from azora.types import Currency


class Base(DeclarativeBase):
    metadata = new_metadata()
    type_annotation_map = TYPE_ANNOTATION_MAP


class CourseLevel(StrEnum):
    BEGINNER = "beginner"
    INTERMEDIATE = "intermediate"
    ADVANCED = "advanced"


class EnrollmentStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    DROPPED = "dropped"


class Student(Entity, Base):
    """The learner record of a user (``user_id`` refers to ``auth.users``)."""

    __tablename__ = "students"

    user_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(320), index=True)
    date_of_birth: Mapped[dt.date | None] = mapped_column()
    grade: Mapped[str | None] = mapped_column(String(32))
    country: Mapped[str] = mapped_column(String(2), default="ZA")


class Course(Entity, Base):
    """A course taught by an instructor (a user id), published or still in draft."""

    __tablename__ = "courses"

    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column()
    instructor_id: Mapped[uuid.UUID] = mapped_column(index=True)
    price: Mapped[Decimal] = mapped_column(default=Decimal("0"))
    currency: Mapped[Currency] = mapped_column(str_enum(Currency, "currency"), default=Currency.AZR)
    duration_hours: Mapped[int] = mapped_column(default=0)
    level: Mapped[CourseLevel] = mapped_column(
        str_enum(CourseLevel, "level"), default=CourseLevel.BEGINNER
    )
    category: Mapped[str] = mapped_column(String(100), index=True)
    published: Mapped[bool] = mapped_column(default=False, index=True)

    modules: Mapped[list[Module]] = relationship(
        back_populates="course", lazy="raise", order_by="Module.position"
    )

    __table_args__ = (
        CheckConstraint("price >= 0", name="price_non_negative"),
        CheckConstraint("duration_hours >= 0", name="duration_non_negative"),
    )


class Module(Entity, Base):
    """One numbered unit of a course; deleted with its course."""

    __tablename__ = "modules"

    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column()
    position: Mapped[int] = mapped_column()
    content: Mapped[str | None] = mapped_column()

    course: Mapped[Course] = relationship(back_populates="modules", lazy="raise")

    # The unique constraint leads with course_id, so it also indexes the foreign key.
    __table_args__ = (
        UniqueConstraint("course_id", "position"),
        CheckConstraint("position >= 1", name="position_positive"),
    )


class Enrollment(Entity, Base):
    """A student taking a course, with their overall progress in percent."""

    __tablename__ = "enrollments"

    student_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("students.id"))
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id"), index=True)
    status: Mapped[EnrollmentStatus] = mapped_column(
        str_enum(EnrollmentStatus, "status"), default=EnrollmentStatus.ACTIVE
    )
    progress: Mapped[int] = mapped_column(default=0)
    enrolled_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        UniqueConstraint("student_id", "course_id"),
        CheckConstraint("progress >= 0 AND progress <= 100", name="progress_range"),
    )


class LearningProgress(Entity, Base):
    """How far a student got in one module (time spent, score, completion)."""

    __tablename__ = "learning_progress"

    student_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("students.id"))
    module_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("modules.id"), index=True)
    completed: Mapped[bool] = mapped_column(default=False)
    time_spent_minutes: Mapped[int] = mapped_column(default=0)
    score: Mapped[int | None] = mapped_column()
    started_at: Mapped[dt.datetime | None] = mapped_column()
    completed_at: Mapped[dt.datetime | None] = mapped_column()

    __table_args__ = (
        UniqueConstraint("student_id", "module_id"),
        CheckConstraint("score >= 0 AND score <= 100", name="score_range"),
        CheckConstraint("time_spent_minutes >= 0", name="time_spent_non_negative"),
    )


class Assessment(Entity, Base):
    """A graded test for a course, or for one of its modules."""

    __tablename__ = "assessments"

    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id"), index=True)
    module_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("modules.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    passing_score: Mapped[int] = mapped_column(default=70)
    max_score: Mapped[int] = mapped_column(default=100)
    questions: Mapped[list[dict[str, Any]]] = mapped_column(default=list)

    __table_args__ = (
        CheckConstraint(
            "max_score > 0 AND passing_score >= 0 AND passing_score <= max_score",
            name="score_bounds",
        ),
    )


class AssessmentSubmission(Entity, Base):
    """A student's answers to an assessment and how they were graded."""

    __tablename__ = "assessment_submissions"

    student_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("students.id"), index=True)
    assessment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assessments.id"), index=True)
    answers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    score: Mapped[int | None] = mapped_column()
    passed: Mapped[bool] = mapped_column(default=False)
    feedback: Mapped[str | None] = mapped_column()
    submitted_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (CheckConstraint("score >= 0", name="score_non_negative"),)


class Certificate(Entity, Base):
    """Proof that a student completed a course, checkable by its verification code."""

    __tablename__ = "certificates"

    student_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("students.id"))
    course_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("courses.id"), index=True)
    verification_code: Mapped[str] = mapped_column(String(64), unique=True)
    issued_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("student_id", "course_id"),)


class OutboxEvent(OutboxEventMixin, Base):
    pass


class AuditLog(AuditLogMixin, Base):
    pass


class ProcessedEvent(ProcessedEventMixin, Base):
    pass


class DeadLetter(DeadLetterMixin, Base):
    pass
