"""The routing edge: the router over the shared quote book, the venue set, venue health and the
decision recorder.

Each decision reads the one ``QuoteBook`` the market-state engine keeps for the symbol (through the
``HaltGuard``), its operational halts and listing exchange, and the exchange time of the guard's
clock. A decision is counted, timed and queued for storage with the book it used; the write
happens off the hot path, in batches. Operator status changes and profile reloads swap in a new
``VenueSet`` version, which the router picks up at its next decision.

The venue profile file is reloaded by ``reload_venue_file`` (SIGHUP, or ``watch_venue_file`` when
its modification time changes): a file that fails validation is refused, logged with every
problem and counted, and the profiles in force stay.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Protocol

import asyncpg

from gateway import tracing
from gateway.domain import routing_analysis as analysis
from gateway.domain.calendar import TradingCalendar
from gateway.domain.orders import OrderRequest, Side
from gateway.domain.quotes import VenueQuote
from gateway.domain.router import Router, RoutingDecision, RoutingRefused
from gateway.domain.scoring import SizeTier
from gateway.domain.venue_health import BreakerState, VenueEvent, VenueEventKind
from gateway.domain.venues import VenueProfile, VenueSet, VenueStatus, load_venues
from gateway.domain.working_orders import OrderEvent, OrderEventType, WorkingOrder
from gateway.errors import ConfigurationError
from gateway.halt_guard import HaltGuard
from gateway.metrics import Metrics
from storage.errors import DatabaseUnavailable
from storage.routing_decisions import (
    DecisionRow,
    DecisionSource,
    LinkedFill,
    fetch_decisions,
    fetch_linked_fills,
)

log = logging.getLogger(__name__)

UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
_NO_HALTS: frozenset[str] = frozenset()
_LIQUIDITY = {flag.value: flag for flag in analysis.Liquidity}
_MICROSECOND = timedelta(microseconds=1)
_VENUE_EVENTS = {
    OrderEventType.ACKNOWLEDGED: VenueEventKind.LATENCY,
    OrderEventType.REJECTED: VenueEventKind.REJECT,
    OrderEventType.TIMED_OUT: VenueEventKind.TIMEOUT,
    OrderEventType.PARTIALLY_FILLED: VenueEventKind.FILL,
    OrderEventType.FILLED: VenueEventKind.FILL,
}
# Events after which an order offers no more shares at its venue.
_ENDS = frozenset({OrderEventType.FILLED, OrderEventType.CANCELED, OrderEventType.DONE_FOR_DAY})


class DecisionSink(Protocol):
    """Where decisions go (``storage.routing_decisions.RoutingDecisionRecorder``)."""

    def record_decision(self, row: DecisionRow | DecisionSource) -> None: ...
    async def flush(self, timeout: float) -> None: ...


class RoutingDesk:
    """Owns the venue set and the router; the routing service and ``SubmitOrder`` use it."""

    def __init__(
        self,
        guard: HaltGuard,
        router: Router,
        venues: VenueSet,
        metrics: Metrics,
        *,
        recorder: DecisionSink | None = None,
        pool: asyncpg.Pool | None = None,
        analysis_settings: analysis.AnalysisSettings | None = None,
        query_timeout: float = 30.0,
        venue_file: Path | None = None,
    ) -> None:
        self.guard = guard
        self.router = router
        self.metrics = metrics
        self.recorder = recorder
        self.analysis_settings = analysis_settings or analysis.AnalysisSettings()
        self._venues = venues
        self._pool = pool
        self._query_timeout = query_timeout
        # Metric children resolved once: a labels() lookup per decision costs microseconds.
        self._routed = metrics.routing_decisions.labels("routed")
        self._selections = {p.venue: metrics.venue_selections.labels(p.venue) for p in venues}
        self.venue_file = venue_file
        self._venue_file_stamp = _stamp(venue_file)

    @property
    def venues(self) -> VenueSet:
        """The venue-set version in force."""
        return self._venues

    # --- decisions ----------------------------------------------------------------------------

    def route(self, order: OrderRequest) -> tuple[RoutingDecision, int]:
        """Decide where ``order`` goes now; returns the decision and the ns it took.

        Raises:
            InvalidArgument: a zero quantity or bad limit price.
            RoutingRefused: unknown symbol, no or stale quotes, crossed book, off-tick limit,
                every venue down.
        """
        guard = self.guard
        state = guard.engine.get(order.symbol)
        if state is None:
            self.metrics.routing_decisions.labels(UNKNOWN_SYMBOL).inc()
            raise RoutingRefused(
                f"no market data has been published for {order.symbol}", reason=UNKNOWN_SYMBOL
            )
        reference = state.reference
        listing = reference.listing_exchange if reference is not None else None
        halted = frozenset(state.operational) if state.operational else _NO_HALTS
        now = guard.now()
        started = time.perf_counter_ns()
        try:
            decision = tracing.call(
                "routing.decide",
                self.router.decide,
                order,
                state.book,
                self._venues,
                now,
                halted_venues=halted,
                listing_venue=listing,
            )
        except RoutingRefused as refused:
            self.metrics.routing_decisions.labels(refused.reason).inc()
            raise
        elapsed = time.perf_counter_ns() - started
        self._routed.inc()
        self.metrics.routing_latency.observe(elapsed / 1e9)
        for child in decision.child_orders:
            counter = self._selections.get(child.venue)
            if counter is None:
                counter = self._selections[child.venue] = self.metrics.venue_selections.labels(
                    child.venue
                )
            counter.inc()
        if self.recorder is not None:
            calendar = guard.engine.calendar
            self.recorder.record_decision(_Recorded(decision, listing or "", elapsed, calendar))
        return decision, elapsed

    # --- venues -------------------------------------------------------------------------------

    def venue_states(self) -> list[tuple[VenueProfile, BreakerState, dict[SizeTier, float]]]:
        """Every venue with its breaker state and learned fill probability per size tier."""
        now = self.guard.now()
        health, fill = self.router.health, self.router.fill_probability
        return [(p, health.state(p.venue, now), fill.by_tier(p.venue)) for p in self._venues]

    def venue_state(self, venue: str) -> tuple[VenueProfile, BreakerState, dict[SizeTier, float]]:
        """One venue as ``venue_states`` lists it; NotFound (UNKNOWN_VENUE) if not configured."""
        profile = self._venues[venue]
        now = self.guard.now()
        health, fill = self.router.health, self.router.fill_probability
        return profile, health.state(venue, now), fill.by_tier(venue)

    def set_status(self, venue: str, status: VenueStatus, reason: str) -> VenueProfile:
        """Take a venue out of routing (DOWN) or bring it back (UP), from the next decision on."""
        if not reason and status is VenueStatus.DOWN:
            reason = "taken down by an operator"
        self._venues = self._venues.with_status(venue, status, reason, self.guard.now())
        log.warning(
            "venue status set by operator",
            extra={"venue": venue, "status": status.value, "reason": reason},
        )
        return self._venues[venue]

    def reload(self, path: Path | None = None, *, trade_date: date | None = None) -> VenueSet:
        """Load venue profiles again (``path`` None: the shipped defaults), without a restart.

        A status an operator set at run time survives the reload. Raises ConfigurationError,
        listing every problem, and keeps the venue set in force when the file is invalid.
        """
        day = trade_date or self.guard.engine.calendar.trade_date_of(self.guard.now())
        loaded = load_venues(path, trade_date=day)
        profiles = []
        for fresh in loaded:
            current = self._venues.get(fresh.venue)
            if current is not None and current.status_changed_at is not None:
                fresh = replace(  # noqa: PLW2901  # the profile as it will be in force
                    fresh,
                    status=current.status,
                    status_reason=current.status_reason,
                    status_changed_at=current.status_changed_at,
                )
            profiles.append(fresh)
        venues = self._venues.reloaded(profiles)
        self.router.health.update_venues(venues)
        self.router.fill_probability.update_venues(venues)
        self._venues = venues
        log.info("venue profiles reloaded", extra={"version": venues.version})
        return venues

    def reload_venue_file(self) -> bool:
        """Reload ``venue_file`` (the SIGHUP and file-watch entry); never raises for a bad file.

        A file that cannot be read or fails validation (a take fee above the Rule 610(c) cap in
        force, say) is refused: the error is logged with every problem, counted in
        ``sor_venue_profile_reloads_total{result="refused"}``, and the profiles in force stay.
        Returns whether the new profiles are in force.
        """
        self._venue_file_stamp = _stamp(self.venue_file)
        try:
            venues = self.reload(self.venue_file)
        except (ConfigurationError, OSError, UnicodeDecodeError) as exc:
            problems = list(exc.problems) if isinstance(exc, ConfigurationError) else [str(exc)]
            self.metrics.venue_profile_reloads.labels("refused").inc()
            log.error(
                "venue profile reload refused; the profiles in force stay",
                extra={
                    "reason": "INVALID_CONFIGURATION",
                    "venue_file": str(self.venue_file or "(shipped)"),
                    "problems": problems,
                    "version": self._venues.version,
                },
            )
            return False
        self.metrics.venue_profile_reloads.labels("ok").inc()
        log.info("venue profile file reloaded", extra={"venue_file": str(self.venue_file)})
        return venues is self._venues

    async def watch_venue_file(self, interval: float) -> None:
        """Reload ``venue_file`` whenever its modification time (or size) changes; runs until
        cancelled, checking every ``interval`` seconds."""
        while True:
            await asyncio.sleep(interval)
            stamp = _stamp(self.venue_file)
            if stamp is not None and stamp != self._venue_file_stamp:
                self.reload_venue_file()

    def on_order_event(
        self, before: WorkingOrder, after: WorkingOrder, event: OrderEvent
    ) -> BreakerState | None:
        """Learn from what a venue did with a routed order (``ReportOrderEvent``).

        Rejects, timeouts and slow acknowledgements (latency since the order was registered)
        feed the venue's failover breaker; an order that ends (filled, cancelled, done for the
        day) teaches the fill probability of its venue, symbol bucket and size tier. Returns the
        venue's new breaker state when the event changed it.
        """
        venue = after.venue
        if not venue or venue not in self._venues:
            return None
        kind = _VENUE_EVENTS.get(event.event_type)
        changed = None
        if kind is not None:
            latency = None
            if kind is VenueEventKind.LATENCY:
                latency = int((event.at - before.created_at) / _MICROSECOND)
            changed = self.record_venue_event(VenueEvent(venue, kind, event.at, latency))
        if before.state.is_open and not after.state.is_open and event.event_type in _ENDS:
            order = after.order
            scoring = self.router.settings.scoring
            tier = scoring.size_thresholds.tier(order.quantity, order.limit_price)
            self.router.fill_probability.record(
                venue,
                order.symbol,
                tier,
                offered=order.quantity,
                filled=after.filled_quantity,
                at=event.at,
            )
        return changed

    def record_venue_event(self, event: VenueEvent) -> BreakerState | None:
        """Feed the failover breaker; returns the venue's new state when the event changed it."""
        changed = self.router.health.record(event)
        if changed is not None:
            log.warning(
                "venue breaker changed",
                extra={"venue": changed.venue, "status": changed.status.value},
            )
        return changed

    # --- hindsight ----------------------------------------------------------------------------

    async def report(
        self,
        start: date,
        end: date,
        symbols: Sequence[str] = (),
        *,
        deadline: float | None = None,
    ) -> analysis.RoutingReport:
        """Analyse the stored decisions of ``start``..``end`` linked to fills.

        Decisions still queued are written first, so a report includes every decision made
        before it was asked for. ``deadline`` (seconds, the RPC's) caps each database wait.
        Raises Unavailable when the database cannot answer in time.
        """
        if self._pool is None:
            raise RuntimeError("routing reports need the database pool")
        timeout = self._query_timeout if deadline is None else min(deadline, self._query_timeout)
        if self.recorder is not None:
            await self.recorder.flush(timeout)
        try:
            async with self._pool.acquire(timeout=timeout) as connection:
                decisions = await fetch_decisions(
                    connection, start=start, end=end, symbols=symbols, timeout=timeout
                )
                fills = await fetch_linked_fills(
                    connection, start=start, end=end, symbols=symbols, timeout=timeout
                )
        except TimeoutError as exc:
            raise DatabaseUnavailable(f"routing report query took over {timeout}s") from exc
        fees = {p.venue: p.fees for p in self._venues}
        result = analysis.routing_report(
            (decision_record(d) for d in decisions),
            (f for f in map(_fill_record, fills) if f is not None),
            fees,
            self.analysis_settings,
        )
        if result.decisions_with_fills:
            self.metrics.routing_accuracy.set(result.accuracy)
        return result


