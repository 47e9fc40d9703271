"""Identifiers are time-ordered UUIDv7s; timestamps are UTC and always timezone-aware."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from azora.db.engines import Databases
from azora.db.ids import new_id
from azora.db.uow import UnitOfWork
from azora.health.models import HealthCheck, HealthStatus
from azora.types import ServiceName


def test_ids_are_version_7_and_sort_in_creation_order() -> None:
    ids = [new_id() for _ in range(2000)]
    assert {i.version for i in ids} == {7}
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_a_row_knows_its_id_before_it_is_flushed() -> None:
    check = HealthCheck(target="database", status=HealthStatus.UP)
    assert check.id is not None
    assert check.id.version == 7


async def test_timestamps_come_back_in_utc_whatever_zone_went_in(databases: Databases) -> None:
    local = dt.datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=ZoneInfo("Africa/Johannesburg"))
    async with UnitOfWork(databases, ServiceName.HEALTH) as uow:
        check = HealthCheck(target="database", status=HealthStatus.UP, checked_at=local)
        uow.session.add(check)
    async with databases.owner_engine(ServiceName.HEALTH).connect() as connection:
        stored = await connection.scalar(
            select(HealthCheck.checked_at).where(HealthCheck.id == check.id)
        )
        created = await connection.scalar(
            select(HealthCheck.created_at).where(HealthCheck.id == check.id)
        )
    assert stored == local
    assert stored.utcoffset() == dt.timedelta(0)
    assert created is not None
    assert created.tzinfo is not None


async def test_a_naive_timestamp_is_refused(databases: Databases) -> None:
    naive = dt.datetime(2026, 1, 1, 12, 0)
    with pytest.raises(Exception, match="naive datetime"):
        async with UnitOfWork(databases, ServiceName.HEALTH) as uow:
            uow.session.add(HealthCheck(target="db", status=HealthStatus.UP, checked_at=naive))
    async with databases.owner_engine(ServiceName.HEALTH).connect() as connection:
        assert (await connection.execute(select(HealthCheck.id))).first() is None
