"""Seed data for ``azora_education``: the development student, two courses and progress."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from azora.db.columns import utcnow
from azora.db.seeding import DEV_EDUCATOR_EMAIL, DEV_STUDENT_EMAIL, SeedContext
from azora.education.models import (
    Assessment,
    Course,
    CourseLevel,
    Enrollment,
    EnrollmentStatus,
    LearningProgress,
    Module,
    Student,
)


@dataclass(frozen=True)
class _CourseSeed:
    key: str
    title: str
    description: str
    category: str
    level: CourseLevel
    duration_hours: int
    price: Decimal
    modules: tuple[tuple[str, str], ...]  # (title, content), positions 1..n
    assessment_title: str
    questions: tuple[dict[str, Any], ...]


def _mcq(question: str, options: list[str], answer: int) -> dict[str, Any]:
    return {"kind": "multiple_choice", "question": question, "options": options, "answer": answer}


_PYTHON = _CourseSeed(
    key="python-intro",
    title="Introduction to Python",
    description="Write your first programs: values, control flow, functions and data.",
    category="programming",
    level=CourseLevel.BEGINNER,
    duration_hours=20,
    price=Decimal("0"),
    modules=(
        ("Getting started", "Install Python, open the REPL and run `print('Hello, Azora')`."),
        ("Values and variables", "Numbers, strings and booleans; naming values with `=`."),
        ("Control flow", "Make decisions with `if` and repeat work with `for` and `while`."),
        ("Functions", "Define functions with `def`, pass arguments and return results."),
        ("Collections", "Lists, tuples, dictionaries and sets, and when to use each."),
    ),
    assessment_title="Python fundamentals quiz",
    questions=(
        _mcq("What does `len('azora')` return?", ["4", "5", "6"], 1),
        _mcq("Which keyword defines a function?", ["func", "def", "lambda"], 1),
        _mcq("Which type is mutable?", ["tuple", "str", "list"], 2),
    ),
)

_REACT = _CourseSeed(
    key="react-basics",
    title="Building with React",
    description="Build interactive user interfaces from components, props and state.",
    category="web-development",
    level=CourseLevel.INTERMEDIATE,
    duration_hours=30,
    price=Decimal("50"),
    modules=(
        ("Components and JSX", "Describe the UI as a tree of components written in JSX."),
        ("Props and state", "Pass data down with props; keep changing data in state."),
        ("Effects", "Synchronise with the outside world using `useEffect`."),
        ("Forms and events", "Handle user input with controlled components."),
    ),
    assessment_title="React essentials quiz",
    questions=(
        _mcq("Which hook holds component state?", ["useState", "useMemo", "useRef"], 0),
        _mcq("How does a parent pass data to a child?", ["state", "props", "context"], 1),
        _mcq(
            "When does an effect with `[]` dependencies run?",
            ["every render", "once after mount", "never"],
            1,
        ),
    ),
)

_COURSES = (_PYTHON, _REACT)

#: The student's progress in the Python course: (module position, score, minutes).
_COMPLETED_MODULES = ((1, 95, 45), (2, 88, 60))
_PYTHON_PROGRESS = 40  # 2 of 5 modules


async def seed_development(session: AsyncSession, ctx: SeedContext) -> None:
    """Create the development student, both courses and the student's Python progress.

    Idempotent: rows are found by natural key (user id, course title, module position,
    assessment title, student and course) and only missing ones are added. Records
    ``student:dev``, ``course:<key>`` and ``module:<key>:<position>`` in ``ctx.refs``.

    Raises:
        KeyError: the auth seed did not record the student or educator user.
    """
    student = await _student(session, ctx.user(DEV_STUDENT_EMAIL))
    ctx.refs["student:dev"] = student.id
    educator_id = ctx.user(DEV_EDUCATOR_EMAIL)
    courses: dict[str, Course] = {}
    modules_by_course: dict[str, list[Module]] = {}
    for spec in _COURSES:
        course = await _course(session, spec, educator_id)
        ctx.refs[f"course:{spec.key}"] = course.id
        modules = [
            await _module(session, course, position, title, content)
            for position, (title, content) in enumerate(spec.modules, start=1)
        ]
        for module in modules:
            ctx.refs[f"module:{spec.key}:{module.position}"] = module.id
        await _assessment(session, course, spec)
        courses[spec.key] = course
        modules_by_course[spec.key] = modules

    python_course_id = courses[_PYTHON.key].id
    enrollment = await session.scalar(
        select(Enrollment).where(
            Enrollment.student_id == student.id, Enrollment.course_id == python_course_id
        )
    )
    if enrollment is None:
        session.add(
            Enrollment(
                student_id=student.id,
                course_id=python_course_id,
                status=EnrollmentStatus.ACTIVE,
                progress=_PYTHON_PROGRESS,
            )
        )
    python_modules = modules_by_course[_PYTHON.key]
    for position, score, minutes in _COMPLETED_MODULES:
        await _completed_module(session, student.id, python_modules[position - 1], score, minutes)
    await session.flush()


async def seed_production(session: AsyncSession, ctx: SeedContext) -> None:
    """Nothing: a production education database starts empty (courses come from educators)."""


async def _student(session: AsyncSession, user_id: uuid.UUID) -> Student:
    student = await session.scalar(select(Student).where(Student.user_id == user_id))
    if student is None:
        student = Student(
            user_id=user_id,
            first_name="Demo",
            last_name="Student",
            email=DEV_STUDENT_EMAIL,
            grade="12",
            country="ZA",
        )
        session.add(student)
        await session.flush()
    return student


async def _course(session: AsyncSession, spec: _CourseSeed, instructor_id: uuid.UUID) -> Course:
    course = await session.scalar(select(Course).where(Course.title == spec.title))
    if course is None:
        course = Course(
            title=spec.title,
            description=spec.description,
            instructor_id=instructor_id,
            price=spec.price,
            duration_hours=spec.duration_hours,
            level=spec.level,
            category=spec.category,
            published=True,
        )
        session.add(course)
        await session.flush()
    return course


async def _module(
    session: AsyncSession, course: Course, position: int, title: str, content: str
) -> Module:
    module = await session.scalar(
        select(Module).where(Module.course_id == course.id, Module.position == position)
    )
    if module is None:
        module = Module(
            course_id=course.id,
            position=position,
            title=title,
            content=content,
        )
        session.add(module)
        await session.flush()
    return module


async def _assessment(session: AsyncSession, course: Course, spec: _CourseSeed) -> None:
    found = await session.scalar(
        select(Assessment.id).where(
            Assessment.course_id == course.id, Assessment.title == spec.assessment_title
        )
    )
    if found is None:
        session.add(
            Assessment(
                course_id=course.id,
                title=spec.assessment_title,
                passing_score=70,
                max_score=100,
                questions=list(spec.questions),
            )
        )


async def _completed_module(
    session: AsyncSession, student_id: uuid.UUID, module: Module, score: int, minutes: int
) -> None:
    found = await session.scalar(
        select(LearningProgress.id).where(
            LearningProgress.student_id == student_id, LearningProgress.module_id == module.id
        )
    )
    if found is None:
        finished = utcnow()
        session.add(
            LearningProgress(
                student_id=student_id,
                module_id=module.id,
                completed=True,
                time_spent_minutes=minutes,
                score=score,
                started_at=finished - dt.timedelta(minutes=minutes),
                completed_at=finished,
            )
        )
