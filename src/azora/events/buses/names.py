"""Durable consumer names: the one spelling every broker accepts.

NATS durable names may not hold dots, wildcards or spaces, and Redis group names should
stay readable in ``XINFO``; so a consumer name is a short word of letters, digits, ``_``
and ``-`` (``notifications``, ``mint-rewards``).
"""

from __future__ import annotations

import re

from azora.errors import InvalidInput

CONSUMER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def validate_consumer(name: str) -> str:
    """Return ``name`` unchanged if it can name a durable consumer on every bus.

    Raises:
        InvalidInput: empty, longer than 64 characters, or a character other than a
            letter, a digit, ``_`` or ``-``.
    """
    if not isinstance(name, str) or CONSUMER.fullmatch(name) is None:
        raise InvalidInput(
            f"invalid consumer name {name!r}",
            hint="a consumer name is letters, digits, '_' and '-', e.g. 'notifications'",
        )
    return name
