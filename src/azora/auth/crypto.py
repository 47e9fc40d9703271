"""Secrets encrypted at rest (TOTP secrets) with AES-256-GCM.

The key is derived from ``AZORA_ENCRYPTION_KEY`` with HKDF-SHA256 (one derived key per
purpose), and each value is bound to its owner through the associated data (the user
id), so a ciphertext copied to another user's row does not decrypt. Stored format::

    v1.<base64url(nonce[12] || ciphertext || tag[16])>

The version prefix lets a later key or algorithm coexist with values written today.
"""

from __future__ import annotations

import base64
import binascii
import os
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from azora.auth.errors import EncryptedSecretUnreadable

VERSION = "v1"
_NONCE_BYTES = 12


def _derive(key_material: str, purpose: str) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"azora.auth.crypto",
        info=f"{VERSION}:{purpose}".encode(),
    ).derive(key_material.encode())


class SecretBox:
    """Encrypts and decrypts one kind of secret (``purpose``) for its owner."""

    def __init__(self, key_material: str, purpose: str) -> None:
        self._purpose = purpose
        self._aead = AESGCM(_derive(key_material, purpose))

    def _associated(self, owner: uuid.UUID) -> bytes:
        return f"{self._purpose}:".encode() + owner.bytes

    def encrypt(self, plaintext: str, *, owner: uuid.UUID) -> str:
        """``plaintext`` encrypted for ``owner`` in the versioned text format."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, plaintext.encode(), self._associated(owner))
        return f"{VERSION}.{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, stored: str, *, owner: uuid.UUID) -> str:
        """The plaintext of ``stored``, which must have been encrypted for ``owner``.

        Raises:
            EncryptedSecretUnreadable: unknown format or version, another owner, a
                tampered value, or a different key (the message holds no secret).
        """
        version, _, payload = stored.partition(".")
        if version != VERSION or not payload:
            raise EncryptedSecretUnreadable(f"an encrypted {self._purpose} has an unknown format")
        try:
            raw = base64.urlsafe_b64decode(payload.encode())
            plaintext = self._aead.decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], self._associated(owner)
            )
        except (InvalidTag, ValueError, binascii.Error):
            raise EncryptedSecretUnreadable(
                f"an encrypted {self._purpose} cannot be decrypted",
                hint="was AZORA_ENCRYPTION_KEY changed?",
            ) from None
        return plaintext.decode()
