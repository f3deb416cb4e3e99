"""The halt-safety edge: one market-state engine, working orders, and the streams that carry them.

Feeds publish events into the engine; each change it reports is (1) published on the market-state
stream, (2) recorded for compliance, (3) turned into cancel (or hold) instructions for the working
orders of the symbol, and (4) counted. A ticker task applies what the passing of time changes
(inferred pauses, circuit-breaker ends, auction phases, the closing-period band doubling).

Clock: ``wall`` (production) takes exchange time from the system clock; ``feed`` takes it from the
latest published event time, so replays, simulations and demos run a trading day at any speed
with the same code.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Protocol

from prometheus_client import Counter

from gateway import tracing
from gateway._pb.execgw.v1 import market_state_pb2 as pb
from gateway._pb.execgw.v1 import pretrade_pb2 as pretrade_pb
from gateway.api import convert, market_convert
from gateway.domain.calendar import EXCHANGE_TZ
from gateway.domain.feed import EventRefused, FeedEvent
from gateway.domain.market_state import Change, ChangeKind, MarketStateEngine
from gateway.domain.orders import OrderRequest, Reason
from gateway.domain.pretrade import (
    Decision,
    PretradeSettings,
    Restriction,
    check_cancel,
    check_order,
)
from gateway.domain.router import RoutingDecision
from gateway.domain.working_orders import OrderEvent, WorkingOrder, WorkingOrders
from gateway.errors import FailedPrecondition
from gateway.feed_health import FeedHealth
from gateway.metrics import Metrics
from gateway.state_stream import StateStream
from storage.market_events import MarketStateEvent, PretradeRefusal, ShortSaleRecord

log = logging.getLogger(__name__)

MARKET_TOPIC = ""
MARKET_KEY = "\x00market"
_HALT_RECORDS = frozenset(
    {"HALT", "PAUSE", "PAUSE_INFERRED", "CIRCUIT_BREAKER", "OPERATIONAL_HALT"}
)

# A published MarketStateUpdate, encoded (sequence and publish time set).
EncodedUpdate = bytes


class Recorder(Protocol):
    """Where compliance records go (``storage.market_events.MarketEventRecorder``)."""

    def record_event(self, event: MarketStateEvent) -> None: ...
    def record_refusal(self, refusal: PretradeRefusal) -> None: ...
    def record_short_sale(self, record: ShortSaleRecord) -> None: ...


# Decides the venue of an allowed order: (decision, ns it took).
Router = Callable[[OrderRequest], tuple[RoutingDecision, int]]


@dataclass(frozen=True, slots=True)
class Submission:
    """The outcome of ``SubmitOrder``: the order, its check and its routing decision."""

    order: WorkingOrder
    # None for a duplicate: the original answer is the order as it stands.
    check: Decision | None
    check_ns: int
    routing: RoutingDecision | None
    routing_ns: int
    duplicate: bool = False


class HaltGuard:
    """Owns the engine and the working orders; the pre-trade and market-state services use it."""

    def __init__(
        self,
        engine: MarketStateEngine,
        metrics: Metrics,
        *,
        recorder: Recorder | None = None,
        pretrade: PretradeSettings | None = None,
        clock: str = "wall",
        tick_seconds: float = 0.2,
        first_sequence: int = 1,
        retention: int = 100_000,
        feed_stale_seconds: float = 0.0,
    ) -> None:
        self.engine = engine
        self.feed = FeedHealth(feed_stale_seconds)
        self.metrics = metrics
        self.recorder = recorder
        self.pretrade = pretrade or PretradeSettings()
        self.orders = WorkingOrders()
        self.states: StateStream[EncodedUpdate] = StateStream(retention, first_sequence)
        self.instructions: StateStream[pretrade_pb.OrderInstruction] = StateStream(
            retention, first_sequence
        )
        self._accepted = metrics.market_events.labels("accepted")
        self._feed_clock = clock == "feed"
        self._feed_time: datetime | None = None
        self._decision_counters: dict[tuple[str, bool], Counter] = {}
        self._tick_interval = timedelta(seconds=tick_seconds)
        self._last_tick: datetime | None = None

    # --- time -------------------------------------------------------------------------------

    def now(self) -> datetime:
        """Exchange time (America/New_York: comparisons with session times stay cheap)."""
        if self._feed_clock:
            return self._feed_time or datetime.now(EXCHANGE_TZ)
        return datetime.now(EXCHANGE_TZ)

    def tick(self, now: datetime | None = None) -> int:
        """Apply the passing of time; returns the number of changes."""
        changes = self.engine.tick(now or self.now())
        self._handle(changes)
        return len(changes)

    async def run_ticker(self, interval: float) -> None:
        """Tick every ``interval`` seconds until cancelled (an owned task of the lifespan)."""
        while True:
            await asyncio.sleep(interval)
            try:
                self.tick()
            except Exception:  # one bad tick must not stop the safety clock
                log.exception("market-state tick failed")

    # --- market data ------------------------------------------------------------------------

    def publish(self, event: FeedEvent) -> list[Change]:
        """Apply one event (raises EventRefused, state unchanged) and handle its changes."""
        try:
            changes = self.engine.apply(event)
        except EventRefused as refused:
            self.metrics.market_events.labels(refused.reason).inc()
            raise
        self._accepted.inc()
        self.feed.received()
        if self._feed_clock and (self._feed_time is None or event.at > self._feed_time):
            self._feed_time = event.at
            # Time-driven rules follow feed time at the ticker's resolution, not per event.
            last = self._last_tick
            if last is None or event.at - last >= self._tick_interval:
                self._last_tick = event.at
                changes.extend(self.engine.tick(event.at))
        self._handle(changes)
        return changes

    def _handle(self, changes: list[Change]) -> None:
        if not changes:
            return
        now = self.now()
        published: set[str] = set()
        for change in changes:
            self._record(change)
            if change.cancel:
                self._cancel_orders(change)
            self._count(change)
        for change in changes:
            key = change.symbol or MARKET_KEY
            if key in published:
                continue
            published.add(key)
            kinds = {k for c in changes if (c.symbol or MARKET_KEY) == key for k in c.kinds}
            self._publish_state(change.symbol, sorted(kinds, key=lambda k: k.value), now)
            if ChangeKind.HALT in kinds or ChangeKind.PAUSE in kinds:
                self.metrics.halt_latency.observe(max(0.0, (now - change.at).total_seconds()))
        if any(not c.symbol and ChangeKind.CIRCUIT_BREAKER in c.kinds for c in changes):
            # Every symbol's phase follows a market-wide halt or its end.
            for symbol in sorted(self.engine.symbols):
                if symbol not in published:
                    self._publish_state(symbol, [ChangeKind.CIRCUIT_BREAKER], now)

    def _publish_state(self, symbol: str, kinds: list[ChangeKind], now: datetime) -> None:
        message = pb.MarketStateUpdate()
        convert.to_timestamp(now, message.time)
        codes = market_convert.changes(kinds)
        if not symbol:
            message.market.state.CopyFrom(market_convert.market_state(self.engine, now))
            message.market.changes.extend(codes)
            topic, key = MARKET_TOPIC, MARKET_KEY
        else:
            state = self.engine.get(symbol)
            if state is None:
                return
            message.symbol.state.CopyFrom(market_convert.symbol_state(self.engine, state, now))
            message.symbol.changes.extend(codes)
            topic = key = symbol
        # Encoded once, with the sequence the stream gives it, and sent as is to every subscriber.
        message.sequence = self.states.next_sequence
        self.states.publish(topic, key, message.SerializeToString())

    def _count(self, change: Change) -> None:
        if change.record in (
            "HALT",
            "PAUSE",
            "PAUSE_INFERRED",
            "CIRCUIT_BREAKER",
            "OPERATIONAL_HALT",
        ):
            self.metrics.halts_detected.labels(change.record.lower()).inc()
        elif change.record in ("LIMIT_STATE", "STRADDLE") and change.reason_code != "NONE":
            self.metrics.halts_detected.labels(change.reason_code.lower()).inc()
        elif change.record == "AUCTION_PHASE" and "AUCTION" in change.reason_code:
            self.metrics.auction_periods.labels(change.reason_code.lower()).inc()

    def _trade_date(self, at: datetime) -> date:
        session = self.engine.session(at)
        return session.trade_date if session else self.engine.calendar.trade_date_of(at)

    def _record(self, change: Change) -> None:
        if self.recorder is None or not change.record:
            return
        session = self.engine.session(change.at)
        trade_date = (
            session.trade_date if session else self.engine.calendar.trade_date_of(change.at)
        )
        self.recorder.record_event(
            MarketStateEvent(
                change.at,
                trade_date,
                change.symbol,
                change.record,
                change.reason_code,
                change.venue,
                dict(change.detail),
            )
        )
        if change.record == "SHORT_SALE_RESTRICTION":
            state = self.engine.get(change.symbol)
            if state is not None and state.reference is not None and state.ssr.restricted_until:
                self.recorder.record_short_sale(
                    ShortSaleRecord(
                        change.symbol,
                        trade_date,
                        state.ssr.restricted_until,
                        state.reference.prior_close
                        * self.engine.settings.short_sale.trigger_fraction,
                        change.at,
                    )
                )

    # --- working orders and instructions ------------------------------------------------------

    def _cancel_orders(self, change: Change) -> None:
        symbols = [change.symbol] if change.symbol else sorted(self.engine.symbols)
        reason = Reason(
            f"{change.record or 'HALT'}",
            f"{change.symbol or 'market'}: {change.record.lower().replace('_', ' ')} "
            f"({change.reason_code}) at {change.at.isoformat()}",
        )
        for symbol in symbols:
            marked = self.orders.mark_pending_cancel(
                symbol, reason, change.at, venue=change.venue or None, auction_orders=False
            )
            for working in marked:
                self._instruct(working, reason, change.at, pretrade_pb.INSTRUCTION_TYPE_CANCEL)
            if marked:
                self.metrics.orders_cancelled.inc(len(marked))
            for working in self.orders.open_orders(symbol):
                # Auction orders wait for the (re)opening or closing auction: hold, do not modify.
                if working.order.order_type.is_auction_only and not change.venue:
                    self._instruct(working, reason, change.at, pretrade_pb.INSTRUCTION_TYPE_HOLD)

    def _instruct(
        self,
        working: WorkingOrder,
        reason: Reason,
        at: datetime,
        kind: pretrade_pb.InstructionType.ValueType,
    ) -> None:
        order = working.order
        message = pretrade_pb.OrderInstruction(
            instruction=kind,
            client_order_id=order.client_order_id,
            account=order.account,
            symbol=order.symbol,
            venue=working.venue,
        )
        market_convert.reason(reason, message.reason)
        message.issued_at.FromDatetime(at)
        sequence = self.instructions.publish(order.account, order.client_order_id, message)
        message.sequence = sequence

    # --- pre-trade ----------------------------------------------------------------------------

    def check(self, order: OrderRequest, rpc: str) -> tuple[Decision, int]:
        """Decide on ``order`` now; refusals are recorded. Returns the decision and its ns."""
        started = time.perf_counter_ns()
        decision = tracing.call(
            "pretrade.check", check_order, self.engine, order, self.now(), self.pretrade
        )
        stale = self.feed.reason()
        if stale is not None:
            # The state may be missing a halt published since the feed went away.
            decision = replace(
                decision,
                allowed=False,
                reasons=(stale, *decision.reasons),
                restrictions=(
                    Restriction.NO_NEW_ORDERS,
                    *(r for r in decision.restrictions if r is not Restriction.NO_NEW_ORDERS),
                ),
            )
        elapsed = time.perf_counter_ns() - started
        counter = self._decision_counters.get((rpc, decision.allowed))
        if counter is None:
            outcome = "allowed" if decision.allowed else "refused"
            counter = self.metrics.pretrade_decisions.labels(rpc, outcome)
            # Labelled children looked up once: ``labels()`` costs microseconds per order.
            self._decision_counters[(rpc, decision.allowed)] = counter
        counter.inc()
        if not decision.allowed and self.recorder is not None:
            self.recorder.record_refusal(
                PretradeRefusal(
                    decision.decided_at,
                    self._trade_date(decision.decided_at),
                    order.client_order_id,
                    order.account,
                    order.symbol,
                    order.side.value,
                    order.order_type.value,
                    order.quantity,
                    order.limit_price,
                    tuple(r.code for r in decision.reasons),
                    tuple(r.value for r in decision.restrictions),
                    decision.phase.value if decision.phase else "UNKNOWN",
                    rpc,
                )
            )
        return decision, elapsed

    def submit(self, order: OrderRequest, route: Router) -> Submission:
        """Check, route and register ``order``; a repeat of the same order returns the original.

        ``route`` decides the venue for an order the checks allowed (RoutingRefused, a
        FailedPrecondition, when no venue can take it now: the order is refused with its reason).
        """
        previous = self.orders.previous(order)
        if previous is not None:
            return Submission(previous, None, 0, None, 0, duplicate=True)
        decision, elapsed = self.check(order, "SubmitOrder")
        now = decision.decided_at
        if not decision.allowed:
            refused = self.orders.refuse(order, decision.reasons, now)
            return Submission(refused, decision, elapsed, None, 0)
        try:
            routed, routing_ns = route(order)
        except FailedPrecondition as refusal:
            reason = Reason(refusal.reason, refusal.message)
            refused = self.orders.refuse(order, (reason,), now)
            return Submission(refused, decision, elapsed, None, 0)
        working = self.orders.register(
            order, now, venue=routed.venue, decision_id=routed.decision_id
        )
        return Submission(working, decision, elapsed, routed, routing_ns)

    def cancel(self, client_order_id: str) -> tuple[WorkingOrder, list[Reason]]:
        working = self.orders.require(client_order_id)
        now = self.now()
        reasons = check_cancel(self.engine, working, now)
        if not reasons:
            reason = Reason("CANCEL_REQUESTED", "the OMS asked to cancel the order")
            self.orders.mark_pending_cancel(
                working.order.symbol, reason, now, venue=None, only=client_order_id
            )
            working = self.orders.require(client_order_id)
        return working, reasons

    def report(self, event: OrderEvent) -> tuple[WorkingOrder, WorkingOrder]:
        """Apply a venue event; returns the order before and after it."""
        before = self.orders.require(event.client_order_id)
        return before, self.orders.apply(event)
