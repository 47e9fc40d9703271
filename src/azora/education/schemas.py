"""What the education operations return: plain, typed, and free of table models."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from azora.education.models import CourseLevel, EnrollmentStatus
from azora.types import Currency


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, from_attributes=True)


class ModuleView(_View):
    """One unit of a course, in course order."""

    id: uuid.UUID
    title: str
    description: str | None
    position: int


class CourseView(_View):
    """A published course with its modules."""

    id: uuid.UUID
    title: str
    description: str | None
    instructor_id: uuid.UUID
    price: Decimal
    currency: Currency
    duration_hours: int
    level: CourseLevel
    category: str
    modules: tuple[ModuleView, ...]


class EnrollmentView(_View):
    """A student's enrollment in a course and how far they got."""

    id: uuid.UUID
    user_id: uuid.UUID
    student_id: uuid.UUID
    course_id: uuid.UUID
    status: EnrollmentStatus
    progress: int
    enrolled_at: dt.datetime
    completed_at: dt.datetime | None
