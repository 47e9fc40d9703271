"""Who gets which event: the gateway's routing tables, fed by one tap on the bus.

A :class:`Hub` lives in one gateway process and knows only that process's clients. It
reads every event from a :class:`~azora.events.bus.Tap` opened on ``>`` before the
server accepts its first connection, and hands each event to:

- the clients of the event's ``subject`` (a user's own events, whatever they
  subscribed to), and
- for a public event (no subject), the clients that subscribed to a pattern matching
  its type.

Nothing else: a user-scoped event never goes to anybody but its user, however broad the
patterns another client subscribed to.

A connection holds at most ``max_patterns`` patterns of at most
:data:`MAX_PATTERN_LENGTH` characters, and public events are routed through a
:class:`~azora.gateway.index.PatternIndex`: the cost of routing one event does not grow
with the number of patterns subscribed.

Why nothing published after a subscription is answered can be missed: the tap is live
before any client connects, and every change of the tables (:meth:`Hub.join`,
:meth:`Hub.subscribe`) is synchronous, so it takes effect before the answer is sent. An
event published after the answer reaches the tap after it, and finds the subscription
there.

Reconnection. A client that sends the last event id it saw first *catches up*: from the
moment it joins, the events routed to it are held in its buffer while the gateway
fetches what it missed (:mod:`azora.gateway.history`); the missed events go out first,
then the buffer without the ids already sent, then the client is live. The hub keeps the
most recent events it routed (at most ``recent`` of them and ``recent_bytes`` of their
encoded envelopes, the oldest going first) so a catch-up also covers the events that are
on the bus but not yet in the history the relay archives. Duplicates from the bus (an
event published again by a relay that crashed before marking it) are dropped by id.
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from azora.errors import quoted
from azora.events.bus import Tap
from azora.events.envelope import Envelope
from azora.events.errors import InvalidPattern
from azora.events.patterns import matches, validate_pattern
from azora.gateway.admission import UNPACED, LoopShare
from azora.gateway.errors import TooManyPatterns
from azora.gateway.index import PatternIndex

log = logging.getLogger(__name__)


#: The longest pattern a connection may subscribe to (event names are far shorter).
MAX_PATTERN_LENGTH = 200
#: How many patterns one connection may hold, by default.
MAX_PATTERNS = 64
#: Events sent to a catching-up connection between two yields to the event loop.
SEND_SLICE = 50
#: The bytes the recent events may take by default.
RECENT_BYTES = 16 * 1024 * 1024
#: What a kept event takes besides its envelope JSON: the tuple, its ints, a type name.
KEPT_OVERHEAD = 256

K = TypeVar("K")

#: Sends one event (with its JSON) to the given connections (Socket.IO session ids).
Emit = Callable[[Envelope, str, list[str]], Awaitable[None]]


@dataclass(eq=False)
class Connection:
    """One connected client: its user, its public patterns, and its catch-up state."""

    sid: str
    user_id: uuid.UUID
    patterns: set[str] = field(default_factory=set)
    #: While True, events routed to this client wait in ``held`` (see the module docs).
    catching_up: bool = False
    held: list[Envelope] = field(default_factory=list)
    #: False once it has left the hub (a catch-up still running for it can stop).
    active: bool = True

    def wants(self, envelope: Envelope) -> bool:
        """True if this client may and asked to receive ``envelope``."""
        if envelope.subject is not None:
            return envelope.subject == self.user_id
        return any(matches(pattern, envelope.type) for pattern in self.patterns)


class Hub:
    """The routing tables of one gateway process (see the module docstring).

    ``emit`` delivers one event to a list of connections; ``recent`` is how many routed
    events are kept for catch-ups and ``recent_bytes`` how many bytes they may take (see
    :func:`kept_size`); ``remember`` how many event ids are kept to drop
    duplicates; ``max_patterns`` how many patterns one connection may hold.
    """

    def __init__(
        self,
        emit: Emit,
        *,
        recent: int = 10_000,
        recent_bytes: int = RECENT_BYTES,
        remember: int = 100_000,
        max_patterns: int = MAX_PATTERNS,
    ) -> None:
        self._emit = emit
        self.connections: dict[str, Connection] = {}
        self._by_user: dict[uuid.UUID, dict[str, Connection]] = {}
        self._public: PatternIndex[Connection] = PatternIndex()
        self._max_patterns = max_patterns
        self._recent: deque[Kept] = deque()
        self._recent_max = recent
        self._recent_bytes_max = recent_bytes
        self._recent_bytes = 0
        # Ids as ints: the collector does not track ints (nor scan them in full runs).
        self._seen: OrderedDict[int, None] = OrderedDict()
        self._remember = remember
        self.routed = 0

    # -- the tables (synchronous: a change is in effect when the call returns) --------

    def join(
        self, sid: str, user_id: uuid.UUID, patterns: Iterable[str] = (), *, catching_up: bool
    ) -> Connection:
        """Register a connection of ``user_id``; it receives that user's events from now on.

        With ``catching_up`` its events are held until :meth:`finish_catch_up`.

        Raises:
            InvalidPattern: a malformed or too long pattern (nothing is registered).
            TooManyPatterns: more than ``max_patterns`` (nothing is registered).
        """
        wanted = self._checked(set(), patterns)
        connection = Connection(sid, user_id, catching_up=catching_up)
        self.connections[sid] = connection
        self._by_user.setdefault(user_id, {})[sid] = connection
        self._add_patterns(connection, wanted)
        return connection

    def connections_of(self, user_id: uuid.UUID) -> int:
        """How many connections ``user_id`` has joined with."""
        return len(self._by_user.get(user_id, ()))

    def leave(self, sid: str) -> None:
        """Forget a connection (nothing more is sent to it); unknown sids are ignored."""
        connection = self.connections.pop(sid, None)
        if connection is None:
            return
        connection.active = False
        self._drop(self._by_user, connection.user_id, sid)
        for pattern in connection.patterns:
            self._public.discard(pattern, sid)

    def subscribe(self, sid: str, patterns: Iterable[str]) -> list[str]:
        """Add public patterns to a connection; its full pattern list, sorted.

        Raises:
            KeyError: no such connection.
            InvalidPattern: a malformed or too long pattern (nothing is added).
            TooManyPatterns: the connection would hold more than ``max_patterns``
                (nothing is added).
        """
        connection = self.connections[sid]
        self._add_patterns(connection, self._checked(connection.patterns, patterns))
        return sorted(connection.patterns)

    def unsubscribe(self, sid: str, patterns: Iterable[str]) -> list[str]:
        """Remove patterns from a connection (unknown ones are ignored); what is left.

        Raises:
            KeyError: no such connection.
        """
        connection = self.connections[sid]
        for pattern in set(patterns) & connection.patterns:
            connection.patterns.discard(pattern)
            self._public.discard(pattern, sid)
        return sorted(connection.patterns)

    def _checked(self, held: set[str], patterns: Iterable[str]) -> set[str]:
        """The valid ``patterns`` not in ``held``; raises if any is invalid or too many."""
        wanted: set[str] = set()
        for pattern in patterns:
            if isinstance(pattern, str) and len(pattern) > MAX_PATTERN_LENGTH:
                raise InvalidPattern(
                    f"event pattern {quoted(pattern)} is longer than"
                    f" {MAX_PATTERN_LENGTH} characters"
                )
            wanted.add(validate_pattern(pattern))
            if len(held) + len(wanted - held) > self._max_patterns:
                raise TooManyPatterns(self._max_patterns)
        return wanted - held

    def _add_patterns(self, connection: Connection, patterns: set[str]) -> None:
        for pattern in patterns - connection.patterns:
            connection.patterns.add(pattern)
            self._public.add(pattern, connection.sid, connection)

    @staticmethod
    def _drop(table: dict[K, dict[str, Connection]], key: K, sid: str) -> None:
        members = table.get(key)
        if members is not None:
            members.pop(sid, None)
            if not members:
                del table[key]

    # -- routing ------------------------------------------------------------------------

    def recipients(self, envelope: Envelope) -> list[Connection]:
        """The connections ``envelope`` goes to (each once)."""
        if envelope.subject is not None:
            return list(self._by_user.get(envelope.subject, {}).values())
        return list(self._public.match(envelope.type).values())

    async def route(self, envelope: Envelope) -> None:
        """Send ``envelope`` to its live recipients and hold it for those catching up.

        An id routed before (within ``remember``) is dropped.
        """
        key = envelope.id.int
        if key in self._seen:
            return
        self._seen[key] = None
        if len(self._seen) > self._remember:
            self._seen.popitem(last=False)
        kept = _kept(envelope)
        self._keep(kept)
        self.routed += 1
        live: list[str] = []
        for connection in self.recipients(envelope):
            if connection.catching_up:
                connection.held.append(envelope)
            else:
                live.append(connection.sid)
        if live:
            await self._emit(envelope, kept[3], live)

    async def run(self, tap: Tap) -> None:
        """Route every event of ``tap`` until it ends; a failing send is logged, not fatal."""
        async for envelope in tap:
            try:
                await self.route(envelope)
            except Exception:  # one bad send must not stop the gateway
                log.exception("routing event %s failed", envelope.id)

    def _keep(self, kept: Kept) -> None:
        """Add ``kept`` to the recent events, evicting the oldest past either bound.

        Only the oldest go, so the recent events stay the newest routed without a hole:
        a catch-up that finds the client's last event among them has every later one.
        """
        self._recent.append(kept)
        self._recent_bytes += kept_size(kept)
        while self._recent and (
            len(self._recent) > self._recent_max or self._recent_bytes > self._recent_bytes_max
        ):
            self._recent_bytes -= kept_size(self._recent.popleft())

    @property
    def recent_count(self) -> int:
        """How many recent events are kept."""
        return len(self._recent)

    @property
    def recent_bytes(self) -> int:
        """The estimated bytes the recent events take (see :func:`kept_size`)."""
        return self._recent_bytes

    # -- catching up --------------------------------------------------------------------

    def recent_for(self, connection: Connection, after: uuid.UUID) -> list[Kept] | None:
        """The recent events ``connection`` wants, routed after the event ``after``, as
        kept (decode with :func:`unkept`); ``None`` when ``after`` is not among the recent
        events (it is unknown here)."""
        recent = list(self._recent)
        key = after.int
        position = next((i for i, kept in enumerate(recent) if kept[0] == key), None)
        if position is None:
            return None
        return _wanted(connection, recent[position + 1 :])

    def recent_wanted(self, connection: Connection) -> list[Kept]:
        """Every recent event ``connection`` wants, as kept, in the order they were routed."""
        return _wanted(connection, self._recent)

    async def finish_catch_up(
        self, connection: Connection, missed: Sequence[Envelope], pace: LoopShare | None = None
    ) -> None:
        """Send ``missed``, then what was held meanwhile (without repeats); then go live.

        Yields to the event loop every :data:`SEND_SLICE` events, so a long catch-up
        does not hold up other clients (for as long as ``pace`` asks, when given). Stops
        if the connection has left.
        """
        pace = pace or UNPACED
        started = pace.start()
        sent: set[uuid.UUID] = set()
        backlog = list(missed)
        while backlog:
            for envelope in backlog:
                if not connection.active:
                    return
                if envelope.id not in sent:
                    sent.add(envelope.id)
                    await self._emit(envelope, envelope.model_dump_json(), [connection.sid])
                    if len(sent) % SEND_SLICE == 0:
                        started = await pace.pause(started)
            # Events routed while those were sent were held; they go next.
            backlog, connection.held = connection.held, []
        connection.catching_up = False


#: A recent event as the hub keeps it: (id, subject, type, envelope JSON). Only ints and
#: strings, so the garbage collector does not track (or scan) the thousands it keeps.
Kept = tuple[int, int | None, str, str]


def kept_size(kept: Kept) -> int:
    """An estimate of the memory ``kept`` takes: its envelope JSON plus a fixed overhead."""
    return len(kept[3]) + KEPT_OVERHEAD


def unkept(kept: Kept) -> Envelope:
    """The envelope a kept event holds."""
    return Envelope.model_validate_json(kept[3])


def _kept(envelope: Envelope) -> Kept:
    subject = None if envelope.subject is None else envelope.subject.int
    return (envelope.id.int, subject, envelope.type, envelope.model_dump_json())


def _wanted(connection: Connection, kept: Iterable[Kept]) -> list[Kept]:
    user = connection.user_id.int
    patterns = list(connection.patterns)
    # Each type is matched against the patterns once, however many events it has.
    public: dict[str, bool] = {}

    def wants_public(event_type: str) -> bool:
        wanted = public.get(event_type)
        if wanted is None:
            wanted = public[event_type] = any(matches(p, event_type) for p in patterns)
        return wanted

    return [
        entry
        for entry in kept
        if entry[1] == user or (entry[1] is None and bool(patterns) and wants_public(entry[2]))
    ]
