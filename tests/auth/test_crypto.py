"""Secrets at rest: AES-GCM bound to its owner, versioned, tamper-evident."""

from __future__ import annotations

import base64
import uuid

import pytest

from azora.auth.crypto import SecretBox
from azora.auth.errors import EncryptedSecretUnreadable

KEY = "an encryption key of reasonable length"


def test_a_secret_round_trips_for_its_owner_only() -> None:
    box, owner = SecretBox(KEY, "totp-secret"), uuid.uuid4()
    sealed = box.encrypt("JBSWY3DPEHPK3PXP", owner=owner)
    assert sealed.startswith("v1.")
    assert "JBSWY3DPEHPK3PXP" not in sealed
    assert box.encrypt("JBSWY3DPEHPK3PXP", owner=owner) != sealed  # a fresh nonce each time
    assert box.decrypt(sealed, owner=owner) == "JBSWY3DPEHPK3PXP"
    with pytest.raises(EncryptedSecretUnreadable, match="cannot be decrypted"):
        box.decrypt(sealed, owner=uuid.uuid4())  # copied to another user's row


def test_another_key_purpose_or_a_tampered_value_cannot_decrypt() -> None:
    owner = uuid.uuid4()
    sealed = SecretBox(KEY, "totp-secret").encrypt("JBSWY3DPEHPK3PXP", owner=owner)
    for box in (
        SecretBox("another key entirely, also long", "totp-secret"),
        SecretBox(KEY, "other-purpose"),
    ):
        with pytest.raises(EncryptedSecretUnreadable) as caught:
            box.decrypt(sealed, owner=owner)
        assert caught.value.hint == "was AZORA_ENCRYPTION_KEY changed?"
    raw = bytearray(base64.urlsafe_b64decode(sealed.removeprefix("v1.")))
    for position in (0, 12, len(raw) - 1):  # the nonce, the ciphertext, the tag
        tampered = raw.copy()
        tampered[position] ^= 0x01
        flipped = "v1." + base64.urlsafe_b64encode(bytes(tampered)).decode()
        with pytest.raises(EncryptedSecretUnreadable):
            SecretBox(KEY, "totp-secret").decrypt(flipped, owner=owner)


@pytest.mark.parametrize("stored", ["", "plain", "v2.abc", "v1.", "v1.!!!"])
def test_unknown_formats_are_refused(stored: str) -> None:
    with pytest.raises(EncryptedSecretUnreadable):
        SecretBox(KEY, "totp-secret").decrypt(stored, owner=uuid.uuid4())
