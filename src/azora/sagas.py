"""Every durable event consumer of the product: the sagas of EVENTS.md, by service.

The one module that lists them (services never import each other; each declares its
own reactions in ``<service>/consumers.py``). The runner and ``azora events`` take
:data:`CONSUMERS` from here.
"""

from __future__ import annotations

from azora.education import consumers as education
from azora.events.consumers import Consumer
from azora.mint import consumers as mint
from azora.notifications import consumers as notifications

#: All consumers, each with a unique durable name.
CONSUMERS: tuple[Consumer, ...] = (
    *mint.CONSUMERS,
    *education.CONSUMERS,
    *notifications.CONSUMERS,
)


def load_all() -> tuple[Consumer, ...]:
    """Every consumer of the product (:data:`CONSUMERS`)."""
    return CONSUMERS
