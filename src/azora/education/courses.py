"""Courses, students and enrollments: what a learner does, and what it announces.

Every change is one unit of work on the education database with its audit record and
its ``education.*`` events in the outbox. Published courses are read through the cache
(a course and its modules in two queries, never one per module); enrollments, which
change with every lesson, are always read from the database.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from azora.cache import Cache, CacheKey, KeySpace
from azora.db.columns import utcnow
from azora.db.engines import Databases, reading
from azora.db.ids import new_id
from azora.db.outbox import AuditRecord, EventMessage
from azora.db.statements import insert_or_skip
from azora.db.uow import UnitOfWork
from azora.education.errors import (
    AlreadyEnrolled,
    CourseNotFound,
    EnrollmentNotFound,
    InvalidProgress,
    NotYourEnrollment,
    StudentNotFound,
)
from azora.education.models import Course, Enrollment, EnrollmentStatus, Module, Student
from azora.education.schemas import CourseView, EnrollmentView, ModuleView
from azora.types import ServiceName

COURSE_ENROLLED = "education.course.enrolled"
PROGRESS_UPDATED = "education.enrollment.progress_updated"
COURSE_COMPLETED = "education.course.completed"
COURSES = KeySpace("education.course", version=1)
COURSE_TTL_SECONDS = 600.0


def course_key(course_id: uuid.UUID) -> CacheKey:
    """The cache key of one published course (public data: not user-scoped)."""
    return COURSES.key(course_id)


def _event(type_: str, user_id: uuid.UUID, payload: dict[str, Any]) -> EventMessage:
    return EventMessage(type=type_, source=ServiceName.EDUCATION.value, subject=user_id,
                        payload={"user_id": str(user_id), **payload})  # fmt: skip


class EducationService:
    """Learning operations on the education database (see the module docstring)."""

    def __init__(self, databases: Databases, *, cache: Cache | None = None) -> None:
        self._databases = databases
        self._cache = cache

    def unit_of_work(self, user_id: uuid.UUID | None = None) -> UnitOfWork:
        """A unit of work on the education database that invalidates through this cache.

        It acts for ``user_id`` when given (that user's rows only), else as the service.
        """
        return UnitOfWork(
            self._databases,
            ServiceName.EDUCATION,
            cache=self._cache,
            user_id=user_id,
            as_service=user_id is None,
        )

    # -- reactions ------------------------------------------------------------------

    async def on_user_registered(self, payload: dict[str, Any]) -> uuid.UUID | None:
        """React to ``system.user.registered``: a student gets a student record.

        Idempotent (a redelivered event changes nothing); returns the student id, or
        None for users who are not students.
        """
        if payload.get("role") != "student":
            return None
        user_id = uuid.UUID(payload["user_id"])
        first, _, last = str(payload.get("name", "")).partition(" ")
        async with self.unit_of_work() as uow:
            # A redelivery, or a concurrent one, finds the row there and inserts nothing.
            await uow.session.execute(
                insert_or_skip(
                    uow.session,
                    Student,
                    ["user_id"],
                    id=new_id(),
                    user_id=user_id,
                    first_name=first[:100] or "-",
                    last_name=last[:100],
                    email=str(payload["email"]),
                )
            )
            student_id = await uow.session.scalar(
                select(Student.id).where(Student.user_id == user_id)
            )
        assert student_id is not None
        return student_id

    # -- courses ----------------------------------------------------------------------

    async def get_course(self, course_id: uuid.UUID) -> CourseView:
        """A published course with its modules in order (two queries), via the cache.

        Raises:
            CourseNotFound: no such course, or it is not published.
        """
        if self._cache is None:
            view = await self._load_course(course_id)
        else:
            view = await self._cache.get_or_load(
                course_key(course_id),
                lambda: self._load_course(course_id),
                ttl=COURSE_TTL_SECONDS,
                schema=CourseView,
            )
        if view is None:
            raise CourseNotFound(f"no published course {course_id}")
        return view

    async def _load_course(self, course_id: uuid.UUID) -> CourseView | None:
        async with reading(self._databases.engine(ServiceName.EDUCATION)).connect() as connection:
            course = (
                await connection.execute(
                    select(Course.__table__).where(Course.id == course_id, Course.published)
                )
            ).first()
            if course is None:
                return None
            modules = await connection.execute(
                select(Module.id, Module.title, Module.description, Module.position)
                .where(Module.course_id == course_id)
                .order_by(Module.position)
            )
            return CourseView.model_validate(
                {
                    **course._mapping,
                    "modules": [ModuleView.model_validate(m._mapping) for m in modules],
                }
            )

    # -- enrollments ------------------------------------------------------------------

    async def enroll(self, user_id: uuid.UUID, course_id: uuid.UUID) -> EnrollmentView:
        """Enroll the user's student record in a published course; announces it.

        Raises:
            StudentNotFound: the user is not a student.
            CourseNotFound: no such published course.
            AlreadyEnrolled: the student already takes it.
        """
        try:
            async with self.unit_of_work(user_id) as uow:
                student_id = await uow.session.scalar(
                    select(Student.id).where(Student.user_id == user_id)
                )
                if student_id is None:
                    raise StudentNotFound(f"user {user_id} has no student record")
                published = await uow.session.scalar(
                    select(Course.published).where(Course.id == course_id)
                )
                if not published:
                    raise CourseNotFound(f"no published course {course_id}")
                taken = await uow.session.scalar(
                    select(Enrollment.id).where(
                        Enrollment.student_id == student_id, Enrollment.course_id == course_id
                    )
                )
                if taken is not None:
                    raise AlreadyEnrolled(f"already enrolled in course {course_id}")
                enrollment = Enrollment(student_id=student_id, course_id=course_id)
                uow.session.add(enrollment)
                await uow.session.flush()
                view = _enrollment_view(enrollment, user_id)
                uow.audit(AuditRecord("education.enroll", "enrollment", str(view.id), user_id))
                uow.emit(
                    _event(
                        COURSE_ENROLLED,
                        user_id,
                        {"enrollment_id": str(view.id), "course_id": str(course_id)},
                    )
                )
        except IntegrityError:  # a concurrent enrollment won the unique constraint
            raise AlreadyEnrolled(f"already enrolled in course {course_id}") from None
        return view

    async def update_progress(
        self, enrollment_id: uuid.UUID, progress: int, user_id: uuid.UUID
    ) -> EnrollmentView:
        """Set the progress (0-100) of the user's own enrollment; 100 completes the course.

        Completing announces ``education.course.completed`` once, however often 100 is
        sent; every change announces ``education.enrollment.progress_updated``.

        Raises:
            InvalidProgress: not a whole number from 0 to 100, lower than 100 on a
                completed course, or the enrollment was dropped.
            EnrollmentNotFound: no such enrollment.
            NotYourEnrollment: it belongs to another user.
        """
        if isinstance(progress, bool) or not isinstance(progress, int):
            raise InvalidProgress("progress is a whole number of percent")
        if not 0 <= progress <= 100:
            raise InvalidProgress(f"progress is 0 to 100, not {progress}")
        async with self.unit_of_work() as uow:
            row = (
                await uow.session.execute(
                    select(Enrollment, Student.user_id)
                    .join(Student, Student.id == Enrollment.student_id)
                    .where(Enrollment.id == enrollment_id)
                    .with_for_update(of=Enrollment)
                )
            ).first()
            if row is None:
                raise EnrollmentNotFound(f"no enrollment {enrollment_id}")
            enrollment, owner = row
            if owner != user_id:
                raise NotYourEnrollment("that enrollment belongs to another user")
            if enrollment.status is EnrollmentStatus.DROPPED:
                raise InvalidProgress("the enrollment was dropped")
            if enrollment.status is EnrollmentStatus.COMPLETED and progress < 100:
                raise InvalidProgress("a completed course stays completed")
            ids = {"enrollment_id": str(enrollment.id), "course_id": str(enrollment.course_id)}
            if progress != enrollment.progress:
                enrollment.progress = progress
                uow.emit(
                    _event(
                        PROGRESS_UPDATED,
                        user_id,
                        {**ids, "progress": progress},
                    )
                )
            if progress == 100 and enrollment.status is not EnrollmentStatus.COMPLETED:
                enrollment.status = EnrollmentStatus.COMPLETED
                enrollment.completed_at = utcnow()
                uow.audit(
                    AuditRecord("education.complete", "enrollment", str(enrollment.id), user_id)
                )
                uow.emit(
                    _event(
                        COURSE_COMPLETED,
                        user_id,
                        ids,
                    )
                )
            await uow.session.flush()
            view = _enrollment_view(enrollment, user_id)
        return view


def _enrollment_view(enrollment: Enrollment, user_id: uuid.UUID) -> EnrollmentView:
    return EnrollmentView(
        id=enrollment.id,
        user_id=user_id,
        student_id=enrollment.student_id,
        course_id=enrollment.course_id,
        status=enrollment.status,
        progress=enrollment.progress,
        enrolled_at=enrollment.enrolled_at,
        completed_at=enrollment.completed_at,
    )
