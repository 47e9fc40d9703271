"""What can go wrong in the auth operations, each with a stable code; nothing is written."""

from __future__ import annotations

from azora.errors import AzoraError


class AuthError(AzoraError):
    """An auth operation was refused."""

    code = "auth_error"


class UserNotFound(AuthError):
    """No (undeleted) user with that id."""

    code = "user_not_found"


class EmailTaken(AuthError):
    """Another account already uses that email address."""

    code = "email_taken"
