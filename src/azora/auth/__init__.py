"""Auth service: users, sessions, tokens, MFA, profiles and linked identities (``azora_auth``).

``azora.auth.service.AuthService`` is the entry point. One module per concern:
``accounts`` (register, verify email, reset and change password), ``login`` (password
and identity sign-in, lockout in ``lockout``), ``sessions`` (sessions and rotating
refresh tokens), ``principals`` (checking access and session tokens), ``mfa`` (TOTP and
recovery codes), ``identities`` (OAuth-ready links), ``profiles``, ``permissions``
(roles), with ``access`` (JWTs), ``crypto`` (secrets at rest), ``passwords`` (Argon2id),
``policy`` (password rules), ``opaque``/``onetime`` (random tokens) and ``users``
(account look-ups through the cache).
"""
