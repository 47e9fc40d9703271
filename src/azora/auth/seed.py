"""Seed data of the auth database: the development accounts (production has no users)."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from azora.auth.models import Role, User, UserProfile
from azora.auth.passwords import hash_password
from azora.db.seeding import (
    DEV_ADMIN_EMAIL,
    DEV_EDUCATOR_EMAIL,
    DEV_EMPLOYER_EMAIL,
    DEV_SEED_PASSWORD,
    DEV_STUDENT_EMAIL,
    SeedContext,
)

_DEV_ACCOUNTS: tuple[tuple[str, str, Role], ...] = (
    (DEV_STUDENT_EMAIL, "Thandi Student", Role.STUDENT),
    (DEV_EDUCATOR_EMAIL, "Sipho Educator", Role.EDUCATOR),
    (DEV_EMPLOYER_EMAIL, "Lerato Employer", Role.EMPLOYER),
    (DEV_ADMIN_EMAIL, "Studio Admin", Role.ADMIN),
)


def _admin_password(ctx: SeedContext) -> str:
    if ctx.admin_password is not None:
        return ctx.admin_password
    password = secrets.token_urlsafe(18)
    ctx.notices.append(
        f"studio admin {DEV_ADMIN_EMAIL} created with password {password}"
        " (shown once; set AZORA_ADMIN_PASSWORD to choose it)"
    )
    return password


async def seed_development(session: AsyncSession, ctx: SeedContext) -> None:
    """Create the three test accounts (password ``Azora2025!``) and the studio admin.

    Existing accounts are found by email and left untouched; ``ctx.users`` gets all four.
    """
    emails = [email for email, _, _ in _DEV_ACCOUNTS]
    existing = {
        user.email: user.id
        for user in await session.scalars(select(User).where(User.email.in_(emails)))
    }
    for email, name, role in _DEV_ACCOUNTS:
        if email not in existing:
            password = _admin_password(ctx) if role is Role.ADMIN else DEV_SEED_PASSWORD
            user = User(
                email=email,
                name=name,
                role=role,
                password_hash=hash_password(password),
                is_email_verified=True,
            )
            session.add(user)
            session.add(UserProfile(user_id=user.id, display_name=name.split()[0]))
            await session.flush()
            existing[email] = user.id
        ctx.users[email] = existing[email]


async def seed_production(session: AsyncSession, ctx: SeedContext) -> None:
    """Production has no seeded accounts: nothing is written."""
