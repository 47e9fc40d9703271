"""Audit rows are sealed in the wake of the writes that made them: by the unit of work
and by the ledger's server-side movements, throttled, never waiting, never failing a write."""

from __future__ import annotations

import asyncio
import logging
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from azora.db.audit import SEAL_LOCK_KEY, AuditSealer, seal, verify
from azora.db.engines import Databases
from azora.db.infra import AUDIT_TABLE
from azora.db.outbox import AuditRecord
from azora.db.scope import SERVICE, apply_scope
from azora.db.uow import UnitOfWork
from azora.mint.service import MintService
from azora.settings import Settings
from azora.types import Currency, Environment, ServiceName
from tests.db.audit_helpers import append, chain

LOG = ServiceName.FAMILY
only_postgresql = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


async def test_an_audited_unit_of_work_seals_its_rows_in_its_wake(databases: Databases) -> None:
    async with UnitOfWork(databases, LOG) as uow:
        uow.audit(AuditRecord("test.one", "thing"))
        uow.audit(AuditRecord("test.two", "thing"))

    report = await verify(databases, LOG)
    assert (report.ok, report.sealed, report.unsealed) == (True, 2, 0)


async def test_the_unit_of_work_pokes_only_after_committing_audit_records(
    databases: Databases, monkeypatch: pytest.MonkeyPatch
) -> None:
    pokes: list[ServiceName] = []

    async def spy(_sealer: AuditSealer, service: ServiceName) -> int:
        pokes.append(service)
        return 0

    monkeypatch.setattr(AuditSealer, "poke", spy)
    async with UnitOfWork(databases, LOG):
        pass  # nothing audited
    with pytest.raises(RuntimeError, match="boom"):
        async with UnitOfWork(databases, LOG) as uow:
            uow.audit(AuditRecord("test.rolled-back", "thing"))
            raise RuntimeError("boom")
    async with UnitOfWork(databases, LOG) as uow:
        uow.audit(AuditRecord("test.kept", "thing"))

    assert pokes == [LOG]


async def test_a_poke_seals_at_most_once_per_interval(databases: Databases) -> None:
    sealer = AuditSealer(databases, interval=3600)
    await append(databases, LOG, 3)
    assert await sealer.poke(LOG) == 3

    await append(databases, LOG, 2)
    assert await sealer.poke(LOG) == 0  # within the interval: left for the next seal

    assert (await verify(databases, LOG)).unsealed == 2
    assert await seal(databases, LOG) == 2


@only_postgresql
async def test_a_poke_does_not_wait_for_a_sealer_at_work(databases: Databases) -> None:
    await append(databases, LOG, 2)
    async with databases.engine(LOG).begin() as busy:
        await busy.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SEAL_LOCK_KEY})
        assert await asyncio.wait_for(AuditSealer(databases).poke(LOG), timeout=5) == 0
    assert await AuditSealer(databases).poke(LOG) == 2


async def test_a_failing_poke_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="azora.db.audit")
    down = Settings(
        env=Environment.TEST,
        data_dir=tmp_path,
        family_database_url="postgresql://azora@127.0.0.1:1/azora_family",  # nothing listens
    )
    async with Databases(down) as databases:
        assert await AuditSealer(databases).poke(LOG) == 0
    assert f"sealing the audit log of {LOG} failed" in caplog.text


async def test_concurrent_audited_writes_are_each_sealed_exactly_once(
    databases: Databases,
) -> None:
    writers, per_writer = 8, 50

    async def write(writer: int) -> None:
        for i in range(per_writer):
            async with UnitOfWork(databases, LOG) as uow:
                uow.audit(AuditRecord("test.write", "writer", f"{writer}:{i}"))

    await asyncio.gather(*(write(w) for w in range(writers)))
    left_over = await seal(databases, LOG)

    total = writers * per_writer
    assert left_over < total, "the writers' pokes sealed nothing"
    links = await chain(databases, LOG)
    assert [seq for seq, _, _, _ in links] == list(range(1, total + 1))
    assert len({row_id for _, row_id, _, _ in links}) == total
    report = await verify(databases, LOG)
    assert report.ok
    assert (report.rows, report.sealed, report.unsealed) == (total, total, 0)


@only_postgresql
async def test_mint_transfers_leave_audit_rows_that_seal_into_the_chain(
    databases: Databases,
) -> None:
    mint = MintService(databases)
    alice, bob = uuid.uuid4(), uuid.uuid4()
    await mint.open_wallet(alice, Currency.AZR)
    await mint.open_wallet(bob, Currency.AZR)
    await mint.mint(Currency.AZR, Decimal(100), alice, idempotency_key="audit-issue")
    for i in range(20):
        await mint.transfer(alice, bob, Currency.AZR, Decimal(1), f"audit-transfer-{i}")

    await seal(databases, ServiceName.MINT)

    report = await verify(databases, ServiceName.MINT)
    assert report.ok
    assert report.unsealed == 0
    log = AUDIT_TABLE.c
    async with databases.engine(ServiceName.MINT).begin() as connection:
        await apply_scope(connection, SERVICE)
        transfers = await connection.scalar(
            select(func.count()).where(log.action == "mint.transfer", log.seq.is_not(None))
        )
    assert transfers == 20
