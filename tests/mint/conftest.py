"""Fixtures for the ledger tests: a mint service over the test's migrated databases."""

from __future__ import annotations

import pytest

from azora.db.engines import Databases
from azora.mint.service import MintService


@pytest.fixture
def mint(databases: Databases) -> MintService:
    """The ledger on the migrated mint database of the test's backend."""
    return MintService(databases)
