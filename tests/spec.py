"""The product's data model (``docs/data-model.md``) read as data: each service's
entities and indexes, which the schema tests hold the migrated databases to.

The documents live in the repository (``docs/``), so every test runs in every clone.
"""

from __future__ import annotations

import functools
import importlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from azora.types import ServiceName

DOCS = Path(__file__).resolve().parents[1] / "docs"
DATA_MODEL = DOCS / "data-model.md"
EVENTS = DOCS / "events.md"

_SECTION = re.compile(r"^## azora_(\w+)\s*$")
_ENTITY = re.compile(r"^- \*\*(\w+)\*\*")
_IDX = re.compile(r"\bidx:([^.]*)\.")
_IDX_ITEM = re.compile(r"\(([^)]*)\)|(\w+)")


@dataclass(frozen=True)
class SpecEntity:
    """One ``- **Name**`` entry of a ``## azora_<service>`` section."""

    service: ServiceName
    name: str
    #: the spec's ``idx:`` items as written: one name, or a parenthesised group of names.
    indexes: tuple[tuple[str, ...], ...]


def parse_spec(text: str) -> list[SpecEntity]:
    """The entities of every service section, in the spec's order.

    An entity's text runs from its ``- **Name**`` line over its indented continuation
    lines, so an ``idx:`` list wrapped over two lines is read whole.
    """
    blocks: list[tuple[ServiceName, str, list[str]]] = []
    service: ServiceName | None = None
    lines: list[str] | None = None  # the open entity's text, while it continues
    for line in text.splitlines():
        section = _SECTION.match(line)
        entity = _ENTITY.match(line)
        if line.startswith("#"):
            service = ServiceName(section.group(1)) if section else None
            lines = None
        elif service is not None and entity:
            lines = [line]
            blocks.append((service, entity.group(1), lines))
        elif lines is not None and line.startswith("  "):
            lines.append(line.strip())
        else:  # a blank line or prose ends the entity
            lines = None
    return [SpecEntity(svc, name, _indexes(" ".join(body))) for svc, name, body in blocks]


def _indexes(text: str) -> tuple[tuple[str, ...], ...]:
    found = _IDX.search(text)
    if found is None:
        return ()
    return tuple(
        tuple(n.strip() for n in group.split(",")) if group else (single,)
        for group, single in _IDX_ITEM.findall(found.group(1))
    )


@functools.cache
def _load(path: Path) -> tuple[SpecEntity, ...]:
    return tuple(parse_spec(path.read_text(encoding="utf-8")))


def spec_entities() -> tuple[SpecEntity, ...]:
    """The data model's entities (``docs/data-model.md``)."""
    return _load(DATA_MODEL)


def table_of(service: ServiceName, entity: str) -> str:
    """The table of the model class named ``entity`` in ``azora.<service>.models``.

    Fails the test when the service has no model of that name.
    """
    models = importlib.import_module(f"azora.{service}.models")
    tables = {m.class_.__name__: m.local_table.name for m in models.Base.registry.mappers}
    if entity not in tables:
        pytest.fail(f"spec entity {service}.{entity} has no model class of that name")
    return str(tables[entity])
