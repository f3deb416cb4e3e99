"""Failover breaker: order events open a per-venue breaker that takes the venue out of routing.

States: UP -> TRIPPED (too many rejects, timeouts or latency breaches within the window) ->
PROBATION after ``trip_duration`` (routable again, under observation: any failure re-trips) -> UP
after ``probation`` without failures. Time is an argument; transitions happen when an event is
recorded or when the state is read with a later ``now``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import MappingProxyType

from gateway.domain.venues import VenueSet, VenueStatus
from gateway.domain.vocabulary import Vocabulary
from gateway.errors import ConfigurationError


class VenueEventKind(Vocabulary):
    ACK = "ACK"
    FILL = "FILL"
    REJECT = "REJECT"
    TIMEOUT = "TIMEOUT"
    # An acknowledgement latency measurement; a breach when above the venue's tail times the
    # breach multiplier.
    LATENCY = "LATENCY"


@dataclass(frozen=True, slots=True)
class VenueEvent:
    """One order event at a venue, as the gateway records it."""

    venue: str
    kind: VenueEventKind
    at: datetime
    latency_us: int | None = None


@dataclass(frozen=True, slots=True)
class HealthSettings:
    reject_threshold: int = 5
    timeout_threshold: int = 3
    latency_breach_threshold: int = 5
    latency_breach_multiplier: float = 2.0
    window: timedelta = timedelta(seconds=60)
    trip_duration: timedelta = timedelta(seconds=30)
    probation: timedelta = timedelta(seconds=60)

    def __post_init__(self) -> None:
        problems = [
            f"venue health {name}: must be positive"
            for name in ("reject_threshold", "timeout_threshold", "latency_breach_threshold")
            if getattr(self, name) <= 0
        ]
        problems.extend(
            f"venue health {name}: must be positive"
            for name in ("window", "trip_duration", "probation")
            if getattr(self, name) <= timedelta(0)
        )
        if self.latency_breach_multiplier < 1:
            problems.append("venue health latency_breach_multiplier: must be >= 1")
        if problems:
            raise ConfigurationError(problems)


@dataclass(frozen=True, slots=True)
class BreakerState:
    """A venue's breaker state; ``reason`` is ``CODE: explanation`` when not UP."""

    venue: str
    status: VenueStatus
    reason: str
    since: datetime | None


_FAILURE_CODES = {
    VenueEventKind.REJECT: "REJECTS",
    VenueEventKind.TIMEOUT: "TIMEOUTS",
    VenueEventKind.LATENCY: "LATENCY_BREACHES",
}
_EMPTY: Mapping[str, str] = MappingProxyType({})


class VenueHealth:
    """Breakers of every venue of a venue set. Mutable state owned by one routing process."""

    __slots__ = ("_failures", "_out", "_probation", "_states", "_tails", "settings")

    def __init__(self, venues: VenueSet, settings: HealthSettings | None = None) -> None:
        self.settings = settings or HealthSettings()
        self._tails = {p.venue: p.latency_tail_us for p in venues}
        self._failures: dict[tuple[str, VenueEventKind], deque[datetime]] = {}
        # venue -> (until, reason) while TRIPPED, and venue -> until while on PROBATION.
        self._out: dict[str, tuple[datetime, str]] = {}
        self._probation: dict[str, datetime] = {}
        self._states: dict[str, BreakerState] = {}

    def update_venues(self, venues: VenueSet) -> None:
        """Follow a reloaded venue set (new tail latencies)."""
        self._tails = {p.venue: p.latency_tail_us for p in venues}

    def record(self, event: VenueEvent) -> BreakerState | None:
        """Record an order event; return the new state when it changed the breaker."""
        self._advance(event.at)
        kind = event.kind
        if kind is VenueEventKind.LATENCY:
            tail = self._tails.get(event.venue)
            if event.latency_us is None or tail is None:
                return None
            if event.latency_us <= tail * self.settings.latency_breach_multiplier:
                return None
        elif kind not in _FAILURE_CODES:
            return None
        venue = event.venue
        if venue in self._out:
            return None
        if venue in self._probation:
            del self._probation[venue]
            return self._trip(
                venue, event.at, f"FAILED_PROBATION: {kind.value.lower()} during probation"
            )
        times = self._failures.setdefault((venue, kind), deque())
        times.append(event.at)
        horizon = event.at - self.settings.window
        while times and times[0] < horizon:
            times.popleft()
        threshold = {
            VenueEventKind.REJECT: self.settings.reject_threshold,
            VenueEventKind.TIMEOUT: self.settings.timeout_threshold,
            VenueEventKind.LATENCY: self.settings.latency_breach_threshold,
        }[kind]
        if len(times) >= threshold:
            count = len(times)
            times.clear()
            window_s = int(self.settings.window.total_seconds())
            code = _FAILURE_CODES[kind]
            return self._trip(
                venue,
                event.at,
                f"{code}: {count} {code.lower().replace('_', ' ')} within {window_s}s",
            )
        return None

    def _trip(self, venue: str, at: datetime, reason: str) -> BreakerState:
        self._out[venue] = (at + self.settings.trip_duration, reason)
        state = BreakerState(venue, VenueStatus.TRIPPED, reason, at)
        self._states[venue] = state
        return state

    def _advance(self, now: datetime) -> None:
        if self._out:
            for venue, (until, _reason) in list(self._out.items()):
                if now >= until:
                    del self._out[venue]
                    self._probation[venue] = until + self.settings.probation
                    self._states[venue] = BreakerState(
                        venue, VenueStatus.PROBATION, "PROBATION: back after a trip", until
                    )
        if self._probation:
            for venue, until in list(self._probation.items()):
                if now >= until:
                    del self._probation[venue]
                    self._states[venue] = BreakerState(venue, VenueStatus.UP, "", until)

    def unavailable(self, now: datetime) -> Mapping[str, str]:
        """Return venue -> reason for every venue the breaker takes out at ``now``."""
        if not self._out and not self._probation:
            return _EMPTY
        self._advance(now)
        return {venue: reason for venue, (_until, reason) in self._out.items()}

    def state(self, venue: str, now: datetime) -> BreakerState:
        """Return the breaker state of ``venue`` at ``now``."""
        self._advance(now)
        return self._states.get(venue, BreakerState(venue, VenueStatus.UP, "", None))

    def on_probation(self, venue: str) -> bool:
        return venue in self._probation
