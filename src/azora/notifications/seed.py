"""Seed data for ``azora_notifications``: a few notifications for the development student."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from azora.db.columns import utcnow
from azora.db.seeding import DEV_STUDENT_EMAIL, SeedContext
from azora.notifications.models import Notification, NotificationKind


@dataclass(frozen=True)
class _SeedNotification:
    kind: NotificationKind
    title: str
    message: str
    read: bool = False


_DEV_NOTIFICATIONS: tuple[_SeedNotification, ...] = (
    _SeedNotification(
        NotificationKind.SUCCESS,
        "Welcome to Azora",
        "Your account is ready. Learn, earn AZR and meet the family.",
    ),
    _SeedNotification(
        NotificationKind.INFO,
        "Your first course is waiting",
        "Introduction to Python is open: start the first module whenever you are ready.",
    ),
    _SeedNotification(
        NotificationKind.SUCCESS,
        "Welcome bonus received",
        "Your AZR wallet has been funded with a welcome bonus.",
        read=True,
    ),
)


async def seed_production(session: AsyncSession, ctx: SeedContext) -> None:
    """Production has no users, so there is nothing to notify: adds nothing."""


async def seed_development(session: AsyncSession, ctx: SeedContext) -> None:
    """Three notifications for the student (one already read); flushes, never commits.

    Idempotent by (user, title): only missing titles are added. Raises ``KeyError`` when
    auth did not seed the student.
    """
    student_id = ctx.user(DEV_STUDENT_EMAIL)
    titles = [item.title for item in _DEV_NOTIFICATIONS]
    existing = set(
        await session.scalars(
            select(Notification.title).where(
                Notification.user_id == student_id, Notification.title.in_(titles)
            )
        )
    )
    now = utcnow()
    for item in _DEV_NOTIFICATIONS:
        if item.title in existing:
            continue
        session.add(
            Notification(
                user_id=student_id,
                kind=item.kind,
                title=item.title,
                message=item.message,
                is_read=item.read,
                read_at=now if item.read else None,
            )
        )
    await session.flush()
