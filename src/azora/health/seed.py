"""Seed data for ``azora_health``: none; its logs and checks come from running the platform."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from azora.db.seeding import SeedContext


async def seed_production(session: AsyncSession, ctx: SeedContext) -> None:
    """Adds nothing: health rows are recorded by the running system, never seeded."""


async def seed_development(session: AsyncSession, ctx: SeedContext) -> None:
    """Adds nothing: health rows are recorded by the running system, never seeded."""
