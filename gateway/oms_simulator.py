"""The demo's market side: a feed handler and an OMS that talk to a gateway over its API.

``FeedHandler`` publishes a session's market data in time order and re-sends a symbol's venue
quotes before an order (venues re-quote far more often than a generated session writes, and the
router refuses quotes older than two seconds). ``SimulatedOms`` submits orders (``SubmitOrder``:
checks, then routing), has the simulated venues (``gateway.domain.venue_simulator``) execute the
child orders, reports venue events (``ReportOrderEvent``) and fills (one ``RecordFills`` stream),
cancels resting orders after a while (``CancelOrder``), and cancels those the gateway tells it to
(``StreamOrderInstructions``). What happens is counted in a ``DayTally``.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal

import grpc

from gateway._pb.execgw.v1 import common_pb2 as common
from gateway._pb.execgw.v1 import (
    journal_pb2,
    journal_pb2_grpc,
    pretrade_pb2,
    pretrade_pb2_grpc,
    routing_pb2,
)
from gateway._pb.execgw.v1 import market_state_pb2 as ms
from gateway._pb.execgw.v1 import market_state_pb2_grpc as ms_grpc
from gateway.api import convert, routing_convert
from gateway.domain.orders import Side
from gateway.domain.prices import PENNY, default_tick
from gateway.domain.quotes import QuoteBook, VenueQuote
from gateway.domain.reconciliation import CASH_SYMBOL, STATEMENT_HEADER
from gateway.domain.routing_analysis import Liquidity
from gateway.domain.scoring import SizeTier
from gateway.domain.splitting import ChildOrder
from gateway.domain.venue_simulator import SimulatedVenues, SimulationSettings
from gateway.domain.venues import VenueSet

ACCOUNTS = ("DEMO-MOMENTUM", "DEMO-MEANREV", "DEMO-AGENCY")
# Refusal reasons that mean "the symbol or the market is halted or paused".
HALT_REASONS = frozenset({"SYMBOL_HALTED", "SYMBOL_PAUSED", "PAUSE_INFERRED", "MARKET_WIDE_HALT"})
TIMEOUT = 30.0
_LIQUIDITY = {
    Liquidity.ADDED: common.LIQUIDITY_ADDED,
    Liquidity.REMOVED: common.LIQUIDITY_REMOVED,
    Liquidity.ROUTED: common.LIQUIDITY_ROUTED,
    Liquidity.AUCTION: common.LIQUIDITY_AUCTION,
}
_ROLES = {number: role for role, number in routing_convert.ROLES.items()}
_TIERS = {number: tier for tier, number in routing_convert.SIZE_TIERS.items()}


@dataclass(slots=True)
class DayTally:
    """What the feed and the OMS saw: events, orders, refusals, instructions and fills."""

    events: int = 0
    events_refused: int = 0
    orders: int = 0
    accepted: int = 0
    refusals: Counter[str] = field(default_factory=Counter)
    refused_while_halted: int = 0
    cancel_instructions: Counter[str] = field(default_factory=Counter)
    hold_instructions: int = 0
    cancelled_on_instruction: int = 0
    cancelled_by_oms: int = 0
    fills: int = 0
    fill_errors: Counter[str] = field(default_factory=Counter)
    shares: int = 0


class FeedHandler:
    """The feed handler: publishes the session in time order and refreshes venue quotes."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        events: list[tuple[datetime, ms.MarketDataEvent]],
        tally: DayTally,
    ) -> None:
        """``events``: the session's market data with their times, in time order."""
        self._stub = ms_grpc.MarketStateServiceStub(channel)
        self._events = events
        self._next = 0
        self._tally = tally
        self.quotes: dict[str, dict[str, ms.Quote]] = {}

    async def publish_until(self, until: datetime) -> None:
        """Publish every event up to ``until`` (one ``PublishMarketData`` call: when it returns,
        the gateway has applied them all, so an order sent next sees that market)."""
        batch = []
        events = self._events
        while self._next < len(events) and events[self._next][0] <= until:
            message = events[self._next][1]
            self._next += 1
            if message.HasField("quote"):
                self.quotes.setdefault(message.symbol, {})[message.quote.venue] = message.quote
            batch.append(message)
        await self._send(batch)

    async def refresh(self, symbol: str, at: datetime) -> None:
        """Every venue's last quote of ``symbol`` again, at ``at`` (venues re-quoting)."""
        batch = []
        for quote in self.quotes.get(symbol, {}).values():
            message = ms.MarketDataEvent(symbol=symbol, quote=quote)
            message.event_time.FromDatetime(at)
            batch.append(message)
        await self._send(batch)

    def nbbo(self, symbol: str) -> tuple[Decimal, Decimal] | None:
        """The best bid and offer the feed last published for ``symbol``; None if one-sided or
        crossed."""
        quotes = self.quotes.get(symbol, {}).values()
        bids = [Decimal(q.bid_price) for q in quotes if q.bid_price and q.bid_size]
        asks = [Decimal(q.ask_price) for q in quotes if q.ask_price and q.ask_size]
        if not bids or not asks or max(bids) >= min(asks):
            return None
        return max(bids), min(asks)

    async def _send(self, batch: list[ms.MarketDataEvent]) -> None:
        if not batch:
            return
        summary = await self._stub.PublishMarketData(iter(batch), timeout=TIMEOUT)
        self._tally.events += summary.accepted
        self._tally.events_refused += summary.rejected


