"""The catalog has a schema for every type docs/events.md names, and each schema is strict."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from azora.events import CATALOG, Audience, InvalidEventPayload
from tests.spec import EVENTS

_ROW = re.compile(r"^\|[^|]*\|(?P<types>[^|]*)\|\s*$")
_NAME = re.compile(r"`([a-z0-9_.]+)`")


def parse_event_types(text: str) -> set[str]:
    """The type names in the second column of the ``## Names`` table of EVENTS.md."""
    section = text.split("## Names", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        row = _ROW.match(line.strip())
        if row:
            names.update(_NAME.findall(row["types"]))
    return names


@pytest.fixture(scope="module")
def spec_types() -> set[str]:
    return parse_event_types(EVENTS.read_text(encoding="utf-8"))


def test_the_spec_table_is_read() -> None:
    table = "## Names\n| domain | types |\n|---|---|\n| x | `a.b.c`, `a.d` |\n## Next\n| `z.z` |"
    assert parse_event_types(table) == {"a.b.c", "a.d"}


def test_every_type_in_the_spec_has_a_schema(spec_types: set[str]) -> None:
    assert len(spec_types) >= 35
    assert sorted(spec_types - set(CATALOG.names())) == []


def test_json_schemas_cover_every_type_and_forbid_unknown_keys() -> None:
    schemas = CATALOG.json_schemas()
    assert sorted(schemas) == CATALOG.names()
    for name, schema in schemas.items():
        assert schema["title"] == name
        assert schema["type"] == "object"
        assert schema["additionalProperties"] is False
        assert schema["x-version"] == 1
        assert schema["x-audience"] in {"public", "user"}
        assert schema["description"]


def test_money_is_a_string_pattern_in_the_schema() -> None:
    amount = CATALOG.json_schemas()["finance.mining.reward"]["properties"]["amount"]
    assert amount["type"] == "string"
    assert re.fullmatch(amount["pattern"], "30.25000000")


def test_public_types_are_those_without_a_user() -> None:
    public = {n for n in CATALOG.names() if CATALOG.get(n).audience is Audience.PUBLIC}
    assert public == {
        "system.alert",
        "system.health.check",
        "education.course.published",
        "finance.ubi.distributed",
        "marketplace.job.posted",
    }


def test_money_keeps_its_digits_and_refuses_floats() -> None:
    payload = {
        "stake_id": "0190f0a2-0000-7000-8000-000000000001",
        "user_id": "0190f0a2-0000-7000-8000-000000000002",
        "amount": Decimal("30.25000000"),
        "currency": "AZR",
    }
    assert CATALOG.validate("finance.stake.released", payload)["amount"] == "30.25000000"
    assert CATALOG.validate("finance.stake.released", {**payload, "amount": "0E-8"}) == {
        **payload,
        "amount": "0.00000000",
    }
    for bad in (30.25, 30, "thirty", "NaN", "Infinity", None):
        with pytest.raises(InvalidEventPayload, match="amount"):
            CATALOG.validate("finance.stake.released", {**payload, "amount": bad})


def test_times_are_normalised_to_utc_and_naive_ones_refused() -> None:
    payload = {
        "stake_id": "0190f0a2-0000-7000-8000-000000000001",
        "user_id": "0190f0a2-0000-7000-8000-000000000002",
        "amount": "5",
        "currency": "AZR",
        "lock_days": 30,
        "unlocks_at": "2026-01-01T02:00:00+02:00",
    }
    normalised = CATALOG.validate("finance.stake.created", payload)
    assert normalised["unlocks_at"] == "2026-01-01T00:00:00Z"
    with pytest.raises(InvalidEventPayload, match="unlocks_at"):
        CATALOG.validate("finance.stake.created", {**payload, "unlocks_at": "2026-01-01T00:00"})


def test_counts_refuse_booleans_and_strings() -> None:
    payload = {
        "user_id": "0190f0a2-0000-7000-8000-000000000002",
        "enrollment_id": "0190f0a2-0000-7000-8000-000000000003",
        "course_id": "0190f0a2-0000-7000-8000-000000000004",
        "progress": 40,
    }
    assert CATALOG.validate("education.enrollment.progress_updated", payload) == payload
    for bad in (True, "40", 101, -1, 40.0):
        with pytest.raises(InvalidEventPayload, match="progress"):
            CATALOG.validate("education.enrollment.progress_updated", {**payload, "progress": bad})
