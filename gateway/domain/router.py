"""The routing decision: order + quote book + venues + health + settings + time -> decision.

Pure and synchronous; the caller passes the time (timezone-aware) and owns the state objects
(``QuoteBook`` from the market-state engine, ``VenueHealth`` and ``FillProbabilityModel`` fed from
order events). Bad input is refused with a typed error, never decided on.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple
from zoneinfo import ZoneInfo

from gateway.domain.access_fees import TickTable
from gateway.domain.fill_probability import FillProbabilityModel
from gateway.domain.orders import OrderRequest, OrderType, Side
from gateway.domain.quotes import QuoteBook, VenueQuote
from gateway.domain.scoring import (
    FACTORS,
    Multipliers,
    RoutingFactor,
    ScoringSettings,
    SizeTier,
    SymbolOverride,
)
from gateway.domain.splitting import (
    ChildOrder,
    ChildRole,
    DisplayedLevel,
    PostTarget,
    plan_sweep,
    post_child,
    post_price,
)
from gateway.domain.venue_health import VenueHealth
from gateway.domain.venues import VenueProfile, VenueSet, VenueStatus
from gateway.domain.vocabulary import Vocabulary
from gateway.errors import FailedPrecondition, InvalidArgument

EXCHANGE_TZ = ZoneInfo("America/New_York")
COST_QUANTUM = Decimal("0.000001")
ZERO = Decimal(0)


class RoutingRefused(FailedPrecondition):
    """The router will not decide on this input; ``reason`` says why."""

    reason = "ROUTING_REFUSED"
    NO_QUOTES = "NO_QUOTES"
    STALE_QUOTES = "STALE_QUOTES"
    CROSSED_BOOK = "CROSSED_BOOK"
    OFF_TICK = "OFF_TICK"
    NO_VENUE_AVAILABLE = "NO_VENUE_AVAILABLE"


@dataclass(frozen=True, slots=True)
class Reason:
    """A stable code and a message for people (proto ``Reason``)."""

    code: str
    message: str


@dataclass(frozen=True, slots=True)
class FactorScore:
    """One factor of one venue (proto ``FactorScore``)."""

    factor: RoutingFactor
    # In its unit: $/share from the best price, microseconds, $/share of fees, 0..1.
    raw_value: Decimal | int | float | None
    normalized: float
    weight: float
    contribution: float


RawFactors = tuple[Decimal | None, int, Decimal, float]


@dataclass(frozen=True, slots=True)
class VenueScore:
    """A venue's place in the ranking (proto ``VenueScore``).

    ``score`` is the sum of the factor contributions plus ``bonus`` (a symbol's preferred venue).
    The per-factor breakdown is built on demand by ``factors`` to keep the decision cheap.
    """

    venue: str
    rank: int
    score: float
    eligible: bool
    exclusions: tuple[Reason, ...]
    raw: RawFactors
    normalized: Multipliers
    weights: Multipliers
    bonus: float
    quote: VenueQuote | None

    @property
    def factors(self) -> tuple[FactorScore, ...]:
        return tuple(
            FactorScore(f, r, n, w, n * w)
            for f, r, n, w in zip(FACTORS, self.raw, self.normalized, self.weights, strict=True)
        )


# A venue's scored row, in rank order: venue, score, eligible, exclusions, raw factors, normalised
# factors, bonus, quote. Plain tuples keep the hot path free of per-venue object construction;
# ``RoutingDecision.ranked_venues`` turns them into ``VenueScore`` values.
ScoreRow = tuple[
    str, float, bool, tuple[Reason, ...], RawFactors, Multipliers, float, VenueQuote | None
]


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """An explainable routing decision with the market snapshot it used (proto
    ``RoutingDecision``; ``decision_latency_ns`` is measured by the caller)."""

    decision_id: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int
    decided_at: datetime
    size_tier: SizeTier
    scores: tuple[ScoreRow, ...]
    weights: Multipliers
    child_orders: tuple[ChildOrder, ...]
    expected_cost_per_share: Decimal
    arrival_mid: Decimal | None
    national_best_bid: Decimal | None
    national_best_offer: Decimal | None
    fallback_from: str
    fallback_reason: str
    notes: tuple[Reason, ...]
    snapshot: tuple[VenueQuote, ...]
    venue_set_version: int

    @property
    def venue(self) -> str:
        """The venue of the first child (the decision's primary venue)."""
        return self.child_orders[0].venue

    @property
    def ranked_venues(self) -> tuple[VenueScore, ...]:
        """Every venue, eligible ones first by score (built on each access: keep the result)."""
        weights = self.weights
        return tuple(
            VenueScore(
                venue, rank, score, eligible, exclusions, raw, normalized, weights, bonus, quote
            )
            for rank, (
                venue,
                score,
                eligible,
                exclusions,
                raw,
                normalized,
                bonus,
                quote,
            ) in enumerate(self.scores, start=1)
        )


class RemainderPrice(Vocabulary):
    """Where the posted remainder of a sweep rests."""

    LAST_SWEPT = "LAST_SWEPT"  # the last price the sweep took: cheaper, fills less
    LIMIT = "LIMIT"  # the order's limit (one tick off any untaken quote): fills more


@dataclass(frozen=True, slots=True)
class RouterSettings:
    """Router settings.

    Attributes:
        max_quote_age: the book's latest quote must be younger; a venue's older quote excludes it.
        ticks: Rule 612 ticks (dated, per symbol) for the off-tick refusal and posted prices.
        rest_remainder: where a sweep's remainder rests.
    """

    scoring: ScoringSettings = field(default_factory=ScoringSettings)
    max_quote_age: timedelta = timedelta(seconds=2)
    ticks: TickTable = field(default_factory=TickTable)
    rest_remainder: RemainderPrice = RemainderPrice.LAST_SWEPT


class DecisionIds:
    """Cheap unique decision ids: a per-process random prefix and a counter (no uuid4)."""

    __slots__ = ("_counter", "prefix")

    def __init__(self, prefix: str | None = None) -> None:
        self.prefix = prefix or secrets.token_hex(4)
        self._counter: Iterator[int] = itertools.count(1)

    def next(self) -> str:
        return f"{self.prefix}-{next(self._counter)}"


class _Row(NamedTuple):
    """Per-venue values precomputed once per venue-set version."""

    name: str
    profile: VenueProfile
    latency: int
    latency_f: float
    take_fee: Decimal
    take_fee_f: float
    make_rebate: Decimal
    make_rebate_f: float
    status_reason: Reason | None
    post_only: bool
    hidden: bool
    midpoint: bool
    iso: bool
    auctions: bool


_Scored = tuple[
    _Row, VenueQuote, list[Reason] | None, Decimal | None, float | None, Decimal, float, float
]
_NO_REASONS: tuple[Reason, ...] = ()
_INF = float("inf")
_NO_CODES: list[str] = []


def _reason(code: str, message: str) -> Reason:
    return Reason(code, message)


_TRADE_THROUGH = _reason(
    "TRADE_THROUGH", "displayed price worse than a better protected quote (Reg NMS Rule 611)"
)
_NO_QUOTE = _reason("NO_QUOTE", "no displayed quote on the side the order needs")
_STALE_QUOTE = _reason("STALE_QUOTE", "venue quote older than max_quote_age")
_HALT = _reason("OPERATIONAL_HALT", "operational halt (O1) declared by this venue for the symbol")
_EXCLUDED = _reason("SYMBOL_EXCLUDED", "excluded for this symbol by a routing override")
_NO_POST_ONLY = _reason("POST_ONLY_UNSUPPORTED", "venue does not accept post-only orders")
_NO_MIDPOINT = _reason("MIDPOINT_UNSUPPORTED", "venue does not accept midpoint-peg orders")
_NO_HIDDEN = _reason("HIDDEN_UNSUPPORTED", "venue does not accept hidden orders")
_WOULD_CROSS = _reason("WOULD_CROSS", "a post-only order at this limit would cross the venue")
_NOT_DIRECTED = _reason("NOT_DIRECTED", "the order names another venue")
_NOT_LISTING = _reason("NOT_LISTING_VENUE", "auction orders go to the listing exchange")
# Failure states: their quotes fall under the Rule 611 self-help exception.
_TRADE_THROUGH_ONLY = (_TRADE_THROUGH,)
_SELF_HELP_CODES = frozenset({"VENUE_DOWN", "VENUE_TRIPPED", "OPERATIONAL_HALT"})
_NO_OVERRIDE = SymbolOverride()


class Router:
    """Smart order router. Holds settings and the learned state it reads; ``decide`` is pure
    apart from reading that state and drawing a decision id."""

    __slots__ = (
        "_any_down",
        "_by_name",
        "_fill",
        "_health",
        "_ids",
        "_minute_cache",
        "_rows",
        "_rows_of",
        "settings",
    )

    def __init__(
        self,
        settings: RouterSettings,
        fill_probability: FillProbabilityModel,
        health: VenueHealth,
        ids: DecisionIds | None = None,
    ) -> None:
        self.settings = settings
        self._fill = fill_probability
        self._health = health
        self._ids = ids or DecisionIds()
        self._rows: tuple[_Row, ...] = ()
        self._by_name: dict[str, _Row] = {}
        self._any_down = False
        self._rows_of: VenueSet | None = None
        self._minute_cache: dict[int, tuple[date, int]] = {}

    @property
    def health(self) -> VenueHealth:
        """The breakers this router consults (feed it order events)."""
        return self._health

    @property
    def fill_probability(self) -> FillProbabilityModel:
        """The learned fill probabilities this router reads (feed it outcomes)."""
        return self._fill

    def _table(self, venues: VenueSet) -> tuple[_Row, ...]:
        if venues is self._rows_of:
            return self._rows
        rows = []
        for p in venues:
            status_reason = None
            if p.status is VenueStatus.DOWN:
                status_reason = _reason(
                    "VENUE_DOWN", p.status_reason or "taken down by an operator"
                )
            caps = p.capabilities
            # The latency factor is the time the order's quote is exposed: the typical latency.
            # An access delay (IEX's speed bump) holds every inbound message, competitors' orders
            # and the maker's cancels alike, so it does not expose the quote to a fade
            # (gateway/domain/market_model.py).
            rows.append(
                _Row(
                    p.venue,
                    p,
                    p.latency_typical_us,
                    float(p.latency_typical_us),
                    p.fees.take_fee_per_share,
                    float(p.fees.take_fee_per_share),
                    p.fees.make_rebate_per_share,
                    float(p.fees.make_rebate_per_share),
                    status_reason,
                    caps.post_only,
                    caps.hidden,
                    caps.midpoint_peg,
                    caps.intermarket_sweep,
                    caps.listing_auctions,
                )
            )
        self._rows, self._rows_of = tuple(rows), venues
        self._any_down = any(row.status_reason is not None for row in rows)
        self._by_name = {row.name: row for row in rows}
        return self._rows

    def _exchange_minute(self, now: datetime) -> tuple[date, int]:
        key = int(now.timestamp()) // 60
        hit = self._minute_cache.get(key)
        if hit is None:
            local = now.astimezone(EXCHANGE_TZ)
            if len(self._minute_cache) > 4096:
                self._minute_cache.clear()
            hit = self._minute_cache[key] = (local.date(), local.hour * 60 + local.minute)
        return hit

    def decide(
        self,
        order: OrderRequest,
        book: QuoteBook | None,
        venues: VenueSet,
        now: datetime,
        *,
        halted_venues: frozenset[str] = frozenset(),
        listing_venue: str | None = None,
        decision_id: str | None = None,
    ) -> RoutingDecision:
        """Rank the venues for ``order`` and plan its child orders.

        Args:
            order: the order; ``venue`` set means directed (only that venue is eligible).
            book: the symbol's quote book, None for a symbol without one.
            venues: the current venue-set version.
            now: decision time, timezone-aware.
            halted_venues: venues with an operational (O1) halt for this symbol.
            listing_venue: the symbol's listing exchange (required for auction orders).
            decision_id: the caller's id; drawn from the router's ``DecisionIds`` otherwise.

        Raises:
            InvalidArgument: zero or negative quantity or limit price.
            RoutingRefused: NO_QUOTES, STALE_QUOTES, CROSSED_BOOK, OFF_TICK, NO_VENUE_AVAILABLE.
        """
        if order.quantity <= 0:
            raise InvalidArgument.field(
                "order.quantity", "must be a whole number of shares > 0", reason="ZERO_QUANTITY"
            )
        symbol = order.symbol
        if book is None or len(book) == 0:
            raise RoutingRefused(f"no quotes for {symbol}", reason=RoutingRefused.NO_QUOTES)
        nbbo = book.nbbo
        nbb, nbo = nbbo.bid_price, nbbo.ask_price
        if (nbb is None and nbo is None) or nbbo.time is None:
            raise RoutingRefused(f"no quotes for {symbol}", reason=RoutingRefused.NO_QUOTES)
        cutoff = now - self.settings.max_quote_age
        if nbbo.time < cutoff:
            raise RoutingRefused(
                f"latest quote for {symbol} is from {nbbo.time.isoformat()}, older than "
                f"{self.settings.max_quote_age.total_seconds()}s",
                reason=RoutingRefused.STALE_QUOTES,
            )
        if nbb is not None and nbo is not None and nbb > nbo:
            raise RoutingRefused(
                f"crossed book for {symbol}: bid {nbb} > offer {nbo}",
                reason=RoutingRefused.CROSSED_BOOK,
            )
        trade_date, minute = self._exchange_minute(now)
        limit = order.limit_price
        ticks = self.settings.ticks
        if limit is not None:
            if limit <= 0:
                raise InvalidArgument.field(
                    "order.limit_price", "must be > 0", reason="INVALID_PRICE"
                )
            tick = ticks.tick(symbol, limit, trade_date)
            if limit % tick:
                raise RoutingRefused(
                    f"limit price {limit} is not a multiple of the {tick} tick (Reg NMS Rule 612)",
                    reason=RoutingRefused.OFF_TICK,
                )
        rows = self._table(venues)
        is_buy = order.side is Side.BUY
        order_type = order.order_type
        far = nbo if is_buy else nbb
        mid = (nbb + nbo) / 2 if nbb is not None and nbo is not None else (nbb or nbo)
        assert mid is not None
        scoring = self.settings.scoring
        reference = limit if limit is not None else (far if far is not None else mid)
        tier = scoring.size_thresholds.tier(order.quantity, reference)
        policy = scoring.tiers[tier]
        weights = scoring.weights_for(tier, minute)
        override = scoring.symbol_overrides.get(symbol, _NO_OVERRIDE)
        auction = order_type.is_auction_only
        midpoint = order_type is OrderType.MIDPOINT_PEG
        post_only = order.post_only
        marketable = (
            not auction
            and not midpoint
            and not post_only
            and far is not None
            and (limit is None or (limit >= far if is_buy else limit <= far))
        )
        if order_type is OrderType.MARKET and far is None:
            raise RoutingRefused(
                f"no {'offer' if is_buy else 'bid'} for {symbol}: nothing to take",
                reason=RoutingRefused.NO_QUOTES,
            )
        unavailable = self._health.unavailable(now)
        directed = order.venue
        excluded = override.excluded_venues
        # A hidden order needs a hidden-capable venue; a block remainder prefers one.
        hidden_needed = order.hidden or (policy.post_remainder_hidden and marketable)

        # Failure states (down, tripped, operational halt): their quotes fall under the Rule 611
        # self-help exception. The best protected far-side price is the NBBO itself unless a
        # failed venue is part of it.
        failures: dict[str, list[Reason]] = {}
        protected_best = far
        if self._any_down or unavailable or halted_venues:
            for row in rows:
                name = row.name
                failed: list[Reason] = []
                if row.status_reason is not None:
                    failed.append(row.status_reason)
                if name in unavailable:
                    failed.append(_reason("VENUE_TRIPPED", unavailable[name]))
                if name in halted_venues:
                    failed.append(_HALT)
                if failed:
                    failures[name] = failed
            if marketable and failures:
                protected_best = None
                for shown in book:
                    if shown.venue not in failures:
                        price = _far_price(shown, is_buy)
                        if price is not None:
                            protected_best = _better(is_buy, protected_best, price)

        # One pass: exclusions and raw factors of every venue; min/max over the eligible ones
        # only, so the weights mean what they say among the venues that compete.
        probabilities = self._fill.table(symbol, tier)
        scored: list[_Scored] = []
        unquoted: list[tuple[_Row, list[Reason]]] = []
        spreads: list[float] = []
        latencies: list[float] = []
        fees: list[float] = []
        misses: list[float] = []
        fee_price = reference if reference < 1 else None
        near = nbb if is_buy else nbo
        for row in rows:
            name = row.name
            quote = book.quote(name)
            reasons: list[Reason] | None = None
            if failures and name in failures:
                reasons = list(failures[name])
            if quote is None:
                reasons = reasons or []
                reasons.append(_NO_QUOTE)
                unquoted.append((row, reasons))
                continue
            if quote.time < cutoff:
                reasons = reasons or []
                reasons.append(_STALE_QUOTE)
            if name in excluded:
                reasons = reasons or []
                reasons.append(_EXCLUDED)
            if directed and name != directed:
                reasons = reasons or []
                reasons.append(_NOT_DIRECTED)
            spread: Decimal | None = None
            spread_f: float | None = None
            if marketable:
                price = quote.ask_price if is_buy else quote.bid_price
                if price is None or (quote.ask_size if is_buy else quote.bid_size) <= 0:
                    reasons = reasons or []
                    reasons.append(_NO_QUOTE)
                elif price == protected_best:
                    spread, spread_f = ZERO, 0.0
                elif protected_best is not None:
                    spread = price - protected_best if is_buy else protected_best - price
                    spread_f = float(spread)
                    if spread > 0:
                        reasons = reasons or []
                        reasons.append(_TRADE_THROUGH)
                if fee_price is None:
                    fee, fee_f = row.take_fee, row.take_fee_f
                else:
                    fee = row.profile.fees.take_fee(fee_price)
                    fee_f = float(fee)
            else:
                extra = self._passive_exclusion(
                    row,
                    quote=quote,
                    order=order,
                    limit=limit,
                    is_buy=is_buy,
                    cutoff=cutoff,
                    auction=auction,
                    midpoint=midpoint,
                    listing_venue=listing_venue,
                )
                if extra:
                    reasons = (reasons or []) + extra
                own = quote.bid_price if is_buy else quote.ask_price
                if near is not None and own is not None:
                    spread = near - own if is_buy else own - near
                    spread_f = float(spread)
                if fee_price is None:
                    fee, fee_f = -row.make_rebate, -row.make_rebate_f
                else:
                    fee = -row.profile.fees.make_rebate(fee_price)
                    fee_f = float(fee)
            probability = probabilities.get(name, 0.0)
            scored.append((row, quote, reasons, spread, spread_f, fee, fee_f, probability))
            if reasons is None:
                if spread_f is not None:
                    spreads.append(spread_f)
                latencies.append(row.latency_f)
                fees.append(fee_f)
                misses.append(-probability)
        lo0, hi0 = (min(spreads), max(spreads)) if spreads else (_INF, -_INF)
        lo1, hi1 = (min(latencies), max(latencies)) if latencies else (_INF, -_INF)
        if latencies:  # the span floor: a few microseconds apart is not the whole range
            hi1 = max(hi1, lo1 + self.settings.scoring.latency_scale_us)
        lo2, hi2 = (min(fees), max(fees)) if fees else (_INF, -_INF)
        lo3, hi3 = (min(misses), max(misses)) if misses else (_INF, -_INF)
        preferred = override.preferred_venues
        bonus_value = override.preferred_bonus
        w0, w1, w2, w3 = weights
        # Lower raw value is better: normalised = (hi - v) / (hi - lo), 1 when all are equal,
        # clamped to 0..1 for the ineligible venues scored against the eligible range.
        r0, r1, r2, r3 = hi0 - lo0, hi1 - lo1, hi2 - lo2, hi3 - lo3
        keyed: list[tuple[float, int, ScoreRow]] = []
        index = 0
        for row, quote, reasons, spread, spread_f, fee, fee_f, probability in scored:
            index += 1  # noqa: SIM113 - the tuple unpacking is the hot path; no enumerate wrapper
            if reasons is not None:
                n0 = 0.0 if spread_f is None else _norm(spread_f, hi0, r0)
                n1 = _norm(row.latency_f, hi1, r1)
                n2 = _norm(fee_f, hi2, r2)
                n3 = _norm(-probability, hi3, r3)
            else:  # inside the eligible range by construction: no clamping
                n0 = 0.0 if spread_f is None else ((hi0 - spread_f) / r0 if r0 > 0 else 1.0)
                n1 = (hi1 - row.latency_f) / r1 if r1 > 0 else 1.0
                n2 = (hi2 - fee_f) / r2 if r2 > 0 else 1.0
                n3 = (hi3 + probability) / r3 if r3 > 0 else 1.0
            bonus = bonus_value if row.name in preferred else 0.0
            score = n0 * w0 + n1 * w1 + n2 * w2 + n3 * w3 + bonus
            keyed.append(
                (
                    -score if reasons is None else 10.0 - score,
                    index,
                    (
                        row.name,
                        score,
                        reasons is None,
                        _NO_REASONS if reasons is None else tuple(reasons),
                        (spread, row.latency, fee, probability),
                        (n0, n1, n2, n3),
                        bonus,
                        quote,
                    ),
                )
            )
        keyed.sort()
        ranked: list[ScoreRow] = [item[2] for item in keyed]
        # Venues without any quote are listed last, unscored, with their reasons.
        for row, reasons in unquoted:
            ranked.append(
                (
                    row.name,
                    0.0,
                    False,
                    tuple(reasons),
                    (None, row.latency, row.take_fee, 0.0),
                    (0.0, 0.0, 0.0, 0.0),
                    0.0,
                    None,
                )
            )

        children = self._children(
            order,
            ranked,
            is_buy=is_buy,
            marketable=marketable,
            limit=limit,
            mid=mid,
            split=policy.split,
            hidden_needed=hidden_needed,
            bound_start=protected_best if marketable and protected_best != far else None,
            trade_date=trade_date,
            foreign=marketable and len(book) > len(rows) - len(unquoted),
            book=book,
        )
        if not children:
            raise RoutingRefused(
                f"no venue available for {symbol}: "
                + "; ".join(f"{r[0]} {','.join(x.code for x in r[3])}" for r in ranked),
                reason=RoutingRefused.NO_VENUE_AVAILABLE,
            )
        if len(children) == 1:
            expected = children[0].expected_cost_per_share
        else:
            total_cost = ZERO
            for child in children:
                total_cost += child.expected_cost_per_share * child.quantity
            expected = (total_cost / order.quantity).quantize(COST_QUANTUM, ROUND_HALF_UP)
        fallback_from, fallback_reason = ("", "")
        if failures:
            scale = self.settings.scoring.latency_scale_us
            fallback_from, fallback_reason = _fallback(ranked, weights, scale)
        notes: tuple[Reason, ...] = ()
        if fallback_from:
            notes = (_reason("FALLBACK", f"{fallback_from} unavailable: {fallback_reason}"),)
        return RoutingDecision(
            decision_id or self._ids.next(),
            symbol,
            order.side,
            order_type,
            order.quantity,
            now,
            tier,
            tuple(ranked),
            weights,
            tuple(children),
            expected,
            mid if nbb is not None and nbo is not None else None,
            nbb,
            nbo,
            fallback_from,
            fallback_reason,
            notes,
            tuple(book),
            venues.version,
        )

    @staticmethod
    def _passive_exclusion(
        row: _Row,
        *,
        quote: VenueQuote | None,
        order: OrderRequest,
        limit: Decimal | None,
        is_buy: bool,
        cutoff: datetime,
        auction: bool,
        midpoint: bool,
        listing_venue: str | None,
    ) -> list[Reason]:
        """Order-type rules for an order that rests (auction, peg, post-only, hidden)."""
        reasons: list[Reason] = []
        if auction:
            if row.name != listing_venue or not row.auctions:
                reasons.append(_NOT_LISTING)
            return reasons
        if midpoint:
            if not row.midpoint:
                reasons.append(_NO_MIDPOINT)
        elif order.post_only:
            if not row.post_only:
                reasons.append(_NO_POST_ONLY)
            elif quote is not None and limit is not None and quote.time >= cutoff:
                opposite = quote.ask_price if is_buy else quote.bid_price
                if opposite is not None and (limit >= opposite if is_buy else limit <= opposite):
                    reasons.append(_WOULD_CROSS)
        if order.hidden and not row.hidden:
            reasons.append(_NO_HIDDEN)
        return reasons

    def _children(
        self,
        order: OrderRequest,
        ranked: list[ScoreRow],
        *,
        is_buy: bool,
        marketable: bool,
        limit: Decimal | None,
        mid: Decimal,
        split: bool,
        hidden_needed: bool,
        bound_start: Decimal | None,
        trade_date: date,
        foreign: bool,
        book: QuoteBook,
    ) -> list[ChildOrder]:
        by_name = self._by_name
        order_type = order.order_type
        if not marketable:
            for venue, _score, eligible, exclusions, _raw, _n, _bonus, quote in ranked:
                if eligible or (quote is None and _only_no_quote(exclusions)):
                    fees = by_name[venue].profile.fees
                    rebate = (
                        -fees.auction_fee_per_share
                        if order_type.is_auction_only
                        else fees.make_rebate(limit if limit is not None else mid)
                    )
                    target = PostTarget(venue, rebate, order_type)
                    return [
                        post_child(
                            target, is_buy=is_buy, quantity=order.quantity, price=limit, mid=mid
                        )
                    ]
            return []
        # Fast path, same result as the sweep: the best-ranked eligible venue shows the whole
        # quantity at the best protected price (eligible venues are all at that price).
        first = ranked[0] if ranked else None
        if first is not None and first[2] and first[7] is not None:
            quote = first[7]
            price = quote.ask_price if is_buy else quote.bid_price
            shown = quote.ask_size if is_buy else quote.bid_size
            if (
                price is not None
                and shown >= order.quantity
                and (limit is None or (price <= limit if is_buy else price >= limit))
            ):
                row = by_name[first[0]]
                fee = row.take_fee if price >= 1 else row.profile.fees.take_fee(price)
                cost = (price - mid if is_buy else mid - price) + fee
                return [
                    ChildOrder(
                        first[0],
                        order.quantity,
                        price,
                        OrderType.LIMIT,
                        False,
                        ChildRole.TAKE,
                        cost,
                    )
                ]
        # Marketable: sweep the accessible displayed quotes, never past a protected quote we may
        # not access (bound): excluded for the symbol, stale, or a venue outside the venue set.
        levels: list[DisplayedLevel] = []
        bound: Decimal | None = None
        post_target: str | None = None  # best-ranked open venue that can hide the remainder
        first_open: str | None = None  # best-ranked open venue
        for rank, (venue, _score, _eligible, exclusions, _raw, _n, _bonus, quote) in enumerate(
            ranked, start=1
        ):
            codes = (
                _NO_CODES
                if not exclusions or exclusions == _TRADE_THROUGH_ONLY
                else [r.code for r in exclusions if r.code != "TRADE_THROUGH"]
            )
            if quote is not None:
                price = _far_price(quote, is_buy)
                if price is not None:
                    if not codes:
                        row = by_name[venue]
                        size = quote.ask_size if is_buy else quote.bid_size
                        fee = row.take_fee if price >= 1 else row.profile.fees.take_fee(price)
                        levels.append((price, rank, venue, size, fee, row.iso))
                    elif not any(c in _SELF_HELP_CODES for c in codes):
                        bound = _better(is_buy, bound, price)
            if not codes:
                if first_open is None:
                    first_open = venue
                if post_target is None and by_name[venue].hidden:
                    post_target = venue
        if foreign:
            for quote in book:
                if quote.venue not in by_name:
                    price = _far_price(quote, is_buy)
                    if price is not None:
                        bound = _better(is_buy, bound, price)
        plan = plan_sweep(
            is_buy=is_buy,
            quantity=order.quantity,
            limit=limit,
            levels=levels,
            bound=bound,
            mid=mid,
            split=split,
        )
        children = plan.takes
        if not hidden_needed:
            post_target = first_open
        elif post_target is None and not order.hidden:
            post_target = first_open  # the tier prefers hidden; the order does not require it
        if plan.remaining:
            if post_target is None:
                return []
            row = by_name[post_target]
            if limit is None:
                children.append(
                    ChildOrder(
                        post_target,
                        plan.remaining,
                        None,
                        OrderType.MARKET,
                        False,
                        ChildRole.TAKE,
                        _market_cost(is_buy, children, mid, row),
                    )
                )
            else:
                # By default rest at the last price swept (the sweep took everything shown up to
                # it) rather than further through the market at the order's limit.
                last = children[-1].limit_price if children else None
                rest_at = (
                    limit
                    if last is None or self.settings.rest_remainder is RemainderPrice.LIMIT
                    else last
                )
                tick = self.settings.ticks.tick(order.symbol, rest_at, trade_date)
                price = post_price(
                    is_buy=is_buy, limit=rest_at, untaken_best=plan.untaken_best, tick=tick
                )
                target = PostTarget(post_target, row.profile.fees.make_rebate(price))
                children.append(
                    post_child(target, is_buy=is_buy, quantity=plan.remaining, price=price, mid=mid)
                )
        return children


def _far_price(quote: VenueQuote, is_buy: bool) -> Decimal | None:
    """The displayed price a marketable order would take at this venue, if any size is shown."""
    if is_buy:
        return quote.ask_price if quote.ask_size > 0 else None
    return quote.bid_price if quote.bid_size > 0 else None


def _better(is_buy: bool, current: Decimal | None, price: Decimal) -> Decimal:
    if current is None:
        return price
    if is_buy:
        return price if price < current else current
    return price if price > current else current


def _only_no_quote(reasons: tuple[Reason, ...]) -> bool:
    return all(r.code == "NO_QUOTE" for r in reasons)


def _market_cost(is_buy: bool, takes: list[ChildOrder], mid: Decimal, row: _Row) -> Decimal:
    last = takes[-1].limit_price if takes else None
    if last is None:
        return row.take_fee
    return (last - mid if is_buy else mid - last) + row.take_fee


def _norm(value: float, hi: float, span: float) -> float:
    """Lower is better: 1 at the best candidate, 0 at the worst, clamped for the ineligible."""
    if span > 0:
        n = (hi - value) / span
        return 0.0 if n < 0 else (1.0 if n > 1 else n)
    if span == 0:  # every candidate equal: all best
        return 1.0 if value <= hi else 0.0
    return 0.0  # no eligible candidate


def _fallback(
    ranked: list[ScoreRow], weights: Multipliers, latency_scale: float
) -> tuple[str, str]:
    """Name the venue that would have been chosen but for a failure state, and why.

    Rescored over the eligible venues plus those excluded only by a failure (down, tripped,
    operational halt), normalised the same way; runs only when some venue is in a failure state.
    """
    candidates = [
        row
        for row in ranked
        if row[7] is not None
        and row[4][0] is not None
        and (row[2] or all(r.code in _SELF_HELP_CODES for r in row[3]))
    ]
    if not candidates:
        return "", ""
    columns = [
        [float(row[4][0]) for row in candidates],  # type: ignore[arg-type]
        [float(row[4][1]) for row in candidates],
        [float(row[4][2]) for row in candidates],
        [-row[4][3] for row in candidates],
    ]
    floors = (0.0, latency_scale, 0.0, 0.0)
    best: ScoreRow | None = None
    best_score = -_INF
    for index, row in enumerate(candidates):
        score = row[6]
        for column, weight, floor in zip(columns, weights, floors, strict=True):
            lo = min(column)
            hi = max(*column, lo + floor)
            score += weight * ((hi - column[index]) / (hi - lo) if hi > lo else 1.0)
        if score > best_score:
            best, best_score = row, score
    if best is None or best[2]:
        return "", ""
    failure = next(r for r in best[3] if r.code in _SELF_HELP_CODES)
    return best[0], f"{failure.code}: {failure.message}"
