"""External identities (OAuth-ready): link, unlink and list a user's own.

An identity is a provider name and the provider's subject id for the person. The pair
belongs to one account at most (a unique constraint): linking one that another account
holds is refused. Signing in through an identity is in :mod:`azora.auth.login`. No
provider is called here; the API's OAuth callback proves the identity first.
"""

from __future__ import annotations

import uuid

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from azora.auth.context import AuthContext, Client
from azora.auth.errors import IdentityLinkedElsewhere, IdentityNotLinked, UserNotFound
from azora.auth.models import OAuthAccount, User
from azora.auth.schemas import IdentityView, provider_name, provider_subject
from azora.errors import InvalidInput


def _validated(provider: str, subject: str) -> tuple[str, str]:
    try:
        return provider_name(provider), provider_subject(subject)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


async def link(
    ctx: AuthContext, user_id: uuid.UUID, provider: str, subject: str, client: Client
) -> IdentityView:
    """Link the identity to the user's own account (linking it again changes nothing).

    Raises:
        InvalidInput: malformed provider or subject.
        UserNotFound: no such user.
        IdentityLinkedElsewhere: another account holds it (nothing is written).
    """
    provider, subject = _validated(provider, subject)
    try:
        async with ctx.for_user(user_id) as uow:
            exists = await uow.session.scalar(
                select(User.id).where(User.id == user_id, User.deleted_at.is_(None))
            )
            if exists is None:
                raise UserNotFound(f"no user {user_id}")
            # Row-level security hides other users' links; the unique constraint does not.
            mine = await uow.session.scalar(
                select(OAuthAccount).where(
                    OAuthAccount.user_id == user_id,
                    OAuthAccount.provider == provider,
                    OAuthAccount.provider_subject == subject,
                )
            )
            if mine is None:
                mine = OAuthAccount(user_id=user_id, provider=provider, provider_subject=subject)
                uow.session.add(mine)
                await uow.session.flush()
                uow.audit(
                    client.audit(
                        "auth.identity.linked",
                        user_id=user_id,
                        resource="identity",
                        resource_id=mine.id,
                        provider=provider,
                    )
                )
            view = IdentityView.model_validate(mine)
    except IntegrityError:
        raise IdentityLinkedElsewhere(
            f"this {provider} identity is linked to another account",
            hint="sign in with it, or unlink it from that account first",
        ) from None
    return view


async def unlink(
    ctx: AuthContext, user_id: uuid.UUID, provider: str, subject: str, client: Client
) -> None:
    """Remove the identity from the user's own account.

    Raises:
        InvalidInput: malformed provider or subject.
        IdentityNotLinked: the user's account does not have it.
    """
    provider, subject = _validated(provider, subject)
    async with ctx.for_user(user_id) as uow:
        removed = await uow.session.scalar(
            delete(OAuthAccount)
            .where(
                OAuthAccount.user_id == user_id,
                OAuthAccount.provider == provider,
                OAuthAccount.provider_subject == subject,
            )
            .returning(OAuthAccount.id)
        )
        if removed is None:
            raise IdentityNotLinked(f"this {provider} identity is not linked to your account")
        uow.audit(
            client.audit(
                "auth.identity.unlinked",
                user_id=user_id,
                resource="identity",
                resource_id=removed,
                provider=provider,
            )
        )


async def linked(ctx: AuthContext, user_id: uuid.UUID) -> list[IdentityView]:
    """The identities linked to the user's own account, oldest first."""
    async with ctx.for_user(user_id) as uow:
        rows = await uow.session.scalars(
            select(OAuthAccount)
            .where(OAuthAccount.user_id == user_id)
            .order_by(OAuthAccount.created_at, OAuthAccount.id)
        )
        return [IdentityView.model_validate(row) for row in rows]
