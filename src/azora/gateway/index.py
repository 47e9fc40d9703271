"""Which subscriptions select an event: a trie of pattern tokens.

A :class:`PatternIndex` files members (a key and a value, e.g. a connection) under
event patterns (:mod:`azora.events.patterns`: ``*`` is one token, a trailing ``>`` one
or more). Finding the members whose pattern matches an event name walks the name's
tokens down the trie, following at each level the exact token and ``*``: its cost grows
with the length of the name (and the number of members found), not with the number of
patterns filed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(eq=False)
class _Node(Generic[V]):
    #: The next token of the patterns going on ("*" included).
    children: dict[str, _Node[V]] = field(default_factory=dict)
    #: Members whose pattern ends here.
    ends: dict[str, V] = field(default_factory=dict)
    #: Members whose pattern ends with ">" after this node.
    rest: dict[str, V] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.children or self.ends or self.rest)


class PatternIndex(Generic[V]):
    """Members filed under patterns; :meth:`match` finds those an event name selects.

    Patterns are taken as valid (see :func:`azora.events.patterns.validate_pattern`):
    the index does not check them.
    """

    def __init__(self) -> None:
        self._root: _Node[V] = _Node()

    def add(self, pattern: str, key: str, value: V) -> None:
        """File ``key`` (with ``value``) under ``pattern``; again replaces the value."""
        tokens = pattern.split(".")
        node = self._root
        for token in tokens[:-1]:
            node = node.children.setdefault(token, _Node())
        if tokens[-1] == ">":
            node.rest[key] = value
        else:
            node.children.setdefault(tokens[-1], _Node()).ends[key] = value

    def discard(self, pattern: str, key: str) -> None:
        """Take ``key`` off ``pattern`` (nothing if it is not there); empty branches go."""
        tokens = pattern.split(".")
        last = tokens[-1]
        path: list[tuple[_Node[V], str]] = []
        node = self._root
        for token in tokens[:-1] if last == ">" else tokens:
            child = node.children.get(token)
            if child is None:
                return
            path.append((node, token))
            node = child
        (node.rest if last == ">" else node.ends).pop(key, None)
        for parent, token in reversed(path):
            if not parent.children[token].empty():
                break
            del parent.children[token]

    def match(self, name: str) -> dict[str, V]:
        """The members (key to value) whose pattern selects the event name ``name``."""
        tokens = name.split(".")
        found: dict[str, V] = {}
        pending = [(self._root, 0)]
        while pending:
            node, position = pending.pop()
            if position == len(tokens):
                found.update(node.ends)
                continue
            found.update(node.rest)  # at least one token is left for ">"
            for token in (tokens[position], "*"):
                child = node.children.get(token)
                if child is not None:
                    pending.append((child, position + 1))
        return found

    def __bool__(self) -> bool:
        return not self._root.empty()
