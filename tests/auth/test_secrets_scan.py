"""No password, token, TOTP secret or recovery code reaches a log, the audit log, an
event, an error message, or any column of the auth database in the clear."""

from __future__ import annotations

import json
import logging
import re

import pytest
from sqlalchemy import select

from azora.auth.errors import (
    AuthError,
    InvalidCredentials,
    MFARequired,
    RefreshTokenReused,
    TooManyAttempts,
    WeakPassword,
)
from azora.auth.mfa import current_step, totp_code
from azora.auth.models import Base
from azora.auth.service import AuthService
from azora.db.engines import Databases
from azora.types import ServiceName

from .conftest import AGENT, IP, PASSWORD, FakeClock, audit_rows, new_email, outbox_rows

NEW_PASSWORD = "the replacement passphrase"
WRONG_PASSWORD = "a mistyped passphrase"


async def _everything_stored(databases: Databases) -> str:
    """Every row of every auth table, as text."""
    dumped = []
    async with databases.owner_engine(ServiceName.AUTH).connect() as connection:
        for table in Base.metadata.sorted_tables:
            for row in await connection.execute(select(table)):
                dumped.append(json.dumps(dict(row._mapping), default=str))
    return "\n".join(dumped)


async def _refused(errors: list[AuthError], call: object, kind: type[AuthError]) -> None:
    with pytest.raises(kind) as caught:
        await call  # type: ignore[misc]
    errors.append(caught.value)


async def test_a_full_flow_leaks_no_secret(
    auth: AuthService,
    databases: Databases,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger
    secrets: list[str] = [PASSWORD, NEW_PASSWORD, WRONG_PASSWORD]
    errors: list[AuthError] = []
    email = new_email()

    await _refused(errors, auth.register(email, "tooshort", "Ama"), WeakPassword)
    registration = await auth.register(email, PASSWORD, "Ama Mensah", ip=IP, user_agent=AGENT)
    user_id = registration.user.id
    secrets.append(registration.verification_token)
    await auth.verify_email(registration.verification_token, ip=IP)

    signed = await auth.login(email, PASSWORD, IP, AGENT)
    secrets += [signed.access_token, signed.refresh_token, str(signed.session_token)]
    await auth.verify_access_token(signed.access_token)
    await auth.authenticate_session(str(signed.session_token))
    renewed = await auth.refresh(signed.refresh_token, ip=IP, user_agent=AGENT)
    secrets += [renewed.access_token, renewed.refresh_token]
    await _refused(errors, auth.refresh(signed.refresh_token), RefreshTokenReused)

    enrolment = await auth.begin_mfa_enrolment(user_id, ip=IP, user_agent=AGENT)
    secrets += [enrolment.secret, enrolment.provisioning_uri]
    recovery = await auth.confirm_mfa(
        user_id, totp_code(enrolment.secret, current_step(clock.now)), ip=IP
    )
    secrets += recovery + [code.replace("-", "") for code in recovery]
    clock.advance(seconds=30)
    await _refused(errors, auth.login(email, PASSWORD, IP, AGENT), MFARequired)
    code = totp_code(enrolment.secret, current_step(clock.now))
    with_totp = await auth.login(email, PASSWORD, IP, AGENT, code)
    await _refused(errors, auth.login(email, PASSWORD, IP, AGENT, code), InvalidCredentials)
    with_recovery = await auth.login(email, PASSWORD, IP, AGENT, recovery_code=recovery[0])
    secrets += [with_totp.access_token, with_totp.refresh_token, with_recovery.refresh_token]

    await auth.link_identity(user_id, "google", "g-42", ip=IP)
    via_identity = await auth.login_with_identity(
        "google", "g-42", IP, AGENT, recovery_code=recovery[1]
    )
    secrets += [via_identity.access_token, via_identity.refresh_token]
    await auth.update_profile(user_id, {"bio": "Learns Python."}, ip=IP)

    clock.advance(seconds=1)  # the failures come after the last success
    for _ in range(auth.config.lockout.account_threshold):
        try:
            await auth.login(email, WRONG_PASSWORD, IP, AGENT, code)
        except InvalidCredentials as exc:
            errors.append(exc)
    await _refused(errors, auth.login(email, WRONG_PASSWORD, IP, AGENT), TooManyAttempts)

    reset = await auth.request_password_reset(email, ip=IP)
    assert reset is not None
    secrets.append(reset)
    await auth.reset_password(reset, NEW_PASSWORD, ip=IP, user_agent=AGENT)
    await auth.disable_mfa(user_id, recovery[2], ip=IP)
    await auth.revoke_all_sessions(user_id, ip=IP)

    logged = caplog.text + "\n".join(
        f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for record in caplog.records
    )
    assert caplog.records  # on SQLite, aiosqlite logs every statement with its parameters
    audited = json.dumps(await audit_rows(databases), default=str)
    published = json.dumps(await outbox_rows(databases), default=str)
    refused = "\n".join(f"{e!s} {e.hint or ''} {e!r}" for e in errors)
    stored = await _everything_stored(databases)
    assert len(await audit_rows(databases)) > 20
    for secret in secrets:
        assert len(secret) >= 12
        for where, text in (
            ("logs", logged),
            ("audit_logs", audited),
            ("outbox_events", published),
            ("error messages", refused),
            ("the database", stored),
        ):
            assert secret not in text, f"a secret ({len(secret)} chars) leaked into {where}"
    assert not re.search(r"\b" + re.escape(enrolment.secret[:16]), stored)
