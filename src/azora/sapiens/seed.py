"""Seed data for ``azora_sapiens``: a tutoring exchange and a learning path for the student."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from azora.db.columns import utcnow
from azora.db.seeding import DEV_STUDENT_EMAIL, SeedContext
from azora.sapiens.models import (
    LearningInsight,
    LearningPath,
    Level,
    Message,
    MessageRole,
    PathStatus,
    PathStep,
    Progress,
    SessionStatus,
    StudentProfile,
    TutoringSession,
)

_SUBJECT = "Python"
_PATH_TITLE = "Python mastery"
_INSIGHT_TYPE = "knowledge_gap"

_EXCHANGE: tuple[tuple[MessageRole, str], ...] = (
    (MessageRole.STUDENT, "What is the difference between a list and a tuple in Python?"),
    (
        MessageRole.TUTOR,
        "Both hold ordered items. A list is mutable: you can append or change items."
        " A tuple is immutable, so it is hashable and can be a dictionary key.",
    ),
    (MessageRole.STUDENT, "So I should use a tuple for fixed pairs like coordinates?"),
    (
        MessageRole.TUTOR,
        "Exactly. Use a tuple for a fixed record and a list for a collection that grows.",
    ),
)


@dataclass(frozen=True)
class _StepSeed:
    title: str
    description: str
    estimated_hours: float
    completed: bool = False


_STEPS = (
    _StepSeed("Python basics", "Variables, types, expressions and control flow.", 4.0, True),
    _StepSeed("Data structures", "Lists, tuples, dictionaries and sets in practice.", 6.0),
    _StepSeed("Functions and modules", "Writing reusable functions; organising code.", 6.0),
    _StepSeed("Object-oriented Python", "Classes, dataclasses and protocols.", 8.0),
    _StepSeed("Testing and tooling", "pytest, type hints and linters.", 6.0),
)


async def seed_development(session: AsyncSession, ctx: SeedContext) -> None:
    """Ensure the student's tutoring session, learning path, progress and profile exist.

    Idempotent: each row is matched by its natural key (student and subject or title,
    path and position, ...) and only missing rows are added. Raises ``KeyError`` when
    auth did not seed the student.
    """
    student_id = ctx.user(DEV_STUDENT_EMAIL)
    tutoring = await _ensure_tutoring_session(session, student_id)
    await _ensure_exchange(session, tutoring)
    await _ensure_insight(session, tutoring)
    path = await _ensure_learning_path(session, student_id)
    await _ensure_steps(session, path)
    await _ensure_progress(session, student_id, path)
    await _ensure_student_profile(session, student_id)
    await session.flush()


async def seed_production(session: AsyncSession, ctx: SeedContext) -> None:
    """Production needs no sapiens data: this writes nothing."""
    return


async def _ensure_tutoring_session(session: AsyncSession, student_id: uuid.UUID) -> TutoringSession:
    tutoring = await session.scalar(
        select(TutoringSession)
        .where(TutoringSession.student_id == student_id, TutoringSession.subject == _SUBJECT)
        .order_by(TutoringSession.id)
        .limit(1)
    )
    if tutoring is None:
        tutoring = TutoringSession(
            student_id=student_id, subject=_SUBJECT, status=SessionStatus.ACTIVE
        )
        session.add(tutoring)
        await session.flush()
    return tutoring


async def _ensure_exchange(session: AsyncSession, tutoring: TutoringSession) -> None:
    existing = await session.scalar(
        select(Message.id).where(Message.session_id == tutoring.id).limit(1)
    )
    if existing is not None:
        return
    session.add_all(
        Message(session_id=tutoring.id, role=role, content=content) for role, content in _EXCHANGE
    )


async def _ensure_insight(session: AsyncSession, tutoring: TutoringSession) -> None:
    existing = await session.scalar(
        select(LearningInsight.id)
        .where(
            LearningInsight.session_id == tutoring.id,
            LearningInsight.insight_type == _INSIGHT_TYPE,
        )
        .limit(1)
    )
    if existing is not None:
        return
    session.add(
        LearningInsight(
            session_id=tutoring.id,
            student_id=tutoring.student_id,
            insight_type=_INSIGHT_TYPE,
            description="Unsure when to choose immutable sequences; revisit tuples and hashing.",
            confidence=0.72,
        )
    )


async def _ensure_learning_path(session: AsyncSession, student_id: uuid.UUID) -> LearningPath:
    path = await session.scalar(
        select(LearningPath)
        .where(LearningPath.student_id == student_id, LearningPath.title == _PATH_TITLE)
        .order_by(LearningPath.id)
        .limit(1)
    )
    if path is None:
        path = LearningPath(
            student_id=student_id,
            subject=_SUBJECT,
            title=_PATH_TITLE,
            current_level=Level.BEGINNER,
            target_level=Level.ADVANCED,
            difficulty=Level.INTERMEDIATE,
            estimated_hours=sum(step.estimated_hours for step in _STEPS),
            total_steps=len(_STEPS),
            completed_steps=sum(step.completed for step in _STEPS),
            status=PathStatus.ACTIVE,
        )
        session.add(path)
        await session.flush()
    return path


async def _ensure_steps(session: AsyncSession, path: LearningPath) -> None:
    existing = set(
        await session.scalars(select(PathStep.position).where(PathStep.path_id == path.id))
    )
    now = utcnow()
    for position, step in enumerate(_STEPS, start=1):
        if position in existing:
            continue
        session.add(
            PathStep(
                path_id=path.id,
                position=position,
                title=step.title,
                description=step.description,
                estimated_hours=step.estimated_hours,
                resources=[
                    {"title": "The Python Tutorial", "url": "https://docs.python.org/3/tutorial/"}
                ],
                completed=step.completed,
                completed_at=now if step.completed else None,
            )
        )


async def _ensure_progress(
    session: AsyncSession, student_id: uuid.UUID, path: LearningPath
) -> None:
    existing = await session.scalar(
        select(Progress.id).where(Progress.student_id == student_id, Progress.path_id == path.id)
    )
    if existing is not None:
        return
    total, done = path.total_steps, path.completed_steps
    session.add(
        Progress(
            student_id=student_id,
            path_id=path.id,
            # The step after the completed ones (positions start at 1).
            current_step=min(done + 1, total),
            total_steps=total,
            completion_rate=100.0 * done / total if total else 0.0,
            time_spent_minutes=240,
            last_activity_at=utcnow(),
        )
    )


async def _ensure_student_profile(session: AsyncSession, student_id: uuid.UUID) -> None:
    existing = await session.scalar(
        select(StudentProfile.id).where(StudentProfile.student_id == student_id)
    )
    if existing is not None:
        return
    session.add(
        StudentProfile(
            student_id=student_id,
            learning_style="visual",
            strengths=["logical reasoning", "persistence"],
            weaknesses=["data structures"],
            interests=["Python", "web development", "data analysis"],
            goals={"target_level": Level.ADVANCED.value, "weekly_hours": 5},
        )
    )
