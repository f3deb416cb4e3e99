"""Deterministic venue simulator: a trading day of orders through the router, then hindsight.

Everything comes from one seed: per-symbol random-walk mids, per-venue top of book around them
(venues with more liquidity sit at the NBBO more often and show more size, quote ages up to
200 ms), the order flow, latencies and every fill outcome. The router learns fill probabilities
and venue health from the simulated events as it would live.

The market model (``gateway.domain.market_model``, parameters ``SimulationSettings.market``, all
market-wide; every per-venue number comes from the venue profile) is how venue choice changes
what an order pays beyond the fee:

- Quote fade in flight. A taking child's quote is exposed for the venue's typical latency plus
  an exponential tail (mean a quarter of tail - typical). Competing takers (rate proportional to
  the liquidity score, exponential size) deplete the shown size and price moves remove it, so a
  slow venue's quote fades more often than a fast one's, and a child that needs all of a thin
  quote misses more than one that needs part of a deep one. A just-changed quote fades more than
  a long-standing one (flickering). An access delay is not exposure: IEX's speed bump holds the
  competitors' orders and the maker's cancels as long as ours.
- Print-triggered fades (latency arbitrage). Children leave together; one that arrives more than
  ``reaction_us`` after the first print (access delays counted for the print, not for the later
  venue's exposure) loses its displayed quote with probability ``reaction_fade``.
- Hidden midpoint liquidity on midpoint-peg venues, found with probability ``midpoint_presence x
  liquidity_score``; it executes first, at the arrival mid, at the take fee.
- Misses and re-routes. Missed shares are routed out by the venue one tick worse at its routed
  fee, and one more tick worse if the price moves again during the re-route (the venue's round
  trip, access delay and ``route_out_us``).
- Queue position of posted children. The queue ahead is the displayed size at the same price
  (times ``inverted_queue_factor`` at an inverted venue); the opposing flow reaching the venue is
  its share of the taking flow (liquidity score against the mean), doubling per tick the order
  rests inside the spread and halving per tick behind. An order posted behind a long queue
  fills less.

The hindsight analysis of the day (``routing_analysis`` given the venue profiles) costs every
alternative route, the listing-exchange and lowest-fee baselines included, as the expected
outcome of the same model from the same snapshot: an exchange sent the whole order routes out to
better quotes first (Rule 611) and the rest after its own print, paying the routed fee, the
longer exposure and the print-triggered fades.

This is a model for exercising and benchmarking the router, not a market forecast: its numbers
are illustrative and its parameters are settings.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from gateway.domain.fill_probability import FillProbabilityModel, FillProbabilitySettings
from gateway.domain.market_model import Leg, MarketModel, draw_leg, spray_timing
from gateway.domain.orders import OrderRequest, OrderType, Side
from gateway.domain.prices import PENNY, SUB_PENNY
from gateway.domain.quotes import QuoteBook, VenueQuote
from gateway.domain.router import Router, RouterSettings, RoutingRefused
from gateway.domain.routing_analysis import (
    AnalysisSettings,
    DecisionCost,
    DecisionRecord,
    FillRecord,
    Liquidity,
    RoutingReport,
    decision_costs,
    decision_record,
    report_of,
)
from gateway.domain.scoring import SizeTier
from gateway.domain.splitting import ChildOrder, ChildRole
from gateway.domain.venue_health import HealthSettings, VenueEvent, VenueEventKind, VenueHealth
from gateway.domain.venues import VenueProfile, VenueSet


@dataclass(frozen=True, slots=True)
class SimulationSettings:
    """Parameters of a simulated day.

    Attributes:
        market: the market model taking orders face (``gateway.domain.market_model``); the
            hindsight analysis of the day uses the same one.
        outage_venue: a venue that rejects every order during ``outage`` (exercises failover).
        passive_flow: mean opposing shares that reach a resting order at the NBBO.
    """

    seed: int = 20261125
    orders: int = 20_000
    symbols: int = 50
    # 09:30 ET on a winter trading day.
    start: datetime = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)
    session: timedelta = timedelta(hours=6, minutes=30)
    market: MarketModel = field(default_factory=MarketModel)
    outage_venue: str = "NASDAQ"
    passive_flow: float = 400.0  # mean opposing shares reaching a resting order at the NBBO
    outage: tuple[float, float] = (0.45, 0.50)  # fraction of the session
    analysis: AnalysisSettings = field(default_factory=AnalysisSettings)


@dataclass(frozen=True, slots=True)
class SimulatedDay:
    decisions: tuple[DecisionRecord, ...]
    fills: tuple[FillRecord, ...]
    report: RoutingReport
    refusals: Counter[str]
    fallbacks: int
    children: int
    costs: tuple[DecisionCost, ...] = ()  # per decision with fills, as the report used them


@dataclass(slots=True)
class _Symbol:
    name: str
    mid_ticks: int  # mid in half-cents, so a one-cent spread is representable
    listing: str


def simulate_day(
    venues: VenueSet,
    settings: SimulationSettings | None = None,
    router_settings: RouterSettings | None = None,
    *,
    health_settings: HealthSettings | None = None,
    fill_settings: FillProbabilitySettings | None = None,
) -> SimulatedDay:
    """Drive ``settings.orders`` orders over ``settings.symbols`` symbols through a new router."""
    settings = settings or SimulationSettings()
    rng = random.Random(settings.seed)
    fill_model = FillProbabilityModel(venues, fill_settings)
    health = VenueHealth(venues, health_settings)
    router = Router(router_settings or RouterSettings(), fill_model, health)
    profiles = {p.venue: p for p in venues}
    listings: list[str] = [v for v in ("NASDAQ", "NYSE", "NYSE_ARCA") if v in profiles]
    listings = listings or list(profiles)
    symbols = [
        _Symbol(f"S{i:03d}", rng.randint(2 * 1_000, 2 * 40_000), listings[i % len(listings)])
        for i in range(settings.symbols)
    ]
    decisions: list[DecisionRecord] = []
    fills: list[FillRecord] = []
    refusals: Counter[str] = Counter()
    fallbacks = 0
    children = 0
    step = settings.session / settings.orders
    outage_start = settings.start + settings.session * settings.outage[0]
    outage_end = settings.start + settings.session * settings.outage[1]
    for n in range(settings.orders):
        now = settings.start + step * n
        symbol = symbols[rng.randrange(len(symbols))]
        symbol.mid_ticks += rng.choice((-1, 0, 0, 1))
        symbol.mid_ticks = max(symbol.mid_ticks, 400)
        book = _book(rng, symbol, profiles, now)
        order = _order(rng, n, symbol, book)
        try:
            decision = router.decide(order, book, venues, now, listing_venue=symbol.listing)
        except RoutingRefused as refused:
            refusals[refused.reason] += 1
            continue
        if decision.fallback_from:
            fallbacks += 1
        children += len(decision.child_orders)
        decisions.append(decision_record(decision, symbol.listing))
        in_outage = outage_start <= now < outage_end
        fills.extend(
            _execute(
                decision,
                book,
                rng=rng,
                profiles=profiles,
                fill_model=fill_model,
                health=health,
                settings=settings,
                now=now,
                in_outage=in_outage,
            )
        )
    fees = {p.venue: p.fees for p in venues}
    analysis = replace(settings.analysis, market=settings.market)
    count, costs = decision_costs(decisions, fills, fees, analysis, profiles=profiles)
    report = report_of(count, costs, analysis)
    return SimulatedDay(
        tuple(decisions), tuple(fills), report, refusals, fallbacks, children, tuple(costs)
    )


def _book(
    rng: random.Random, symbol: _Symbol, profiles: dict[str, VenueProfile], now: datetime
) -> QuoteBook:
    """Per-venue tops around the mid: liquid venues sit at the NBBO more often, with more size."""
    half_spread = rng.choice((1, 1, 1, 2, 3))  # in half-cents
    best_bid = (symbol.mid_ticks - half_spread) // 2  # cents
    best_ask = -((-(symbol.mid_ticks + half_spread)) // 2)
    if best_ask <= best_bid:
        best_ask = best_bid + 1
    book = QuoteBook()
    anchors = rng.sample(sorted(profiles), 2)
    for venue, profile in profiles.items():
        liquidity = profile.liquidity_score
        at_bid = venue == anchors[0] or rng.random() < 0.35 + 0.6 * liquidity
        at_ask = venue == anchors[1] or rng.random() < 0.35 + 0.6 * liquidity
        bid = best_bid - (0 if at_bid else rng.randint(1, 3))
        ask = best_ask + (0 if at_ask else rng.randint(1, 3))
        top = 1 + int(12 * liquidity)
        book.update(
            VenueQuote(
                venue,
                Decimal(bid) * PENNY,
                100 * rng.randint(1, top),
                Decimal(ask) * PENNY,
                100 * rng.randint(1, top),
                now - timedelta(microseconds=rng.randint(0, 200_000)),
            )
        )
    return book


def _order(rng: random.Random, n: int, symbol: _Symbol, book: QuoteBook) -> OrderRequest:
    side = Side.BUY if rng.random() < 0.5 else Side.SELL
    nbbo = book.nbbo
    assert nbbo.bid_price is not None and nbbo.ask_price is not None
    far = nbbo.ask_price if side is Side.BUY else nbbo.bid_price
    near = nbbo.bid_price if side is Side.BUY else nbbo.ask_price
    through = PENNY if side is Side.BUY else -PENNY
    roll = rng.random()
    if roll < 0.70:
        quantity, limit = 100 * rng.randint(1, 4), far + through * rng.randint(0, 1)
    elif roll < 0.85:
        quantity, limit = 100 * rng.randint(5, 15), far + through * rng.randint(0, 2)
    elif roll < 0.93:
        quantity, limit = 100 * rng.randint(20, 60), far + through * rng.randint(1, 3)
    elif roll < 0.95:
        quantity, limit = 100 * rng.randint(100, 200), far + through * 3
    elif roll < 0.98:
        # Resting limit one tick behind the near side.
        quantity, limit = 100 * rng.randint(1, 5), near - through
    else:
        return OrderRequest(
            f"o{n}", "SIM", symbol.name, side, OrderType.MARKET, 100 * rng.randint(1, 3)
        )
    return OrderRequest(f"o{n}", "SIM", symbol.name, side, OrderType.LIMIT, quantity, limit)


def _execute(
    decision: RoutedOrder,
    book: QuoteBook,
    *,
    rng: random.Random,
    profiles: dict[str, VenueProfile],
    fill_model: FillProbabilityModel,
    health: VenueHealth,
    settings: SimulationSettings,
    now: datetime,
    in_outage: bool,
) -> list[FillRecord]:
    is_buy = decision.side is Side.BUY
    market = settings.market
    out: list[FillRecord] = []
    nbb, nbo = decision.national_best_bid, decision.national_best_offer
    mid = (nbb + nbo) / 2 if nbb is not None and nbo is not None else (nbb or nbo)

    def emit(venue: str, quantity: int, price: Decimal, fee: Decimal, liquidity: Liquidity) -> None:
        out.append(FillRecord(decision.decision_id, venue, quantity, price, fee, liquidity))

    # Taking children with a price leave together: the first to print exposes the slower ones.
    priced = [
        c
        for c in decision.child_orders
        if c.role is ChildRole.TAKE and c.limit_price is not None and c.venue in profiles
    ]
    timing = dict(
        zip(
            (id(c) for c in priced),
            spray_timing(market, [profiles[c.venue] for c in priced]),
            strict=True,
        )
    )
    liquidity_mean = sum(p.liquidity_score for p in profiles.values()) / len(profiles)
    for child in decision.child_orders:
        profile = profiles[child.venue]
        fees = profile.fees
        quote = book.quote(child.venue)
        if in_outage and child.venue == settings.outage_venue:
            at = now + timedelta(microseconds=profile.effective_latency_us)
            health.record(VenueEvent(child.venue, VenueEventKind.REJECT, at))
            continue
        if child.role is ChildRole.TAKE and child.limit_price is not None:
            price = child.limit_price
            exposure, reactive = timing[id(child)]
            shown = 0
            if quote is not None and (quote.ask_price if is_buy else quote.bid_price) == price:
                shown = quote.ask_size if is_buy else quote.bid_size
            age_ms = (now - quote.time).total_seconds() * 1000.0 if quote is not None else None
            leg = Leg(child.quantity, shown, exposure, (market.tail_us(profile),), reactive, age_ms)
            at_mid, at_quote, missed, extra, flight = draw_leg(rng, market, profile, leg)
            latency = int(flight) + profile.access_delay_us
            at = now + timedelta(microseconds=latency)
            health.record(VenueEvent(child.venue, VenueEventKind.LATENCY, at, latency))
            fill_model.record(
                child.venue,
                decision.symbol,
                decision.size_tier,
                offered=child.quantity,
                filled=at_mid + at_quote,
                at=at,
            )
            if at_mid:  # at the arrival mid (a one-sided book has none: at the quote)
                mid_price = mid if mid is not None else price
                emit(child.venue, at_mid, mid_price, fees.take_fee(price), Liquidity.REMOVED)
            if at_quote:
                emit(child.venue, at_quote, price, fees.take_fee(price), Liquidity.REMOVED)
            if missed:
                tick = PENNY if price >= 1 else SUB_PENNY
                worse = price + tick * (1 + extra) if is_buy else price - tick * (1 + extra)
                emit(child.venue, missed, worse, fees.routed_fee_per_share, Liquidity.ROUTED)
            continue
        tail = market.tail_us(profile)
        latency = profile.effective_latency_us + (int(rng.expovariate(1.0 / tail)) if tail else 0)
        at = now + timedelta(microseconds=latency)
        health.record(VenueEvent(child.venue, VenueEventKind.LATENCY, at, latency))
        if child.role is ChildRole.TAKE:
            # A market remainder: the last displayed price, routed out one tick worse.
            far = nbo if is_buy else nbb
            assert far is not None
            tick = PENNY if far >= 1 else SUB_PENNY
            worse = far + tick if is_buy else far - tick
            emit(child.venue, child.quantity, worse, fees.routed_fee_per_share, Liquidity.ROUTED)
            continue
        # Posted: the queue ahead is the displayed size at the same price on this venue (longer
        # at an inverted venue); the opposing flow that reaches the venue is its share of the
        # taking flow (liquidity score against the venues' mean), doubling with every tick the
        # order rests above the national best bid (below the best offer for a sell) and halving
        # with every tick behind.
        resting = child.limit_price
        near = nbb if is_buy else nbo
        if resting is None or quote is None or near is None:
            continue
        same = quote.bid_price if is_buy else quote.ask_price
        shown = quote.bid_size if is_buy else quote.ask_size
        queue = shown if same == resting else 0
        if fees.take_fee_per_share < 0:
            queue = int(queue * market.inverted_queue_factor)
        ticks = int((resting - near) / PENNY) if is_buy else int((near - resting) / PENNY)
        share = profile.liquidity_score / liquidity_mean if liquidity_mean > 0 else 1.0
        mean_flow = settings.passive_flow * share * 2.0 ** max(-4, min(ticks, 6))
        flow = int(rng.expovariate(1.0 / mean_flow)) if mean_flow > 0 else 0
        filled = max(0, min(child.quantity, flow - queue)) // 100 * 100
        fill_model.record(
            child.venue,
            decision.symbol,
            decision.size_tier,
            offered=child.quantity,
            filled=filled,
            at=at,
        )
        if filled:
            emit(child.venue, filled, resting, -fees.make_rebate(resting), Liquidity.ADDED)
    return out


class RoutedOrder(Protocol):
    """What the simulated venues need of a routing decision (a ``RoutingDecision`` has it)."""

    @property
    def decision_id(self) -> str: ...
    @property
    def symbol(self) -> str: ...
    @property
    def side(self) -> Side: ...
    @property
    def size_tier(self) -> SizeTier: ...
    @property
    def national_best_bid(self) -> Decimal | None: ...
    @property
    def national_best_offer(self) -> Decimal | None: ...
    @property
    def child_orders(self) -> tuple[ChildOrder, ...]: ...


class SimulatedVenues:
    """The simulated venues on their own: they execute the child orders of decisions made
    elsewhere (a gateway's, for an OMS simulation such as ``execgw demo``), with the same fill
    model as ``simulate_day``. Deterministic for a given seed and sequence of calls."""

    def __init__(self, venues: VenueSet, settings: SimulationSettings | None = None) -> None:
        self.settings = settings or SimulationSettings()
        self._rng = random.Random(self.settings.seed)
        self._profiles = {p.venue: p for p in venues}
        self._fill_model = FillProbabilityModel(venues)
        self._health = VenueHealth(venues)

    def execute(self, decision: RoutedOrder, book: QuoteBook, now: datetime) -> list[FillRecord]:
        """The fills of ``decision``'s child orders against the venues' quotes in ``book``."""
        return _execute(
            decision,
            book,
            rng=self._rng,
            profiles=self._profiles,
            fill_model=self._fill_model,
            health=self._health,
            settings=self.settings,
            now=now,
            in_outage=False,
        )
