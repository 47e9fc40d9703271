"""The audit log is append-only and tamper-evident: sealed into a hash chain, guarded by
the database, verified link by link; the same rows hash the same on both backends."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from azora.db.audit import (
    GENESIS,
    BrokenLink,
    canonical_row,
    chain_hash,
    seal,
    verify,
)
from azora.db.engines import Databases
from azora.db.infra import AUDIT_TABLE
from azora.db.scope import SERVICE, apply_scope
from azora.settings import Settings
from azora.types import ServiceName
from tests import databases as dbs
from tests.db.audit_helpers import append, audit_row, chain, guard_off, insert_rows

LOG = ServiceName.FAMILY
only_postgresql = pytest.mark.parametrize("backend", ["postgresql"], indirect=True)


def _backend(databases: Databases) -> str:
    return databases.target(LOG).backend


# -- the encoding -----------------------------------------------------------------------

FIXED_ROW: dict[str, Any] = {
    "id": uuid.UUID("01890a5d-ac96-774b-bcce-b302099a8057"),
    "user_id": uuid.UUID("01890a5d-ac96-774b-bcce-b302099a8058"),
    "action": "mint.transfer",
    "resource": "transaction",
    "resource_id": "42",
    "ip": "2001:db8::1",
    "user_agent": "curl/8 ☃",
    "metadata": {"to": "bob", "amount": "1.50", "n": 2.0},
    "created_at": dt.datetime(2026, 12, 1, 9, 30, 0, tzinfo=dt.UTC),
}


def test_the_canonical_encoding_is_fixed() -> None:
    # Changing this breaks every chain already sealed: a new format needs a new version.
    assert (
        canonical_row(FIXED_ROW, 7)
        == (
            '["01890a5d-ac96-774b-bcce-b302099a8057","01890a5d-ac96-774b-bcce-b302099a8058",'
            '"mint.transfer","transaction","42","2001:db8::1","curl/8 ☃",'
            '{"amount":"1.50","n":2,"to":"bob"},"2026-12-01T09:30:00.000000+00:00",7]'
        ).encode()
    )
    assert chain_hash(GENESIS, FIXED_ROW, 7) == (
        "1e892d5e0ae018e8d5b174ba04df487b0ca16328bef40a78cb654a1ca0f3750f"
    )


def test_the_encoding_does_not_depend_on_key_order_or_time_zone() -> None:
    shuffled = {**FIXED_ROW, "metadata": {"n": 2, "to": "bob", "amount": "1.50"}}
    shuffled["created_at"] = FIXED_ROW["created_at"].astimezone(
        dt.timezone(dt.timedelta(hours=5, minutes=30))
    )
    assert canonical_row(shuffled, 7) == canonical_row(FIXED_ROW, 7)
    assert chain_hash(GENESIS, FIXED_ROW, 8) != chain_hash(GENESIS, FIXED_ROW, 7)


#: Values whose text a round trip through JSONB (or SQLite's JSON text) may change.
TRICKY_METADATA: list[dict[str, Any]] = [
    {"z": 1, "a": {"y": [1, 2.5, None, True, False], "b": {}}, "empty": []},
    {"quoted": 'naïve ☃ "q" \\ back\nline', "ключ": "значение"},
    {"tenth": 0.1, "whole": 1.0, "big_float": 1e20, "tiny": 1e-7, "negative_zero": -0.0},
    {"big_int": 2**70, "negative": -12345678901234567890, "amount": "0.00000001"},
]
TRICKY_TIMES = [
    dt.datetime(2026, 12, 1, 0, 0, 0, tzinfo=dt.UTC),
    dt.datetime(2026, 12, 1, 0, 0, 0, 999_999, tzinfo=dt.UTC),
    dt.datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=dt.timezone(dt.timedelta(hours=-7))),
    dt.datetime(2038, 1, 19, 3, 14, 8, 500_000, tzinfo=dt.timezone(dt.timedelta(hours=9))),
]


@pytest.fixture
async def both(
    _sqlite_template: Path, _postgres_template: Settings, tmp_path: Path
) -> AsyncIterator[tuple[Databases, Databases]]:
    """Migrated, empty databases on SQLite and on PostgreSQL, side by side."""
    data_dir = tmp_path / "data"
    dbs.copy_sqlite_files(_sqlite_template, data_dir)
    lite = dbs.settings_for("sqlite", data_dir=data_dir, prefix="", pg_url=None)
    try:
        async with Databases(lite) as on_sqlite, Databases(_postgres_template) as on_postgres:
            yield on_sqlite, on_postgres
    finally:
        await dbs.truncate_all(_postgres_template)


async def test_the_same_rows_hash_the_same_on_sqlite_and_postgresql(
    both: tuple[Databases, Databases],
) -> None:
    rows = [
        audit_row(
            f"test.{i}",
            user_id=uuid.uuid4() if i % 2 else None,
            resource_id=str(i),
            ip="203.0.113.9" if i % 2 else None,
            user_agent="Mozilla/5.0 (X11; Linux) ☃" if i % 3 else None,
            metadata=metadata,
            created_at=created_at,
        )
        for i, (metadata, created_at) in enumerate(zip(TRICKY_METADATA, TRICKY_TIMES, strict=True))
    ]
    # What the sealer must compute, straight from the values written (no round trip).
    expected, prev = [], GENESIS
    for seq, row in enumerate(sorted(rows, key=lambda r: (r["created_at"], r["id"])), start=1):
        digest = chain_hash(prev, row, seq)
        expected.append((seq, row["id"], prev, digest))
        prev = digest

    for databases in both:
        await insert_rows(databases, LOG, rows)
        assert await seal(databases, LOG) == len(rows)
        assert await chain(databases, LOG) == expected, _backend(databases)
        assert (await verify(databases, LOG)).ok


# -- sealing and verifying ------------------------------------------------------------------


async def test_sealing_chains_every_row_in_order_and_verify_accepts_the_chain(
    databases: Databases,
) -> None:
    ids = await append(databases, LOG, 5)

    assert await seal(databases, LOG, batch=2) == 5
    assert await seal(databases, LOG) == 0

    links = await chain(databases, LOG)
    assert [(seq, row_id) for seq, row_id, _, _ in links] == list(enumerate(ids, start=1))
    assert links[0][2] == GENESIS
    assert all(links[i][2] == links[i - 1][3] for i in range(1, 5))
    report = await verify(databases, LOG, batch=2)
    assert report.ok
    assert (report.rows, report.sealed, report.unsealed) == (5, 5, 0)
    assert (report.head_seq, report.head_hash) == (5, links[-1][3])


async def test_rows_written_later_continue_the_chain(databases: Databases) -> None:
    await append(databases, LOG, 2)
    await seal(databases, LOG)
    later = await append(databases, LOG, 2)

    report = await verify(databases, LOG)
    assert report.ok
    assert (report.rows, report.sealed, report.unsealed, report.head_seq) == (4, 2, 2, 2)

    assert await seal(databases, LOG) == 2
    links = await chain(databases, LOG)
    assert [row_id for _, row_id, _, _ in links[2:]] == later
    assert (await verify(databases, LOG)).head_seq == 4


async def test_an_empty_log_verifies(databases: Databases) -> None:
    report = await verify(databases, LOG)
    assert report.ok
    assert (report.rows, report.head_seq, report.head_hash) == (0, 0, GENESIS)


async def test_the_unsealed_index_is_partial(databases: Databases) -> None:
    query = (
        "SELECT sql FROM sqlite_master WHERE name = 'ix_audit_logs_unsealed'"
        if _backend(databases) == "sqlite"
        else "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_audit_logs_unsealed'"
    )
    async with databases.owner_engine(LOG).connect() as connection:
        definition = (await connection.exec_driver_sql(query)).scalar_one()
    assert "seq IS NULL" in definition, definition


# -- the guard --------------------------------------------------------------------------

#: Statements the database must refuse on ``audit_logs``: seq 1 and 2 are sealed, one
#: more row is not.
REFUSED = {
    "change a sealed row": "UPDATE audit_logs SET action = 'forged' WHERE seq = 1",
    "change an unsealed row": "UPDATE audit_logs SET action = 'forged' WHERE seq IS NULL",
    "seal a row again": "UPDATE audit_logs SET seq = 9, prev_hash = row_hash WHERE seq = 2",
    "unseal a row": "UPDATE audit_logs SET seq = NULL, prev_hash = NULL, row_hash = NULL"
    " WHERE seq = 2",
    "seal and change at once": "UPDATE audit_logs SET seq = 3, prev_hash = 'x', row_hash = 'x',"
    " action = 'forged' WHERE seq IS NULL",
    "seal and change the metadata": "UPDATE audit_logs SET seq = 3, prev_hash = 'x',"
    """ row_hash = 'x', metadata = '{"forged": true}' WHERE seq IS NULL""",
    "delete a row": "DELETE FROM audit_logs WHERE seq = 1",
}


@pytest.mark.parametrize("statement", list(REFUSED), ids=list(REFUSED))
@pytest.mark.parametrize("as_owner", [False, True], ids=["application", "owner"])
async def test_the_database_refuses_to_change_or_delete_audit_rows(
    databases: Databases, statement: str, as_owner: bool
) -> None:
    await append(databases, LOG, 2)
    await seal(databases, LOG)
    await append(databases, LOG, 1)
    before = await chain(databases, LOG)
    engine = databases.owner_engine(LOG) if as_owner else databases.engine(LOG)
    # The application role may lack the privilege before the guard is even asked.
    app_role = not as_owner and _backend(databases) == "postgresql"
    reason = "append-only|permission denied" if app_role else "append-only"

    with pytest.raises(DBAPIError, match=reason):
        async with engine.begin() as connection:
            await apply_scope(connection, SERVICE)
            await connection.exec_driver_sql(REFUSED[statement])

    assert await chain(databases, LOG) == before
    report = await verify(databases, LOG)
    assert (report.ok, report.rows, report.unsealed) == (True, 3, 1)


@only_postgresql
async def test_truncate_is_refused_even_to_the_owner(databases: Databases) -> None:
    await append(databases, LOG, 1)
    with pytest.raises(DBAPIError, match="append-only: TRUNCATE refused"):
        async with databases.owner_engine(LOG).begin() as connection:
            await connection.exec_driver_sql("TRUNCATE audit_logs")
    assert (await verify(databases, LOG)).rows == 1


# -- tampering behind the guard ------------------------------------------------------------


async def test_verify_names_a_row_changed_behind_the_guard(databases: Databases) -> None:
    ids = await append(databases, LOG, 5)
    await seal(databases, LOG)
    async with guard_off(databases, LOG) as connection:
        await connection.exec_driver_sql("UPDATE audit_logs SET action = 'forged' WHERE seq = 3")

    report = await verify(databases, LOG)

    assert report.broken == BrokenLink(3, ids[2], "row content changed")
    assert not report.ok
    assert (report.rows, report.sealed, report.head_seq) == (5, 5, 2)


async def test_a_changed_row_with_a_recomputed_hash_breaks_the_next_link(
    databases: Databases,
) -> None:
    ids = await append(databases, LOG, 5)
    await seal(databases, LOG)
    log = AUDIT_TABLE.c
    async with guard_off(databases, LOG) as connection:
        row = (
            await connection.execute(
                select(AUDIT_TABLE).where(log.seq == 3)  # every column, content and seal
            )
        ).one()
        forged = {**row._mapping, "metadata": {"amount": "1000000"}}
        await connection.execute(
            AUDIT_TABLE.update()
            .where(log.seq == 3)
            .values(metadata=forged["metadata"], row_hash=chain_hash(row.prev_hash, forged, 3))
        )

    report = await verify(databases, LOG)

    assert report.broken == BrokenLink(
        4, ids[3], "prev_hash does not match the previous row's hash"
    )


async def test_verify_reports_a_deleted_row_as_missing(databases: Databases) -> None:
    ids = await append(databases, LOG, 5)
    await seal(databases, LOG)
    async with guard_off(databases, LOG) as connection:
        await connection.exec_driver_sql("DELETE FROM audit_logs WHERE seq = 3")

    report = await verify(databases, LOG)

    assert report.broken == BrokenLink(4, ids[3], "row missing before seq 4")
    assert (report.rows, report.head_seq) == (4, 2)
