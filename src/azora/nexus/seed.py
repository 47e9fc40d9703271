"""Seed data for ``azora_nexus``: the student's preferences, a recommendation and an interaction."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from azora.db.seeding import DEV_STUDENT_EMAIL, SeedContext
from azora.nexus.models import Interaction, Recommendation, UserPreference

#: The course the seed recommends; the education seed records its id under this key.
_COURSE_REF = "course:python-intro"


async def seed_development(session: AsyncSession, ctx: SeedContext) -> None:
    """Ensure the student's preferences, one course recommendation and one course view exist.

    Idempotent: preferences are matched by user, the recommendation by (user, kind), the
    interaction by (user, kind, item type); only missing rows are added. Raises
    ``KeyError`` when auth did not seed the student.
    """
    student_id = ctx.user(DEV_STUDENT_EMAIL)
    course_id = _course_id(ctx)
    await _ensure_preferences(session, student_id)
    await _ensure_recommendation(session, student_id, course_id)
    await _ensure_interaction(session, student_id, course_id)
    await session.flush()


async def seed_production(session: AsyncSession, ctx: SeedContext) -> None:
    """Production needs no nexus data: this writes nothing."""
    return


def _course_id(ctx: SeedContext) -> uuid.UUID:
    # The course lives in azora_education, whose seed runs before this one.
    return ctx.refs[_COURSE_REF]


async def _ensure_preferences(session: AsyncSession, user_id: uuid.UUID) -> None:
    existing = await session.scalar(
        select(UserPreference.id).where(UserPreference.user_id == user_id)
    )
    if existing is not None:
        return
    session.add(
        UserPreference(
            user_id=user_id,
            preferences={"language": "en", "difficulty": "intermediate", "email_digest": True},
            interests=["Python", "web development", "data analysis"],
        )
    )


async def _ensure_recommendation(
    session: AsyncSession, user_id: uuid.UUID, course_id: uuid.UUID
) -> None:
    existing = await session.scalar(
        select(Recommendation.id)
        .where(Recommendation.user_id == user_id, Recommendation.kind == "course")
        .limit(1)
    )
    if existing is not None:
        return
    session.add(
        Recommendation(
            user_id=user_id,
            kind="course",
            item_id=course_id,
            score=0.92,
            reason="Matches your interest in Python and your active learning path.",
        )
    )


async def _ensure_interaction(
    session: AsyncSession, user_id: uuid.UUID, course_id: uuid.UUID
) -> None:
    existing = await session.scalar(
        select(Interaction.id)
        .where(
            Interaction.user_id == user_id,
            Interaction.kind == "view",
            Interaction.item_type == "course",
        )
        .limit(1)
    )
    if existing is not None:
        return
    session.add(
        Interaction(
            user_id=user_id,
            kind="view",
            item_type="course",
            item_id=course_id,
            metadata_={"surface": "catalogue"},
        )
    )
