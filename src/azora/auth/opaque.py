"""Opaque bearer tokens (session, refresh, email verification, password reset).

A token is 32 random bytes (256 bits), URL-safe. Only its SHA-256 is stored: a token
carries enough entropy that a fast hash is enough, and a stolen table holds nothing a
client could present.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_BYTES = 32


def new_token() -> str:
    """A fresh random token (give it to the client; store :func:`token_hash` of it)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """The hex SHA-256 of ``token``: what the database keeps and looks up."""
    return hashlib.sha256(token.encode()).hexdigest()
