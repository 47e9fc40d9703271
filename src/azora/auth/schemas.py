"""What the auth operations take and return: typed, validated, and never a password hash."""

from __future__ import annotations

import datetime as dt
import functools
import re
import urllib.parse
import uuid
import zoneinfo
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


class Registration(BaseModel):
    """A new account and the token that verifies its email address (deliver it by email;
    it is stored only as a hash and is never logged)."""

    model_config = ConfigDict(frozen=True)

    user: UserView
    verification_token: str = Field(repr=False)


class Principal(BaseModel):
    """Who a verified access token (or session token) speaks for."""

    model_config = ConfigDict(frozen=True)

    user_id: uuid.UUID
    session_id: uuid.UUID
    role: Role
    expires_at: dt.datetime


class SignIn(BaseModel):
    """What a successful sign-in or refresh hands to the client.

    ``access_token`` is the short-lived JWT for API calls; ``refresh_token`` is exchanged
    (once) for the next pair; ``session_token`` is the session's own opaque credential for
    cookie-based clients such as the studio (see ``AuthService.authenticate_session``).
    None of them is stored: the database keeps their hashes.
    """

    model_config = ConfigDict(frozen=True)

    user_id: uuid.UUID
    session_id: uuid.UUID
    role: Role
    access_token: str = Field(repr=False)
    access_expires_at: dt.datetime
    refresh_token: str = Field(repr=False)
    refresh_expires_at: dt.datetime
    session_token: str | None = Field(default=None, repr=False)
    token_type: str = "bearer"


class SessionView(BaseModel):
    """One active session as its owner sees it."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    id: uuid.UUID
    ip: str | None
    user_agent: str | None
    created_at: dt.datetime
    last_seen_at: dt.datetime | None
    expires_at: dt.datetime


class MFAEnrolment(BaseModel):
    """A started TOTP enrolment: show ``provisioning_uri`` as a QR code (``secret`` is
    the same key for typing in by hand). Confirm with a first code to enable it."""

    model_config = ConfigDict(frozen=True)

    provisioning_uri: str = Field(repr=False)
    secret: str = Field(repr=False)


class IdentityView(BaseModel):
    """An external identity (OAuth provider + subject) linked to an account."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    provider: str
    provider_subject: str
    created_at: dt.datetime


_PROVIDER = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


def provider_name(value: str) -> str:
    """``value`` as a provider name (lower-case slug such as ``google``).

    Raises:
        ValueError: not a slug of 1 to 64 characters.
    """
    value = value.strip().lower()
    if not _PROVIDER.match(value):
        raise ValueError("a provider is a lower-case name such as 'google' (1-64 characters)")
    return value


def provider_subject(value: str) -> str:
    """``value`` as a provider's subject id.

    Raises:
        ValueError: empty, over 255 characters or with control characters.
    """
    value = value.strip()
    if not 1 <= len(value) <= 255 or any(ord(c) < 32 for c in value):
        raise ValueError("a subject has 1 to 255 printable characters")
    return value


class ProfileView(BaseModel):
    """A user's own profile."""

    model_config = ConfigDict(frozen=True, from_attributes=True)

    user_id: uuid.UUID
    display_name: str | None
    avatar_url: str | None
    bio: str | None
    country: str
    locale: str | None
    timezone: str | None
    updated_at: dt.datetime


_COUNTRY = re.compile(r"^[A-Z]{2}$")
_LOCALE = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8}){0,4}$")


@functools.cache
def _time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _avatar_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urllib.parse.urlsplit(value)
    if parts.scheme != "https" or not parts.hostname or any(c.isspace() for c in value):
        raise ValueError("an avatar URL is an https:// address")
    return value


def _country(value: str) -> str:
    value = value.upper()
    if not _COUNTRY.match(value):
        raise ValueError("a country is a two-letter ISO 3166 code such as ZA")
    return value


def _locale(value: str | None) -> str | None:
    if value is not None and not _LOCALE.match(value):
        raise ValueError("a locale is a language tag such as en-ZA")
    return value


def _timezone(value: str | None) -> str | None:
    if value is not None and value not in _time_zones():
        raise ValueError("a time zone is an IANA name such as Africa/Johannesburg")
    return value


class ProfileUpdate(BaseModel):
    """Changes to one's own profile: only the fields given are changed; ``None`` clears
    an optional field."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    avatar_url: Annotated[str | None, Field(max_length=2048), AfterValidator(_avatar_url)] = None
    bio: str | None = Field(default=None, max_length=2000)
    country: Annotated[str, AfterValidator(_country)] = "ZA"
    locale: Annotated[str | None, Field(max_length=35), AfterValidator(_locale)] = None
    timezone: Annotated[str | None, Field(max_length=64), AfterValidator(_timezone)] = None

    def changes(self) -> dict[str, object]:
        """The fields that were given, with their values."""
        return {name: getattr(self, name) for name in sorted(self.model_fields_set)}
