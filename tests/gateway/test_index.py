"""The pattern index finds exactly the members whose pattern ``matches()`` an event name."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from azora.events.patterns import matches
from azora.gateway.index import PatternIndex

# Few distinct tokens, so that random patterns and names often meet.
TOKENS = st.sampled_from(["a", "b", "c", "finance", "ubi"])
NAMES = st.lists(TOKENS, min_size=2, max_size=5).map(".".join)
PATTERNS = st.builds(
    lambda tokens, rest: ".".join(tokens + ([">"] if rest else [])),
    st.lists(st.one_of(TOKENS, st.just("*")), min_size=1, max_size=5),
    st.booleans(),
)


@given(
    filed=st.lists(st.tuples(PATTERNS, st.sampled_from(["s1", "s2", "s3", "s4"])), max_size=30),
    dropped=st.lists(st.integers(min_value=0, max_value=29), max_size=10),
    names=st.lists(NAMES, min_size=1, max_size=10),
)
def test_the_index_finds_what_brute_force_matching_finds(
    filed: list[tuple[str, str]], dropped: list[int], names: list[str]
) -> None:
    index: PatternIndex[str] = PatternIndex()
    for pattern, key in filed:
        index.add(pattern, key, key.upper())
    kept = list(filed)
    for position in dropped:
        if position < len(kept):
            pattern, key = kept.pop(position)
            if (pattern, key) not in kept:  # filed twice: still there once
                index.discard(pattern, key)
    for name in names:
        expected = {key: key.upper() for pattern, key in kept if matches(pattern, name)}
        assert index.match(name) == expected, name


def test_discarding_everything_leaves_an_empty_index() -> None:
    index: PatternIndex[int] = PatternIndex()
    filed = [(">", "s1"), ("finance.>", "s2"), ("finance.*.created", "s1"), ("a.b", "s3")]
    for pattern, key in filed:
        index.add(pattern, key, 1)
    assert index.match("finance.stake.created") == {"s1": 1, "s2": 1}
    index.discard("never.filed", "s1")  # unknown: nothing happens
    for pattern, key in filed:
        index.discard(pattern, key)
    assert not index
    assert index.match("finance.stake.created") == {}
