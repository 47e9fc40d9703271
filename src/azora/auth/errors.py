"""What can go wrong in the auth operations, each with a stable code.

A refused operation writes nothing, with one deliberate exception: a refused sign-in
or a replayed refresh token still records the attempt (lockout bookkeeping, the revoked
token family, the audit row), because that record is the point of refusing. Messages
never contain a password, a token, a TOTP secret or a recovery code.
"""

from __future__ import annotations

from azora.errors import AzoraError, InvalidInput


class AuthError(AzoraError):
    """An auth operation was refused."""

    code = "auth_error"


class UserNotFound(AuthError):
    """No (undeleted) user with that id."""

    code = "user_not_found"


class EmailTaken(AuthError):
    """Another account already uses that email address."""

    code = "email_taken"


class WeakPassword(AuthError, InvalidInput):
    """The password breaks the password policy (see :mod:`azora.auth.policy`)."""

    code = "weak_password"


class InvalidCredentials(AuthError):
    """Wrong email, password or second factor; deliberately does not say which."""

    code = "invalid_credentials"

    def __init__(self, message: str = "the email address or password is not correct") -> None:
        super().__init__(message)


class TooManyAttempts(AuthError):
    """Sign-in is locked for the account or the address after repeated failures."""

    code = "too_many_attempts"

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(
            "too many failed sign-in attempts",
            hint=f"try again in {retry_after_s} s or reset the password",
        )
        self.retry_after_s = retry_after_s


class MFARequired(AuthError):
    """The password was right; the account needs its second factor to sign in."""

    code = "mfa_required"

    def __init__(self) -> None:
        super().__init__(
            "this account needs a one-time code to sign in",
            hint="send the code from the authenticator app, or a recovery code",
        )


class InvalidToken(AuthError):
    """A token (access, refresh, verification or reset) was refused."""

    code = "invalid_token"


class TokenExpired(InvalidToken):
    """The token was genuine but its time is up."""

    code = "token_expired"


class SessionRevoked(InvalidToken):
    """The token's session was signed out, revoked or has expired."""

    code = "session_revoked"


class RefreshTokenReused(InvalidToken):
    """A refresh token was presented again after it had been exchanged: its whole family
    and its session are revoked (the token may have been stolen)."""

    code = "refresh_token_reused"


class MFAError(AuthError):
    """A multi-factor operation was refused."""

    code = "mfa_error"


class MFANotEnabled(MFAError):
    """The account has no confirmed second factor."""

    code = "mfa_not_enabled"


class MFAAlreadyEnabled(MFAError):
    """The account already has a confirmed second factor."""

    code = "mfa_already_enabled"


class MFAEnrolmentMissing(MFAError):
    """Confirmation without a started enrolment."""

    code = "mfa_enrolment_missing"


class InvalidMFACode(MFAError):
    """The one-time or recovery code is wrong, expired or already used."""

    code = "invalid_mfa_code"

    def __init__(self) -> None:
        super().__init__("the code is not valid (wrong, expired or already used)")


class EncryptedSecretUnreadable(AuthError):
    """A secret encrypted at rest cannot be decrypted with the configured key."""

    code = "secret_unreadable"


class IdentityLinkedElsewhere(AuthError):
    """That external identity already belongs to another account."""

    code = "identity_linked_elsewhere"


class IdentityNotLinked(AuthError):
    """No account has that external identity (or not the caller's account)."""

    code = "identity_not_linked"


class PermissionDenied(AuthError):
    """The caller's role does not grant the permission the operation needs."""

    code = "permission_denied"
