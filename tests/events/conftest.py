"""Fixtures of the event tests that need what only PostgreSQL has (row locks held by
another relay, LISTEN/NOTIFY, the failure tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from azora.db.engines import Databases
from azora.settings import Settings


@pytest.fixture
async def pg(postgres_settings: Settings) -> AsyncIterator[Databases]:
    """Engines for the shared migrated PostgreSQL databases (emptied after the test)."""
    async with Databases(postgres_settings) as opened:
        yield opened
