"""Roles and what they may do: the one check the API and the studio use.

    require(principal, Permission.COURSE_AUTHOR)   # raises PermissionDenied

A permission says what kind of action a role may take; whether the action concerns the
caller's own data (their wallet, their enrolment) is the service's ownership check
(row-level security on PostgreSQL, the services' own filters on SQLite).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from azora.auth.errors import PermissionDenied
from azora.auth.models import Role
from azora.auth.schemas import Principal


class Permission(StrEnum):
    """An action the API or the studio guards."""

    PROFILE_EDIT_OWN = "profile:edit_own"
    COURSE_READ = "course:read"
    COURSE_ENROL = "course:enrol"
    COURSE_AUTHOR = "course:author"
    GRADE_SUBMISSIONS = "submission:grade"
    JOB_APPLY = "job:apply"
    JOB_POST = "job:post"
    WALLET_USE_OWN = "wallet:use_own"
    TUTORING_USE = "tutoring:use"
    STUDIO_ACCESS = "studio:access"
    USER_MANAGE = "user:manage"
    AUDIT_READ = "audit:read"
    LEDGER_ADMIN = "ledger:admin"
    EVENTS_PUBLISH = "events:publish"


_EVERYONE = frozenset(
    {
        Permission.PROFILE_EDIT_OWN,
        Permission.COURSE_READ,
        Permission.WALLET_USE_OWN,
        Permission.TUTORING_USE,
    }
)

#: Each role's permissions. Admins hold every permission an operator needs; the service
#: role (other services and workers) holds the cross-user ones, not the studio.
ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.STUDENT: _EVERYONE | {Permission.COURSE_ENROL, Permission.JOB_APPLY},
    Role.EDUCATOR: _EVERYONE
    | {Permission.COURSE_ENROL, Permission.COURSE_AUTHOR, Permission.GRADE_SUBMISSIONS},
    Role.EMPLOYER: _EVERYONE | {Permission.JOB_POST},
    Role.ADMIN: frozenset(Permission) - {Permission.EVENTS_PUBLISH},
    Role.SERVICE: frozenset(
        {
            Permission.COURSE_READ,
            Permission.LEDGER_ADMIN,
            Permission.EVENTS_PUBLISH,
            Permission.AUDIT_READ,
        }
    ),
}


def has_permission(role: Role, permission: Permission) -> bool:
    """True when ``role`` grants ``permission``."""
    return permission in ROLE_PERMISSIONS.get(role, frozenset())


def require(principal: Principal, permission: Permission) -> None:
    """Allow the call if the principal's role grants ``permission``.

    Raises:
        PermissionDenied: it does not.
    """
    if not has_permission(principal.role, permission):
        raise PermissionDenied(
            f"the {principal.role} role may not {permission.value.replace(':', ' ')}",
            hint="ask an administrator if you need this",
        )
