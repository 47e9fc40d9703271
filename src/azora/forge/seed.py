"""Seed data for ``azora_forge``: open jobs by the employer and the student's skill profile."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from azora.db.seeding import DEV_EMPLOYER_EMAIL, DEV_STUDENT_EMAIL, SeedContext
from azora.forge.models import Job, JobStatus, JobType, SkillProfile
from azora.types import Currency


@dataclass(frozen=True)
class _JobSeed:
    title: str
    description: str
    location: str
    job_type: JobType
    budget: Decimal
    skills: tuple[str, ...]


_DEV_JOBS = (
    _JobSeed(
        title="Web developer (React)",
        description=(
            "Build and maintain Azora's learner-facing web apps in React and TypeScript,"
            " working with designers and the API team."
        ),
        location="Remote (South Africa)",
        job_type=JobType.FULL_TIME,
        budget=Decimal("45000.00"),
        skills=("React", "TypeScript", "CSS", "REST APIs"),
    ),
    _JobSeed(
        title="Data analyst",
        description=(
            "Turn learning and marketplace data into dashboards and insights for the"
            " product team; a three-month contract."
        ),
        location="Johannesburg, South Africa",
        job_type=JobType.CONTRACT,
        budget=Decimal("18000.00"),
        skills=("SQL", "Python", "pandas", "Data visualisation"),
    ),
)


async def seed_development(session: AsyncSession, ctx: SeedContext) -> None:
    """Ensure the employer's two open jobs and the student's skill profile exist.

    Idempotent: jobs are matched by (poster, title), the profile by user; only missing
    rows are added. Raises ``KeyError`` when auth did not seed the employer or student.
    """
    employer_id = ctx.user(DEV_EMPLOYER_EMAIL)
    for job in _DEV_JOBS:
        await _ensure_job(session, employer_id, job)
    await _ensure_skill_profile(session, ctx.user(DEV_STUDENT_EMAIL))
    await session.flush()


async def seed_production(session: AsyncSession, ctx: SeedContext) -> None:
    """Production needs no forge data: this writes nothing."""
    return


async def _ensure_job(session: AsyncSession, posted_by: uuid.UUID, job: _JobSeed) -> None:
    existing = await session.scalar(
        select(Job.id).where(Job.posted_by == posted_by, Job.title == job.title).limit(1)
    )
    if existing is not None:
        return
    session.add(
        Job(
            title=job.title,
            description=job.description,
            company="Azora Labs",
            location=job.location,
            job_type=job.job_type,
            budget=job.budget,
            currency=Currency.AZR,
            skills=list(job.skills),
            status=JobStatus.OPEN,
            posted_by=posted_by,
        )
    )


async def _ensure_skill_profile(session: AsyncSession, user_id: uuid.UUID) -> None:
    existing = await session.scalar(select(SkillProfile.id).where(SkillProfile.user_id == user_id))
    if existing is not None:
        return
    session.add(
        SkillProfile(
            user_id=user_id,
            skills=["Python", "SQL", "HTML", "CSS"],
            experience_years=1,
            education="Azora Education: Introduction to Python",
            portfolio_url=None,
            rating=4.5,
        )
    )
