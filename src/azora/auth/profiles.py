"""Profiles: each user reads and changes their own (validated by ``ProfileUpdate``)."""

from __future__ import annotations

import uuid

from pydantic import ValidationError
from sqlalchemy import select

from azora.auth.context import AuthContext, Client
from azora.auth.errors import UserNotFound
from azora.auth.models import User, UserProfile
from azora.auth.schemas import ProfileUpdate, ProfileView
from azora.errors import InvalidInput


async def get(ctx: AuthContext, user_id: uuid.UUID) -> ProfileView:
    """The user's own profile.

    Raises:
        UserNotFound: no such user, or no profile.
    """
    async with ctx.for_user(user_id) as uow:
        profile = await uow.session.scalar(
            select(UserProfile)
            .join(User, User.id == UserProfile.user_id)
            .where(UserProfile.user_id == user_id, User.deleted_at.is_(None))
        )
        if profile is None:
            raise UserNotFound(f"no profile for user {user_id}")
        return ProfileView.model_validate(profile)


def parse_update(changes: dict[str, object]) -> ProfileUpdate:
    """``changes`` (field name → value) validated as a profile update.

    Raises:
        InvalidInput: an unknown field or an invalid value (the message names it).
    """
    try:
        return ProfileUpdate.model_validate(changes)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "profile"
        raise InvalidInput(f"{field}: {error['msg']}") from None


async def update(
    ctx: AuthContext, user_id: uuid.UUID, changes: ProfileUpdate, client: Client
) -> ProfileView:
    """Apply ``changes`` to the user's own profile (creating it if missing).

    Raises:
        UserNotFound: no such user (nothing is written).
    """
    fields = changes.changes()
    async with ctx.for_user(user_id) as uow:
        exists = await uow.session.scalar(
            select(User.id).where(User.id == user_id, User.deleted_at.is_(None))
        )
        if exists is None:
            raise UserNotFound(f"no user {user_id}")
        profile = await uow.session.scalar(
            select(UserProfile).where(UserProfile.user_id == user_id)
        )
        if profile is None:
            profile = UserProfile(user_id=user_id)
            uow.session.add(profile)
        for name, value in fields.items():
            setattr(profile, name, value)
        await uow.session.flush()
        uow.audit(
            client.audit(
                "auth.profile.updated",
                user_id=user_id,
                resource="profile",
                resource_id=profile.id,
                fields=sorted(fields),
            )
        )
        return ProfileView.model_validate(profile)
