"""Auth service: users, sessions, tokens, MFA, profiles and linked identities (``azora_auth``)."""
