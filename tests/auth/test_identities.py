"""External identities: link, sign in through, unlink; one identity, one account."""

from __future__ import annotations

import pytest

from azora.auth.errors import IdentityLinkedElsewhere, IdentityNotLinked
from azora.auth.events import USER_LOGIN
from azora.auth.service import AuthService
from azora.db.engines import Databases
from azora.errors import InvalidInput

from .conftest import AGENT, IP, audit_rows, outbox_rows, register


async def test_link_sign_in_and_unlink(auth: AuthService, databases: Databases) -> None:
    registration = await register(auth)
    user_id = registration.user.id

    linked = await auth.link_identity(user_id, " Google ", "1098-7654", ip=IP, user_agent=AGENT)
    assert (linked.provider, linked.provider_subject) == ("google", "1098-7654")
    assert await auth.link_identity(user_id, "google", "1098-7654") == linked  # idempotent
    assert await auth.list_identities(user_id) == [linked]

    signed = await auth.login_with_identity("google", "1098-7654", IP, AGENT)

    principal = await auth.verify_access_token(signed.access_token)
    assert principal.user_id == user_id
    assert (await auth.refresh(signed.refresh_token)).user_id == user_id
    [event] = await outbox_rows(databases, USER_LOGIN)
    assert event["payload"]["method"] == "identity"
    [audit] = await audit_rows(databases, "auth.login.succeeded")
    assert audit["metadata"]["method"] == "identity:google"

    await auth.unlink_identity(user_id, "google", "1098-7654")

    assert await auth.list_identities(user_id) == []
    with pytest.raises(IdentityNotLinked):
        await auth.login_with_identity("google", "1098-7654", IP, AGENT)
    with pytest.raises(IdentityNotLinked):
        await auth.unlink_identity(user_id, "google", "1098-7654")
    actions = [row["action"] for row in await audit_rows(databases)]
    assert {"auth.identity.linked", "auth.identity.unlinked", "auth.identity.login_failed"} <= set(
        actions
    )


async def test_an_identity_of_another_account_cannot_be_linked(
    auth: AuthService, databases: Databases
) -> None:
    first, second = await register(auth), await register(auth)
    await auth.link_identity(first.user.id, "github", "octo")
    audits_before = len(await audit_rows(databases))

    with pytest.raises(IdentityLinkedElsewhere):
        await auth.link_identity(second.user.id, "github", "octo")

    assert await auth.list_identities(second.user.id) == []
    assert len(await audit_rows(databases)) == audits_before  # nothing written
    with pytest.raises(IdentityNotLinked):  # and nobody can unlink another's identity
        await auth.unlink_identity(second.user.id, "github", "octo")
    signed = await auth.login_with_identity("github", "octo", IP, AGENT)
    assert signed.user_id == first.user.id


async def test_one_account_may_hold_several_identities(auth: AuthService) -> None:
    registration = await register(auth)
    await auth.link_identity(registration.user.id, "github", "octo")
    await auth.link_identity(registration.user.id, "google", "g-1")
    listed = await auth.list_identities(registration.user.id)
    assert [(i.provider, i.provider_subject) for i in listed] == [
        ("github", "octo"),
        ("google", "g-1"),
    ]


@pytest.mark.parametrize(("provider", "subject"), [("", "x"), ("Not A Slug", "x"), ("g", "")])
async def test_malformed_identities_are_refused(
    auth: AuthService, provider: str, subject: str
) -> None:
    registration = await register(auth)
    with pytest.raises(InvalidInput):
        await auth.link_identity(registration.user.id, provider, subject)
    with pytest.raises(InvalidInput):
        await auth.login_with_identity(provider, subject, IP, AGENT)
