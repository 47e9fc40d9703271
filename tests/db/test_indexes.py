"""The live, migrated schema has the indexes the spec asks for, read back from the databases.

An index "covers" columns when they are its leading columns, in order: a primary key, a
unique constraint or a plain index all serve a look-up that way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, inspect

from azora.db.engines import Databases
from azora.types import ServiceName
from tests.spec import parse_spec, spec_entities, table_of


@dataclass(frozen=True)
class TableShape:
    """What one live table offers for look-ups, and what it refers to."""

    columns: frozenset[str]
    #: the column lists of its primary key, unique constraints and indexes.
    keys: tuple[tuple[str, ...], ...]
    foreign_keys: tuple[tuple[str, ...], ...]

    def covers(self, columns: tuple[str, ...]) -> bool:
        """True when some key starts with ``columns``, in that order."""
        return any(key[: len(columns)] == columns for key in self.keys)


def _shapes(connection: Connection) -> dict[str, TableShape]:
    inspector = inspect(connection)
    shapes = {}
    for table in inspector.get_table_names():
        keys = [tuple(inspector.get_pk_constraint(table)["constrained_columns"])]
        keys += [tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)]
        keys += [tuple(str(c) for c in i["column_names"]) for i in inspector.get_indexes(table)]
        shapes[table] = TableShape(
            columns=frozenset(c["name"] for c in inspector.get_columns(table)),
            keys=tuple(keys),
            foreign_keys=tuple(
                tuple(fk["constrained_columns"]) for fk in inspector.get_foreign_keys(table)
            ),
        )
    return shapes


async def _live_shapes(databases: Databases, service: ServiceName) -> dict[str, TableShape]:
    async with databases.owner_engine(service).connect() as connection:
        return await connection.run_sync(_shapes)


def _column(shape: TableShape, name: str) -> str:
    """The column a spec name means: ``name`` itself, else the reference ``name_id``."""
    return name if name in shape.columns else f"{name}_id"


async def test_every_foreign_key_leads_an_index(databases: Databases) -> None:
    checked, uncovered = 0, []
    for service in ServiceName:
        for table, shape in (await _live_shapes(databases, service)).items():
            for columns in shape.foreign_keys:
                checked += 1
                if not shape.covers(columns):
                    uncovered.append(f"{service}.{table}({', '.join(columns)})")
    assert checked > 0, "no foreign key found at all: is the schema migrated?"
    assert uncovered == [], "foreign keys without an index: " + "; ".join(uncovered)


async def test_every_lookup_the_spec_lists_is_indexed(databases: Databases) -> None:
    shapes = {service: await _live_shapes(databases, service) for service in ServiceName}
    checked, missing = 0, []
    for entity in spec_entities():
        table = table_of(entity.service, entity.name)
        shape = shapes[entity.service][table]
        for names in entity.indexes:
            checked += 1
            columns = tuple(_column(shape, name) for name in names)
            if not set(columns) <= shape.columns:
                missing.append(f"{entity.service}.{table}: no column for {', '.join(names)}")
            elif not shape.covers(columns):
                missing.append(f"{entity.service}.{table}({', '.join(columns)})")
    assert checked > 0, "the spec lists no idx: items"
    assert missing == [], "spec look-ups without an index: " + "; ".join(missing)


def test_the_spec_parser_reads_wrapped_lists_and_groups() -> None:
    text = """## azora_mint
- **LedgerEntry**: transaction → Transaction, amount.
  idx: (wallet, created_at), type.
- **Stake**: wallet → Wallet.

Prose that is not an entity. idx: nothing.

## azora_notifications
- **Notification**: user_id, kind. idx: (user_id, is_read,
  created_at).
## Development seed
- **NotAnEntity**: idx: ignored.
"""
    parsed = [(e.service, e.name, e.indexes) for e in parse_spec(text)]
    assert parsed == [
        (ServiceName.MINT, "LedgerEntry", (("wallet", "created_at"), ("type",))),
        (ServiceName.MINT, "Stake", ()),
        (ServiceName.NOTIFICATIONS, "Notification", (("user_id", "is_read", "created_at"),)),
    ]
