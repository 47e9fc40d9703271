"""Seed data for ``azora_family``: the eleven members everywhere, a first chat in development."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from azora.db.seeding import DEV_STUDENT_EMAIL, SeedContext
from azora.family.members import MEMBERS
from azora.family.models import Conversation, FamilyMember, Message, MessageRole

_DEV_CHAT_MEMBER = "Elara"
_DEV_CHAT: tuple[tuple[MessageRole, str, str | None], ...] = (
    (MessageRole.USER, "Hello Elara! Where should I begin?", None),
    (
        MessageRole.MEMBER,
        "Welcome, my child. Start with the introduction to Python: one module a day, "
        "and come and tell me what you learned.",
        "proud",
    ),
)


async def seed_production(session: AsyncSession, ctx: SeedContext) -> None:
    """Add whichever of the eleven family members are missing (by name); flushes, never commits.

    Members that already exist are left as they are, so a second run adds nothing.
    """
    await _ensure_members(session)


async def seed_development(session: AsyncSession, ctx: SeedContext) -> None:
    """The eleven members, plus the student's first two-message conversation with Elara.

    Idempotent: the conversation is created only when the student has none with Elara.
    Raises ``KeyError`` when auth did not seed the student.
    """
    members = await _ensure_members(session)
    student_id = ctx.user(DEV_STUDENT_EMAIL)
    elara = members[_DEV_CHAT_MEMBER]
    existing = await session.scalar(
        select(Conversation.id)
        .where(Conversation.user_id == student_id, Conversation.member_id == elara.id)
        .limit(1)
    )
    if existing is not None:
        return
    conversation = Conversation(
        member_id=elara.id,
        user_id=student_id,
        context={"topic": "getting started"},
        messages=[
            Message(member_id=elara.id, user_id=student_id, role=role, content=content, mood=mood)
            for role, content, mood in _DEV_CHAT
        ],
    )
    session.add(conversation)
    await session.flush()


async def _ensure_members(session: AsyncSession) -> dict[str, FamilyMember]:
    """All listed members by name, inserting (and flushing) the ones that are missing."""
    names = [profile.name for profile in MEMBERS]
    found = await session.scalars(select(FamilyMember).where(FamilyMember.name.in_(names)))
    members = {member.name: member for member in found}
    for profile in MEMBERS:
        if profile.name in members:
            continue
        member = FamilyMember(
            name=profile.name,
            role=profile.role,
            traits=list(profile.traits),
            background=profile.background,
            relationships=dict(profile.relationships),
        )
        session.add(member)
        members[profile.name] = member
    await session.flush()
    return members
