"""The root of every error Azora raises on purpose.

Each error carries a stable ``code`` (for the API and the CLI) and a one-line ``hint``
that tells the reader what to do next.
"""

from __future__ import annotations


class AzoraError(Exception):
    """An expected failure with a readable message; never a bug."""

    code: str = "azora_error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigurationError(AzoraError):
    """The settings are missing, malformed or unsafe for the environment."""

    code = "configuration_error"


class UnknownServiceError(AzoraError):
    """A service name that is not one of the nine."""

    code = "unknown_service"


class InvalidAmountError(AzoraError, ValueError):
    """A money amount that is not exact, has more than 8 decimals or is out of range."""

    code = "invalid_amount"


class InvalidInput(AzoraError, ValueError):
    """An argument that does not parse or is out of range (an id, a currency, a name)."""

    code = "invalid_input"


#: How much of a caller's value an error message quotes.
QUOTED_LENGTH = 40


def quoted(value: object) -> str:
    """``value`` as an error message may quote it: its ``repr``, cut to
    :data:`QUOTED_LENGTH` characters plus "…" when longer (a client may send megabytes)."""
    if isinstance(value, str):
        return repr(value if len(value) <= QUOTED_LENGTH else value[:QUOTED_LENGTH] + "…")
    if isinstance(value, (int, float, bool)) or value is None:
        text = repr(value)
        return text if len(text) <= QUOTED_LENGTH else text[:QUOTED_LENGTH] + "…"
    return f"a {type(value).__name__}"
