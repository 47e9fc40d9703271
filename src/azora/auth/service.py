"""The auth service: the operations the API, the studio and the CLI call.

    auth = AuthService(databases, cache=cache)
    registration = await auth.register("ama@example.org", "a long passphrase", "Ama")
    signed = await auth.login("ama@example.org", "a long passphrase", ip, user_agent)
    principal = await auth.verify_access_token(signed.access_token)

Each method is one use case, implemented in the module named beside it; this class
wires the collaborators (:class:`~azora.auth.context.AuthContext`) once. Operations on a
user's own data take that user's id (normally ``principal.user_id``) and run as that
user, so row-level security on PostgreSQL backs the services' own ``user_id`` filters.
Every operation is audited with the client's ``ip`` and ``user_agent``; no password,
token, TOTP secret or recovery code ever reaches the audit log, an event, an error or
a log line.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping

from azora.auth import accounts, identities, login, mfa, principals, profiles, sessions
from azora.auth.access import AccessClaims
from azora.auth.config import AuthConfig, Clock
from azora.auth.context import AuthContext, Client
from azora.auth.models import Role
from azora.auth.passwords import Passwords
from azora.auth.schemas import (
    IdentityView,
    MFAEnrolment,
    Principal,
    ProfileUpdate,
    ProfileView,
    Registration,
    SessionView,
    SignIn,
    UserView,
)
from azora.auth.users import UserService
from azora.cache import Cache
from azora.db.engines import Databases


class AuthService:
    """Accounts, sign-in, sessions, MFA, identities and profiles (see the module docs)."""

    def __init__(
        self,
        databases: Databases,
        *,
        cache: Cache | None = None,
        config: AuthConfig | None = None,
        passwords: Passwords | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Wire the service.

        ``config`` defaults to the databases' settings; ``passwords`` to the production
        Argon2id parameters; ``clock`` (if given) replaces the configuration's clock.

        Raises:
            ConfigurationError: a JWT secret shorter than 32 bytes.
        """
        config = config or AuthConfig.from_settings(databases.settings)
        if clock is not None:
            config = dataclasses.replace(config, clock=clock)
        self._ctx = AuthContext(databases, cache, config, passwords or Passwords())
        #: Look-ups of accounts (through the cache) and operator-side creation.
        self.users = UserService(databases, cache=cache)

    @property
    def config(self) -> AuthConfig:
        """The configuration in use."""
        return self._ctx.config

    # -- accounts ---------------------------------------------------------------------

    async def register(
        self,
        email: str,
        password: str,
        name: str,
        role: Role | str = Role.STUDENT,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> Registration:
        """See :func:`azora.auth.accounts.register`."""
        client = Client.of(ip, user_agent)
        return await accounts.register(self._ctx, email, password, name, role, client)

    async def issue_email_verification(
        self, user_id: uuid.UUID, *, ip: str | None = None, user_agent: str | None = None
    ) -> str | None:
        """See :func:`azora.auth.accounts.issue_email_verification`."""
        return await accounts.issue_email_verification(
            self._ctx, user_id, Client.of(ip, user_agent)
        )

    async def verify_email(
        self, token: str, *, ip: str | None = None, user_agent: str | None = None
    ) -> UserView:
        """See :func:`azora.auth.accounts.verify_email`."""
        return await accounts.verify_email(self._ctx, token, Client.of(ip, user_agent))

    async def set_password(
        self,
        email: str,
        new_password: str,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> int:
        """See :func:`azora.auth.accounts.set_password` (operators only)."""
        return await accounts.set_password(
            self._ctx, email, new_password, Client.of(ip, user_agent)
        )

    async def request_password_reset(
        self, email: str, *, ip: str | None = None, user_agent: str | None = None
    ) -> str | None:
        """See :func:`azora.auth.accounts.request_password_reset`."""
        return await accounts.request_password_reset(self._ctx, email, Client.of(ip, user_agent))

    async def reset_password(
        self,
        token: str,
        new_password: str,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> int:
        """See :func:`azora.auth.accounts.reset_password`."""
        client = Client.of(ip, user_agent)
        return await accounts.reset_password(self._ctx, token, new_password, client)

    async def change_password(
        self,
        principal: Principal,
        current_password: str,
        new_password: str,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> int:
        """See :func:`azora.auth.accounts.change_password` (the caller's session stays)."""
        return await accounts.change_password(
            self._ctx,
            principal.user_id,
            current_password,
            new_password,
            Client.of(ip, user_agent),
            keep_session=principal.session_id,
        )

    # -- signing in -------------------------------------------------------------------

    async def login(
        self,
        email: str,
        password: str,
        ip: str | None,
        user_agent: str | None,
        totp: str | None = None,
        *,
        recovery_code: str | None = None,
    ) -> SignIn:
        """See :func:`azora.auth.login.login`."""
        factor = mfa.SecondFactor(totp=totp, recovery_code=recovery_code)
        return await login.login(self._ctx, email, password, Client.of(ip, user_agent), factor)

    async def login_with_identity(
        self,
        provider: str,
        subject: str,
        ip: str | None,
        user_agent: str | None,
        totp: str | None = None,
        *,
        recovery_code: str | None = None,
    ) -> SignIn:
        """See :func:`azora.auth.login.login_with_identity`."""
        factor = mfa.SecondFactor(totp=totp, recovery_code=recovery_code)
        client = Client.of(ip, user_agent)
        return await login.login_with_identity(self._ctx, provider, subject, client, factor)

    async def refresh(
        self, refresh_token: str, *, ip: str | None = None, user_agent: str | None = None
    ) -> SignIn:
        """See :func:`azora.auth.sessions.refresh`."""
        return await sessions.refresh(self._ctx, refresh_token, Client.of(ip, user_agent))

    # -- sessions ---------------------------------------------------------------------

    def read_access_token(self, token: str) -> AccessClaims:
        """What a genuine, unexpired access token says, checked without the database or
        the cache: its session may be over (:meth:`verify_access_token` tells).

        Raises:
            TokenExpired: the access token is past its expiry.
            InvalidToken: anything else (signature, algorithm, key id, claims).
        """
        return self._ctx.access.verify(token, now=self._ctx.now())

    async def verify_access_token(self, token: str) -> Principal:
        """See :func:`azora.auth.principals.verify_access_token`."""
        return await principals.verify_access_token(self._ctx, token)

    async def authenticate_session(self, session_token: str) -> Principal:
        """See :func:`azora.auth.principals.authenticate_session`."""
        return await principals.authenticate_session(self._ctx, session_token)

    async def list_sessions(self, user_id: uuid.UUID) -> list[SessionView]:
        """See :func:`azora.auth.sessions.active_sessions`."""
        return await sessions.active_sessions(self._ctx, user_id)

    async def revoke_session(
        self,
        user_id: uuid.UUID,
        session_id: uuid.UUID,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> None:
        """See :func:`azora.auth.sessions.revoke` (signing out is revoking one's own)."""
        await sessions.revoke(self._ctx, user_id, session_id, Client.of(ip, user_agent))

    async def revoke_all_sessions(
        self, user_id: uuid.UUID, *, ip: str | None = None, user_agent: str | None = None
    ) -> int:
        """See :func:`azora.auth.sessions.revoke_all` (log out everywhere)."""
        return await sessions.revoke_all(self._ctx, user_id, Client.of(ip, user_agent))

    # -- MFA --------------------------------------------------------------------------

    async def begin_mfa_enrolment(
        self, user_id: uuid.UUID, *, ip: str | None = None, user_agent: str | None = None
    ) -> MFAEnrolment:
        """See :func:`azora.auth.mfa.begin_enrolment`."""
        return await mfa.begin_enrolment(self._ctx, user_id, Client.of(ip, user_agent))

    async def confirm_mfa(
        self,
        user_id: uuid.UUID,
        code: str,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> list[str]:
        """See :func:`azora.auth.mfa.confirm`; returns the recovery codes (shown once)."""
        return await mfa.confirm(self._ctx, user_id, code, Client.of(ip, user_agent))

    async def disable_mfa(
        self,
        user_id: uuid.UUID,
        code: str,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> None:
        """See :func:`azora.auth.mfa.disable`."""
        await mfa.disable(self._ctx, user_id, code, Client.of(ip, user_agent))

    # -- identities -------------------------------------------------------------------

    async def link_identity(
        self,
        user_id: uuid.UUID,
        provider: str,
        subject: str,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> IdentityView:
        """See :func:`azora.auth.identities.link`."""
        client = Client.of(ip, user_agent)
        return await identities.link(self._ctx, user_id, provider, subject, client)

    async def unlink_identity(
        self,
        user_id: uuid.UUID,
        provider: str,
        subject: str,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> None:
        """See :func:`azora.auth.identities.unlink`."""
        client = Client.of(ip, user_agent)
        await identities.unlink(self._ctx, user_id, provider, subject, client)

    async def list_identities(self, user_id: uuid.UUID) -> list[IdentityView]:
        """See :func:`azora.auth.identities.linked`."""
        return await identities.linked(self._ctx, user_id)

    # -- profiles ---------------------------------------------------------------------

    async def get_profile(self, user_id: uuid.UUID) -> ProfileView:
        """See :func:`azora.auth.profiles.get`."""
        return await profiles.get(self._ctx, user_id)

    async def update_profile(
        self,
        user_id: uuid.UUID,
        changes: ProfileUpdate | Mapping[str, object],
        *,
        ip: str | None = None,
        user_agent: str | None = None,
    ) -> ProfileView:
        """See :func:`azora.auth.profiles.update`; ``changes`` may be a plain mapping.

        Raises:
            InvalidInput: an unknown field or an invalid value.
            UserNotFound: no such user.
        """
        if not isinstance(changes, ProfileUpdate):
            changes = profiles.parse_update(dict(changes))
        return await profiles.update(self._ctx, user_id, changes, Client.of(ip, user_agent))
