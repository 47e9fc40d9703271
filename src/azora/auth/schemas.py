"""What the auth operations take and return: typed, validated, and never a password hash."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from azora.auth.models import Role

# Deliberately loose (one @, a dot in the domain, no spaces): deliverability is proven by
# the verification email, not by a pattern.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    value = value.strip().lower()
    if not _EMAIL.match(value):
        raise ValueError("not an email address")
    return value


def _registrable(role: Role) -> Role:
    if role in (Role.ADMIN, Role.SERVICE):
        raise ValueError(f"the {role} role is not open to registration")
    return role


Email = Annotated[str, Field(max_length=320), AfterValidator(_email)]


class NewUser(BaseModel):
    """A registration: the password is hashed at once and never stored or returned."""

    model_config = ConfigDict(frozen=True, str_strip_whitespace=True)

    email: Email
    password: str = Field(min_length=8, max_length=256, repr=False)
    name: str = Field(min_length=1, max_length=200)
    # Admin and service accounts are created by operators, never by registration.
    role: Annotated[Role, AfterValidator(_registrable)] = Role.STUDENT


class UserView(BaseModel):
    """A user as other parts see it (no password hash, no MFA secret)."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: uuid.UUID
    email: str
    name: str
    role: Role
    is_email_verified: bool
    is_active: bool
    created_at: dt.datetime
