"""The table of references between databases names every id column of another database."""

from __future__ import annotations

from sqlalchemy import Uuid

from azora.catalog import SERVICES
from azora.references import REFERENCES, dependents, referring_to
from azora.types import ServiceName

#: The tables every database has (outbox, audit log, consumers' bookkeeping): records of
#: what happened, not references a reset breaks.
INFRASTRUCTURE = {"outbox_events", "audit_logs", "processed_events", "dead_letters"}
#: Id columns without a foreign key that name no row of another database, and why.
NOT_REFERENCES = {
    ("auth", "tokens", "family_id"): "the rotation family of refresh tokens, an id of its own",
    ("nexus", "event_records", "event_id"): "the id of the event itself",
    ("nexus", "event_records", "correlation_id"): "groups events, names no row",
}


def test_every_id_column_without_a_foreign_key_is_a_known_reference() -> None:
    known = {(str(r.service), r.table, r.column) for r in REFERENCES}
    unexplained = []
    for name, spec in SERVICES.items():
        for table in spec.migrations.metadata.sorted_tables:
            if table.name in INFRASTRUCTURE:
                continue
            for column in table.columns:
                if not isinstance(column.type, Uuid) or column.primary_key or column.foreign_keys:
                    continue
                key = (str(name), table.name, column.name)
                if key not in known and key not in NOT_REFERENCES:
                    unexplained.append(".".join(key))
    assert unexplained == [], "add them to azora.references.REFERENCES (or NOT_REFERENCES)"


def test_every_reference_names_real_tables_and_columns() -> None:
    for ref in REFERENCES:
        tables = SERVICES[ref.service].migrations.metadata.tables
        assert ref.column in tables[ref.table].columns, ref
        assert "id" in SERVICES[ref.target].migrations.metadata.tables[ref.target_table].columns


def test_auth_is_depended_on_by_every_other_database() -> None:
    assert dependents([ServiceName.AUTH]) == set(ServiceName) - {ServiceName.AUTH}
    assert {r.service for r in referring_to([ServiceName.AUTH])} == dependents([ServiceName.AUTH])


def test_dependents_follow_references_through_other_databases() -> None:
    # The marketplace keeps mint transactions; the nexus keeps the marketplace's jobs.
    assert dependents([ServiceName.MINT]) == {ServiceName.FORGE, ServiceName.NEXUS}
    assert dependents([ServiceName.HEALTH]) == set()
    assert referring_to(ServiceName) == []
