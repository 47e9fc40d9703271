"""The password policy (NIST SP 800-63B, OWASP ASVS 2.1): length, not composition.

A password has 12 to 128 characters of any kind (spaces and any Unicode included); it
may not be the account's email address nor one of a small built-in list of passwords
that attackers try first. There are no rules such as "one digit and one symbol".
"""

from __future__ import annotations

import unicodedata

from azora.auth.errors import WeakPassword

MIN_LENGTH = 12
MAX_LENGTH = 128

#: Passwords of 12+ characters found near the top of public breach lists, compared
#: case-insensitively (shorter ones already fail the length rule).
COMMON_PASSWORDS: frozenset[str] = frozenset(
    {
        "000000000000",
        "111111111111",
        "123123123123",
        "123456123456",
        "123456789012",
        "1234567890123",
        "123456789123",
        "1234qwerasdf",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "aaaaaaaaaaaa",
        "abc123abc123",
        "abcdefghijkl",
        "administrator",
        "azora2025azora",
        "baseball1234",
        "changeme1234",
        "correct horse battery staple",
        "correcthorsebatterystaple",
        "dragon123456",
        "football1234",
        "iloveyou1234",
        "letmein12345",
        "master123456",
        "monkey123456",
        "p@ssw0rd1234",
        "p@ssword1234",
        "passw0rd1234",
        "password1234",
        "password123!",
        "password2024",
        "password2025",
        "password2026",
        "passwordpassword",
        "princess1234",
        "q1w2e3r4t5y6",
        "qazwsxedcrfv",
        "qwerty123456",
        "qwertyqwerty",
        "qwertyuiop12",
        "qwertyuiopasdfghjkl",
        "starwars1234",
        "sunshine1234",
        "superman1234",
        "trustno1trustno1",
        "welcome12345",
        "whatever1234",
        "zaq12wsxcde3",
    }
)


def _comparable(value: str) -> str:
    return unicodedata.normalize("NFKC", value).casefold().strip()


def check_password(password: str, *, email: str) -> None:
    """Accept ``password`` for the account ``email`` or say which rule it breaks.

    The message never repeats the password.

    Raises:
        WeakPassword: too short, too long, equal to the email, or a common password.
    """
    length = len(password)
    if length < MIN_LENGTH:
        raise WeakPassword(
            f"a password needs at least {MIN_LENGTH} characters (this one has {length})",
            hint="a short sentence is easy to remember and hard to guess",
        )
    if length > MAX_LENGTH:
        raise WeakPassword(
            f"a password has at most {MAX_LENGTH} characters (this one has {length})"
        )
    candidate = _comparable(password)
    if candidate == _comparable(email):
        raise WeakPassword("the password may not be the email address")
    if candidate in COMMON_PASSWORDS:
        raise WeakPassword(
            "that password is on the list of common passwords attackers try first",
            hint="choose something less predictable",
        )
