"""Profiles: each user reads and changes their own, with validated fields."""

from __future__ import annotations

import uuid

import pytest

from azora.auth.errors import UserNotFound
from azora.auth.schemas import ProfileUpdate
from azora.auth.service import AuthService
from azora.db.engines import Databases
from azora.errors import InvalidInput

from .conftest import IP, audit_rows, register


async def test_a_new_account_has_a_profile(auth: AuthService) -> None:
    registration = await register(auth)
    profile = await auth.get_profile(registration.user.id)
    assert (profile.user_id, profile.display_name, profile.country) == (
        registration.user.id,
        "Ama",
        "ZA",
    )


async def test_an_update_changes_only_the_given_fields(
    auth: AuthService, databases: Databases
) -> None:
    registration = await register(auth)
    user_id = registration.user.id
    await auth.update_profile(user_id, {"bio": "Learns Python.", "locale": "en-ZA"})

    updated = await auth.update_profile(
        user_id,
        ProfileUpdate(
            country="ng", timezone="Africa/Lagos", avatar_url="https://cdn.example/a.png"
        ),
        ip=IP,
    )

    assert updated.country == "NG"
    assert (updated.bio, updated.locale, updated.timezone) == (
        "Learns Python.",
        "en-ZA",
        "Africa/Lagos",
    )
    assert updated == await auth.get_profile(user_id)
    cleared = await auth.update_profile(user_id, {"bio": None})
    assert cleared.bio is None
    assert cleared.locale == "en-ZA"
    audits = await audit_rows(databases, "auth.profile.updated")
    assert [row["metadata"]["fields"] for row in audits] == [
        ["bio", "locale"],
        ["avatar_url", "country", "timezone"],
        ["bio"],
    ]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"country": "South Africa"}, "country"),
        ({"country": None}, "country"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"avatar_url": "javascript:alert(1)"}, "avatar_url"),
        ({"avatar_url": "http://plain.example/a.png"}, "avatar_url"),
        ({"locale": "not a locale"}, "locale"),
        ({"display_name": ""}, "display_name"),
        ({"bio": "x" * 2001}, "bio"),
        ({"role": "admin"}, "role"),
    ],
)
async def test_invalid_changes_are_refused_with_the_field_named(
    auth: AuthService, changes: dict[str, object], field: str
) -> None:
    registration = await register(auth)
    before = await auth.get_profile(registration.user.id)
    with pytest.raises(InvalidInput, match=f"^{field}"):
        await auth.update_profile(registration.user.id, changes)
    assert await auth.get_profile(registration.user.id) == before


async def test_one_user_never_sees_another_users_profile(auth: AuthService) -> None:
    first, second = await register(auth), await register(auth)
    assert (await auth.get_profile(first.user.id)).user_id == first.user.id
    assert (await auth.get_profile(second.user.id)).user_id == second.user.id
    with pytest.raises(UserNotFound):
        await auth.get_profile(uuid.uuid4())
    with pytest.raises(UserNotFound):
        await auth.update_profile(uuid.uuid4(), {"bio": "x"})