def _stamp(path: Path | None) -> tuple[int, int] | None:
    """Modification time and size of ``path``; None when absent (or the shipped defaults)."""
    if path is None:
        return None
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


class _Recorded:
    """A decision queued for storage; its row is built by the recorder's task, not the caller."""

    __slots__ = ("calendar", "decision", "elapsed", "listing")

    def __init__(
        self, decision: RoutingDecision, listing: str, elapsed: int, calendar: TradingCalendar
    ) -> None:
        self.decision, self.listing, self.elapsed = decision, listing, elapsed
        self.calendar = calendar

    def row(self) -> DecisionRow:
        decision, listing, elapsed = self.decision, self.listing, self.elapsed
        calendar = self.calendar
        at = decision.decided_at
        return DecisionRow(
            decision.decision_id,
            at,
            calendar.trade_date_of(at),
            decision.symbol,
            decision.side.value,
            decision.order_type.value,
            decision.quantity,
            decision.venue,
            listing,
            decision.size_tier.value,
            decision.arrival_mid,
            decision.national_best_bid,
            decision.national_best_offer,
            decision.expected_cost_per_share,
            decision.fallback_from,
            decision.venue_set_version,
            elapsed,
            tuple(
                (row[0], round(row[1], 6), row[2], tuple(r.code for r in row[3]))
                for row in decision.scores
            ),
            tuple(
                (
                    c.venue,
                    c.quantity,
                    c.limit_price,
                    c.order_type.value,
                    c.intermarket_sweep,
                    c.role.value,
                    c.expected_cost_per_share,
                )
                for c in decision.child_orders
            ),
            tuple(
                (q.venue, q.bid_price, q.bid_size, q.ask_price, q.ask_size, q.time)
                for q in decision.snapshot
            ),
        )


def decision_record(row: DecisionRow) -> analysis.DecisionRecord:
    """A stored routing decision as hindsight analysis (and P&L attribution) reads it."""
    mid = row.arrival_mid
    if mid is None:  # a one-sided book: the only side stands in for the mid
        mid = row.national_best_bid or row.national_best_offer or Decimal(0)
    return analysis.DecisionRecord(
        row.decision_id,
        row.symbol,
        Side(row.side),
        row.quantity,
        row.venue,
        mid,
        tuple(VenueQuote(*quote) for quote in row.snapshot),
        row.listing_venue,
    )


def _fill_record(fill: LinkedFill) -> analysis.FillRecord | None:
    liquidity = _LIQUIDITY.get(fill.liquidity)
    if liquidity is None or fill.quantity <= 0:
        return None
    return analysis.FillRecord(
        fill.decision_id,
        fill.venue,
        fill.quantity,
        fill.price,
        fill.venue_fee / fill.quantity,
        liquidity,
    )
