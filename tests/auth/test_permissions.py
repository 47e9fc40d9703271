"""The permission helper the API and the studio use."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from azora.auth.errors import PermissionDenied
from azora.auth.models import Role
from azora.auth.permissions import ROLE_PERMISSIONS, Permission, has_permission, require
from azora.auth.schemas import Principal


def _principal(role: Role) -> Principal:
    return Principal(
        user_id=uuid.uuid4(),
        session_id=uuid.uuid4(),
        role=role,
        expires_at=dt.datetime.now(dt.UTC),
    )


@pytest.mark.parametrize(
    ("role", "permission", "granted"),
    [
        (Role.STUDENT, Permission.COURSE_ENROL, True),
        (Role.STUDENT, Permission.COURSE_AUTHOR, False),
        (Role.STUDENT, Permission.STUDIO_ACCESS, False),
        (Role.EDUCATOR, Permission.COURSE_AUTHOR, True),
        (Role.EDUCATOR, Permission.JOB_POST, False),
        (Role.EMPLOYER, Permission.JOB_POST, True),
        (Role.EMPLOYER, Permission.JOB_APPLY, False),
        (Role.ADMIN, Permission.STUDIO_ACCESS, True),
        (Role.ADMIN, Permission.AUDIT_READ, True),
        (Role.SERVICE, Permission.EVENTS_PUBLISH, True),
        (Role.SERVICE, Permission.STUDIO_ACCESS, False),
    ],
)
def test_roles_grant_what_they_should(role: Role, permission: Permission, granted: bool) -> None:
    assert has_permission(role, permission) is granted


def test_every_role_has_a_permission_set() -> None:
    assert set(ROLE_PERMISSIONS) == set(Role)
    for role in (Role.STUDENT, Role.EDUCATOR, Role.EMPLOYER, Role.ADMIN):
        assert has_permission(role, Permission.PROFILE_EDIT_OWN)


def test_require_passes_or_raises_a_domain_error() -> None:
    require(_principal(Role.EDUCATOR), Permission.COURSE_AUTHOR)
    with pytest.raises(PermissionDenied, match="student role may not course author") as caught:
        require(_principal(Role.STUDENT), Permission.COURSE_AUTHOR)
    assert caught.value.code == "permission_denied"
