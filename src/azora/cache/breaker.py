"""A circuit breaker: after repeated failures, stop calling a dependency for a while.

Closed: calls go through; ``threshold`` failures in a row open it. Open: calls are
refused at once (no waiting on a dead server) for ``cooldown`` seconds. Then one call
is let through as a probe (half-open): success closes the breaker, failure opens it
again. Opening and closing are logged once each, not per call.
"""

from __future__ import annotations

import logging
import time

logger = logging.getLogger(__name__)


class CircuitBreaker:
    """See the module docstring. Not thread-safe; one per event loop."""

    def __init__(self, name: str, *, threshold: int = 3, cooldown: float = 1.0) -> None:
        if threshold < 1 or cooldown <= 0:
            raise ValueError("threshold must be >= 1 and cooldown > 0")
        self.name = name
        self._threshold = threshold
        self._cooldown = cooldown
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False
        #: how many times the breaker opened (for metrics and tests).
        self.openings = 0

    @property
    def is_open(self) -> bool:
        """True while calls are being refused."""
        return self._opened_at is not None

    def allow(self) -> bool:
        """Whether a call may go out now (in half-open state: only the one probe)."""
        if self._opened_at is None:
            return True
        if self._probing or time.monotonic() - self._opened_at < self._cooldown:
            return False
        self._probing = True
        return True

    def succeeded(self) -> None:
        """Record a successful call; closes an open breaker."""
        self._failures = 0
        self._probing = False
        if self._opened_at is not None:
            self._opened_at = None
            logger.warning("%s is reachable again; cache back in use", self.name)

    def failed(self, error: BaseException) -> None:
        """Record a failed call; opens the breaker at the threshold (or a failed probe)."""
        self._failures += 1
        if self._probing:
            self._probing = False
            self._opened_at = time.monotonic()
            return
        if self._opened_at is None and self._failures >= self._threshold:
            self._opened_at = time.monotonic()
            self.openings += 1
            logger.warning(
                "%s failing (%s: %s); reads go to the database for now",
                self.name,
                type(error).__name__,
                error,
            )