# --- the OMS ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Routed:
    """A gateway decision as the simulated venues take it (``venue_simulator.RoutedOrder``)."""

    decision_id: str
    symbol: str
    side: Side
    size_tier: SizeTier
    national_best_bid: Decimal | None
    national_best_offer: Decimal | None
    child_orders: tuple[ChildOrder, ...]


def _decimal(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def _routed(decision: routing_pb2.RoutingDecision, side: Side) -> _Routed:
    children = tuple(
        ChildOrder(
            c.venue,
            c.quantity,
            _decimal(c.limit_price),
            convert.ORDER_TYPES[c.order_type],
            c.intermarket_sweep,
            _ROLES[c.role],
            Decimal(c.expected_cost_per_share or "0"),
        )
        for c in decision.child_orders
    )
    return _Routed(
        decision.decision_id,
        decision.symbol,
        side,
        _TIERS.get(decision.size_tier, SizeTier.SMALL),
        _decimal(decision.national_best_bid),
        _decimal(decision.national_best_offer),
        children,
    )


def _book(decision: routing_pb2.RoutingDecision, at: datetime) -> QuoteBook:
    """The venues' quotes as the decision saw them."""
    book = QuoteBook()
    for v in decision.ranked_venues:
        bid, ask = _decimal(v.bid_price), _decimal(v.ask_price)
        book.update(VenueQuote(v.venue, bid, v.bid_size if bid else 0, ask, v.ask_size, at))
    return book


class FillDropCopy:
    """One ``RecordFills`` stream; acknowledgements are read as they come and build the broker's
    view of the day (positions, and cash after the fees each execution was charged)."""

    def __init__(self, channel: grpc.aio.Channel, tally: DayTally) -> None:
        self._call = journal_pb2_grpc.JournalServiceStub(channel).RecordFills()
        self._sent: dict[str, journal_pb2.Fill] = {}
        self._tally = tally
        self.positions: Counter[tuple[str, str]] = Counter()
        self.cash: dict[str, Decimal] = {}
        self._reader = asyncio.create_task(self._read(), name="demo-fill-acks")

    async def record(self, fill: journal_pb2.Fill) -> None:
        self._sent[fill.exec_id] = fill
        await self._call.write(journal_pb2.RecordFillRequest(fill=fill, request_id=fill.exec_id))

    async def _read(self) -> None:
        async for response in self._call:
            fill = self._sent.pop(response.request_id)
            if response.HasField("error"):
                self._tally.fill_errors[response.error.reason] += 1
                continue
            signed = fill.quantity if fill.side == common.SIDE_BUY else -fill.quantity
            self.positions[(fill.account, fill.symbol)] += signed
            amount = -signed * Decimal(fill.price) - Decimal(response.ack.fees.total)
            self.cash[fill.account] = self.cash.get(fill.account, Decimal(0)) + amount
            self._tally.fills += 1
            self._tally.shares += fill.quantity

    async def close(self) -> None:
        """End the stream and wait for the last acknowledgements."""
        await self._call.done_writing()
        await asyncio.wait_for(self._reader, TIMEOUT)

    def cancel(self) -> None:
        """Abandon the stream (after a failure elsewhere); nothing when already closed."""
        self._call.cancel()
        self._reader.cancel()

    def statement(self) -> str:
        """The broker's end-of-day statement (``reconciliation.parse_statement`` format)."""
        rows = [",".join(STATEMENT_HEADER)]
        for (account, symbol), quantity in sorted(self.positions.items()):
            if quantity:
                rows.append(f"{account},{symbol},{quantity}")
        for account, amount in sorted(self.cash.items()):
            rows.append(f"{account},{CASH_SYMBOL},{amount.quantize(PENNY, ROUND_HALF_EVEN)}")
        return "\n".join(rows) + "\n"


@dataclass(slots=True)
class _Resting:
    """An order with shares left at its venue, until ``expires`` (then the OMS cancels it)."""

    order: common.Order
    venue: str
    filled: int
    expires: datetime


class SimulatedOms:
    """The simulated OMS: orders in, venue events and fills back, cancels on instruction."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        feed: FeedHandler,
        symbols: tuple[str, ...],
        tally: DayTally,
        *,
        rng: random.Random,
        venues: VenueSet,
    ) -> None:
        self._stub = pretrade_pb2_grpc.PreTradeServiceStub(channel)
        self._feed = feed
        self._symbols = symbols
        self._tally = tally
        self._rng = rng
        self._venues = SimulatedVenues(venues, SimulationSettings(seed=rng.randrange(2**32)))
        self._latency_us = {p.venue: p.effective_latency_us for p in venues}
        self._tag = secrets.token_hex(2)  # a second run on the same journal reuses no id
        self._held: Counter[tuple[str, str]] = Counter()
        self.resting: dict[str, _Resting] = {}
        self.instructions: list[pretrade_pb2.OrderInstruction] = []
        self.drop_copy = FillDropCopy(channel, tally)

    async def follow_instructions(self) -> None:
        """Collect cancel and hold instructions (an owned task; ends when cancelled)."""
        call = self._stub.StreamOrderInstructions(
            pretrade_pb2.StreamOrderInstructionsRequest(accounts=list(ACCOUNTS))
        )
        try:
            async for instruction in call:
                if not instruction.heartbeat:
                    self.instructions.append(instruction)
        finally:
            call.cancel()

    def order(self, n: int) -> common.Order | None:
        """The next order of the day: a random account, symbol and style, priced off the NBBO."""
        rng = self._rng
        symbol = rng.choice(self._symbols)
        nbbo = self._feed.nbbo(symbol)
        if nbbo is None:
            return None
        bid, ask = nbbo
        tick = default_tick(bid)
        account = rng.choice(ACCOUNTS)
        buy = rng.random() < 0.5
        far, near, through = (ask, bid, tick) if buy else (bid, ask, -tick)
        quantity = 100 * rng.randint(1, 5)
        order_type, limit = common.ORDER_TYPE_LIMIT, far + through * rng.randint(0, 1)
        roll = rng.random()
        if roll < 0.15:  # a larger marketable order: sweeps several venues
            quantity, limit = 100 * rng.randint(10, 30), far + 2 * through
        elif roll < 0.35:  # passive: rests at or behind the near side
            limit = near - through * rng.randint(0, 1)
        elif roll < 0.40:
            order_type = common.ORDER_TYPE_MARKET
        side = common.SIDE_BUY
        if not buy:
            long_enough = self._held[(account, symbol)] >= quantity
            side = common.SIDE_SELL if long_enough else common.SIDE_SELL_SHORT
        return common.Order(
            client_order_id=f"{self._tag}-{n:05d}",
            account=account,
            symbol=symbol,
            side=side,
            order_type=order_type,
            quantity=quantity,
            limit_price=str(max(limit, tick)) if order_type == common.ORDER_TYPE_LIMIT else "",
            time_in_force=common.TIME_IN_FORCE_DAY,
        )

    async def submit(self, order: common.Order, at: datetime) -> None:
        """Submit ``order`` at feed time ``at``; if accepted, send its child orders to the
        simulated venues, report their answers and fills, and keep what rests."""
        tally = self._tally
        tally.orders += 1
        answer = await self._stub.SubmitOrder(
            pretrade_pb2.SubmitOrderRequest(order=order), timeout=TIMEOUT
        )
        if not answer.accepted:
            codes = {r.code for r in answer.check.reasons} or {r.code for r in answer.order.reasons}
            tally.refusals.update(codes)
            tally.refused_while_halted += bool(codes & HALT_REASONS)
            return
        tally.accepted += 1
        decision = answer.routing
        side = convert.SIDES[order.side]
        fills = self._venues.execute(_routed(decision, side), _book(decision, at), at)
        venue = answer.order.venue or decision.child_orders[0].venue
        # The venue acknowledges after its usual latency (a slower answer trips its breaker).
        at += timedelta(microseconds=self._latency_us.get(venue, 500))
        await self._event(order, pretrade_pb2.ORDER_EVENT_TYPE_ACKNOWLEDGED, venue, 0, at)
        filled = 0
        for i, record in enumerate(fills):
            quantity = min(record.quantity, order.quantity - filled)
            if quantity <= 0:
                break
            filled += quantity
            fill = journal_pb2.Fill(
                venue=record.venue,
                exec_id=f"{order.client_order_id}-{i}",
                account=order.account,
                symbol=order.symbol,
                side=order.side,
                quantity=quantity,
                price=str(record.price),
                liquidity=_LIQUIDITY[record.liquidity],
                client_order_id=order.client_order_id,
                decision_id=decision.decision_id,
                kind=journal_pb2.FILL_KIND_NEW,
            )
            fill.transaction_time.FromDatetime(at)
            self._held[(order.account, order.symbol)] += quantity if side.is_buy else -quantity
            await self.drop_copy.record(fill)
        if filled == order.quantity:
            await self._event(order, pretrade_pb2.ORDER_EVENT_TYPE_FILLED, venue, filled, at)
            return
        if filled:
            await self._event(
                order, pretrade_pb2.ORDER_EVENT_TYPE_PARTIALLY_FILLED, venue, filled, at
            )
        lifetime = timedelta(seconds=self._rng.randint(30, 240))
        self.resting[order.client_order_id] = _Resting(order, venue, filled, at + lifetime)

    async def cancel_expired(self, at: datetime) -> None:
        """Cancel resting orders whose time is up, when the gateway says a cancel may go now."""
        for order_id in [i for i, r in self.resting.items() if r.expires <= at]:
            resting = self.resting[order_id]
            answer = await self._stub.CancelOrder(
                pretrade_pb2.CancelOrderRequest(client_order_id=order_id), timeout=TIMEOUT
            )
            if not answer.allowed:  # e.g. an auction's no-cancel window: try again later
                resting.expires = at + timedelta(seconds=30)
                continue
            del self.resting[order_id]
            self._tally.cancelled_by_oms += 1
            kind = pretrade_pb2.ORDER_EVENT_TYPE_CANCELED
            await self._event(resting.order, kind, resting.venue, resting.filled, at)

    async def follow(self, at: datetime) -> None:
        """Act on the instructions received: the venue confirms each cancel."""
        received, self.instructions = self.instructions, []
        for instruction in received:
            if instruction.instruction != pretrade_pb2.INSTRUCTION_TYPE_CANCEL:
                self._tally.hold_instructions += 1  # auction orders wait for the auction
                continue
            self._tally.cancel_instructions[instruction.reason.code] += 1
            resting = self.resting.pop(instruction.client_order_id, None)
            if resting is None:
                continue
            self._tally.cancelled_on_instruction += 1
            event = pretrade_pb2.ORDER_EVENT_TYPE_CANCELED
            await self._event(resting.order, event, resting.venue, resting.filled, at)

    async def close(self, at: datetime) -> None:
        """The end of the day: what still rests is done for the day; the fill stream ends."""
        for resting in self.resting.values():
            event = pretrade_pb2.ORDER_EVENT_TYPE_DONE_FOR_DAY
            await self._event(resting.order, event, resting.venue, resting.filled, at)
        self.resting.clear()
        await self.drop_copy.close()

    async def _event(
        self,
        order: common.Order,
        kind: pretrade_pb2.OrderEventType.ValueType,
        venue: str,
        cumulative: int,
        at: datetime,
    ) -> None:
        request = pretrade_pb2.ReportOrderEventRequest(
            client_order_id=order.client_order_id,
            event_type=kind,
            venue=venue,
            venue_order_id=f"{venue}-{order.client_order_id}",
            cumulative_quantity=cumulative,
        )
        request.event_time.FromDatetime(at)
        await self._stub.ReportOrderEvent(request, timeout=TIMEOUT)
