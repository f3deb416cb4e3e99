"""A sequenced broadcast of the latest state per key, for streaming RPCs.

The publisher numbers every update (one sequence for the process) and never waits for a
subscriber. Each subscriber holds at most one pending update per key: while it keeps up it
receives every update in order; when it falls behind, its backlog is conflated to the latest state
per key (flagged, so it knows it skipped some), which bounds its memory by the number of keys.

A subscriber that reconnects with its last sequence resumes without gaps while the stream still
retains the updates after it; otherwise it gets a fresh snapshot marked as a resync.

Updates carry a ``topic`` for filtering (a symbol, an account) and a ``key`` for conflation (the
same symbol, an order id). Values are opaque here.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Update(Generic[V]):
    sequence: int
    topic: Hashable
    key: Hashable
    value: V
    # The subscriber missed earlier updates of this key (conflated while it lagged).
    conflated: bool = False


@dataclass(frozen=True, slots=True)
class Start(Generic[V]):
    """How a subscription begins: a replay of retained updates, or a snapshot."""

    snapshot: tuple[Update[V], ...] | None
    replay: tuple[Update[V], ...]
    # The requested resume point was no longer retained.
    resync: bool
    sequence: int


class Subscription(Generic[V]):
    """One subscriber's pending updates; read them with ``wait_updates``."""

    def __init__(self, stream: StateStream[V], topics: frozenset[Hashable] | None) -> None:
        self._stream = stream
        self.topics = topics
        self._pending: dict[Hashable, Update[V]] = {}
        self._ready = asyncio.Event()
        self.conflated_total = 0
        self.closed = False

    def offer(self, update: Update[V]) -> None:
        previous = self._pending.pop(update.key, None)
        if previous is not None:
            # Lagging: keep only the latest per key, at the end so sequences stay increasing.
            self.conflated_total += 1
            update = Update(update.sequence, update.topic, update.key, update.value, True)
        self._pending[update.key] = update
        self._ready.set()

    @property
    def backlog(self) -> int:
        return len(self._pending)

    async def wait_updates(self, timeout: float | None = None) -> list[Update[V]] | None:
        """Wait for at least one update; return everything pending, oldest first.

        Returns ``[]`` once the subscription is closed, and None when ``timeout`` seconds passed
        without an update (time for a heartbeat). The timeout is a timer on this wait, not
        ``asyncio.wait_for``: a wait per subscriber per update must not cost a task.
        """
        if not self._pending and not self.closed:
            self._ready.clear()
            if timeout is None:
                while not self._pending and not self.closed:
                    await self._ready.wait()
                    self._ready.clear()
            else:
                timer = asyncio.get_running_loop().call_later(timeout, self._ready.set)
                try:
                    await self._ready.wait()
                finally:
                    timer.cancel()
                if not self._pending and not self.closed:
                    return None
        updates = list(self._pending.values())
        self._pending.clear()
        return updates

    def close(self) -> None:
        self.closed = True
        self._stream._remove(self)
        self._ready.set()


class StateStream(Generic[V]):
    """The publisher side. Not thread-safe: publish and subscribe from the event loop."""

    def __init__(self, retention: int = 100_000, first_sequence: int = 1) -> None:
        """``first_sequence``: start numbering here. The server starts from its start time in
        microseconds, so sequences keep increasing across restarts and a client's sequence from
        an earlier process can never be mistaken for a resumable one."""
        if first_sequence < 1:
            raise ValueError("first_sequence must be >= 1")
        self.sequence = first_sequence - 1
        self._retained: deque[Update[V]] = deque(maxlen=retention)
        self._latest: dict[Hashable, Update[V]] = {}
        self._everything: set[Subscription[V]] = set()
        self._by_topic: dict[Hashable, set[Subscription[V]]] = {}

    @property
    def subscriber_count(self) -> int:
        return len(self._everything) + sum(len(s) for s in self._by_topic.values())

    @property
    def next_sequence(self) -> int:
        """The sequence the next ``publish`` gives (for values that carry their own)."""
        return self.sequence + 1

    @property
    def oldest_retained(self) -> int:
        """Sequence of the oldest update a resume can start after (minus one)."""
        return self._retained[0].sequence if self._retained else self.sequence + 1

    def publish(self, topic: Hashable, key: Hashable, value: V) -> int:
        """Number and fan out an update; never waits."""
        self.sequence += 1
        update = Update(self.sequence, topic, key, value)
        self._retained.append(update)
        self._latest[key] = update
        for subscription in self._everything:
            subscription.offer(update)
        for subscription in self._by_topic.get(topic, ()):
            subscription.offer(update)
        return self.sequence

    def latest(self, topics: Iterable[Hashable] | None = None) -> tuple[Update[V], ...]:
        """The latest update of every key (of the given topics), in sequence order."""
        wanted = None if topics is None else frozenset(topics)
        found = [u for u in self._latest.values() if wanted is None or u.topic in wanted]
        found.sort(key=lambda u: u.sequence)
        return tuple(found)

    def subscribe(
        self, topics: Iterable[Hashable] | None = None, resume_after: int = 0
    ) -> tuple[Subscription[V], Start[V]]:
        """Register a subscriber and say how it starts.

        ``resume_after`` > 0 replays the retained updates after it when they are all still
        retained (no gap); otherwise, and for a fresh subscription, the start is a snapshot.
        """
        chosen = None if topics is None else frozenset(topics)
        subscription: Subscription[V] = Subscription(self, chosen)
        if chosen is None:
            self._everything.add(subscription)
        else:
            for topic in chosen:
                self._by_topic.setdefault(topic, set()).add(subscription)
        resumable = self.oldest_retained - 1 <= resume_after <= self.sequence
        if resume_after > 0 and resumable:
            replay = tuple(
                u
                for u in self._retained
                if u.sequence > resume_after and (chosen is None or u.topic in chosen)
            )
            return subscription, Start(None, replay, False, self.sequence)
        return subscription, Start(self.latest(chosen), (), resume_after > 0, self.sequence)

    def _remove(self, subscription: Subscription[V]) -> None:
        if subscription.topics is None:
            self._everything.discard(subscription)
            return
        for topic in subscription.topics:
            members = self._by_topic.get(topic)
            if members is not None:
                members.discard(subscription)
                if not members:
                    del self._by_topic[topic]
