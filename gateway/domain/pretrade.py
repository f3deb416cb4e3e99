"""The pre-trade decision: may this order go out now, and which restrictions are in force?

Every applicable reason is reported, not only the first. Reason codes are stable:

    NO_REFERENCE_DATA, REFERENCE_DATA_STALE, MARKET_CLOSED, SESSION_CLOSED,
    MARKET_WIDE_HALT, SYMBOL_HALTED, SYMBOL_PAUSED, PAUSE_INFERRED, QUOTATION_ONLY,
    REOPENING_ORDER_NOT_ON_LISTING_EXCHANGE, REOPENING_ORDER_NOT_RESTING,
    LIMIT_PRICE_ABOVE_UPPER_BAND, LIMIT_PRICE_BELOW_LOWER_BAND, LIMIT_STATE_MARKET_ORDER,
    LIMIT_PRICE_OFF_TICK, AUCTION_* (from ``auctions``), AUCTION_NOT_ON_LISTING_EXCHANGE,
    SHORT_SALE_* (from ``short_sale``), VENUE_OPERATIONAL_HALT

Decisions:
- Continuous orders (market, limit, midpoint peg) are taken in regular hours only
  (``SESSION_CLOSED`` before the open and after the close; during the closing cross also
  ``AUCTION_CROSS_IN_PROGRESS``); pre-open interest must be an auction-only type.
- Band and limit-state checks apply in continuous trading only: during a halt or pause the order is
  refused anyway, and an order for a reopening auction is not bound by the bands before it (the
  reopening price sets new ones, LULD Plan V).

Restrictions (what the symbol accepts right now), derived from the rules:
- NO_NEW_ORDERS: closed, halted, paused (declared or inferred), market-wide halt, during a cross;
- AUCTION_ONLY: before the open, and in a quotation-only period (orders for the reopening auction on
  the listing exchange);
- LIMIT_ONLY: a limit state (market orders cannot execute at the band), and an auction window whose
  market-order cut-off has passed while limit orders are still taken (Nasdaq LOO 09:28-09:29:30);
- NO_CANCEL: an auction cancel cut-off window, or a cross in progress;
- MARKET_ONLY: no rule in force requires it today; the code stays in the vocabulary for
  venue-specific rules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gateway.domain import auctions
from gateway.domain.calendar import Session
from gateway.domain.circuit_breakers import Level
from gateway.domain.luld import Bands, LimitState
from gateway.domain.market_state import MarketStateEngine, Phase, SymbolState
from gateway.domain.orders import OrderRequest, OrderType, Reason, Side, TimeInForce
from gateway.domain.prices import default_tick, is_on_tick
from gateway.domain.short_sale import SHORT_SALE_PRICE_TEST, check_short_sale
from gateway.domain.vocabulary import Vocabulary
from gateway.domain.working_orders import WorkingOrder


class Restriction(Vocabulary):
    MARKET_ONLY = "MARKET_ONLY"
    LIMIT_ONLY = "LIMIT_ONLY"
    AUCTION_ONLY = "AUCTION_ONLY"
    NO_CANCEL = "NO_CANCEL"
    NO_NEW_ORDERS = "NO_NEW_ORDERS"


class OutsideBandPolicy(Vocabulary):
    # A buy limit above the upper band (sell below the lower) cannot execute now: refuse it.
    REFUSE = "REFUSE"
    # Let it out to rest at the venue; it executes only once the bands move.
    ACCEPT_RESTING = "ACCEPT_RESTING"


@dataclass(frozen=True, slots=True)
class PretradeSettings:
    outside_band_policy: OutsideBandPolicy = OutsideBandPolicy.REFUSE


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to ``CheckOrder`` (and the check step of ``SubmitOrder``)."""

    allowed: bool
    reasons: tuple[Reason, ...]
    restrictions: tuple[Restriction, ...]
    phase: Phase | None
    bands: Bands | None
    short_sale_restricted: bool
    decided_at: datetime


_LIMIT = "order.limit_price"


def restrictions(
    engine: MarketStateEngine,
    state: SymbolState,
    now: datetime,
    phase: Phase | None = None,
    window: auctions.Window | None = None,
) -> list[Restriction]:
    """The restrictions in force for ``state`` at ``now`` (``phase`` and ``window``, the listing
    exchange's scheduled answers at ``now``: when already known)."""
    if phase is None:
        phase = engine.phase(state, now)
    found: list[Restriction] = []
    if phase in (Phase.CLOSED, Phase.HALTED, Phase.PAUSED):
        found.append(Restriction.NO_NEW_ORDERS)
    elif phase in (Phase.PRE_OPEN, Phase.OPENING_AUCTION, Phase.QUOTATION_ONLY):
        found.append(Restriction.AUCTION_ONLY)
    if window is None:
        session = engine.session(now)
        if session is None or state.reference is None:
            return found
        window = auctions.window_at(
            state.reference.listing_exchange, now, session, engine.settings.auctions
        )
    entry = window.entry
    if entry[OrderType.LIMIT] == auctions.AUCTION_CROSS_IN_PROGRESS:
        found.extend(
            r for r in (Restriction.NO_NEW_ORDERS, Restriction.NO_CANCEL) if r not in found
        )
        return found
    if state.limit.state in (LimitState.LIMIT_UP, LimitState.LIMIT_DOWN) and not found:
        found.append(Restriction.LIMIT_ONLY)
    if phase in (Phase.PRE_OPEN, Phase.OPENING_AUCTION):
        moo = entry[OrderType.MARKET_ON_OPEN]
        loo = entry[OrderType.LIMIT_ON_OPEN]
        if moo is not None and loo is None:
            found.append(Restriction.LIMIT_ONLY)
    if window.no_cancel:
        found.append(Restriction.NO_CANCEL)
    return found


def check_order(
    engine: MarketStateEngine,
    order: OrderRequest,
    now: datetime,
    settings: PretradeSettings | None = None,
) -> Decision:
    """Run every halt-safety check for ``order`` at ``now``; the decision lists every reason."""
    settings = settings or PretradeSettings()
    state = engine.get(order.symbol)
    session = engine.session(now)
    if state is None or state.reference is None:
        reason = Reason(
            "NO_REFERENCE_DATA",
            f"{order.symbol} has no reference data (tier, listing exchange, prior close) today; "
            "orders are refused until the feed publishes it",
            "order.symbol",
        )
        reasons = [reason, *_market_reasons(engine, now, session)]
        return Decision(False, tuple(reasons), (Restriction.NO_NEW_ORDERS,), None, None, False, now)
    reference = state.reference
    reasons = _market_reasons(engine, now, session)
    if session is not None and reference.trade_date != session.trade_date:
        reasons.append(
            Reason(
                "REFERENCE_DATA_STALE",
                f"{order.symbol} reference data is for {reference.trade_date}, "
                f"not today ({session.trade_date})",
                "order.symbol",
            )
        )
    phase = engine.phase(state, now)
    if session is None:
        found = restrictions(engine, state, now, phase)
        restricted = False
    else:
        window = auctions.window_at(
            reference.listing_exchange, now, session, engine.settings.auctions
        )
        found = restrictions(engine, state, now, phase, window)
        restricted = state.ssr.is_restricted(session.trade_date)
        if state.halt is not None:
            reasons.extend(_halt_reasons(state, order))
        reasons.extend(_entry_reasons(state, order, now, session, window))
        continuous = not order.order_type.is_auction_only
        if continuous and state.halt is None and phase is not Phase.CLOSED:
            # An auction's price is not bound by the bands before it.
            reasons.extend(_price_reasons(state, order, settings))
    if order.venue:
        reasons.extend(_venue_reasons(state, order))
    if order.limit_price is not None:
        reasons.extend(_tick_reasons(state, order))
    if restricted:
        nbbo = state.book.nbbo
        for code in check_short_sale(
            order.side,
            order.order_type,
            order.limit_price,
            nbbo.bid_price,
            True,
            engine.settings.short_sale,
            national_best_offer=nbbo.ask_price,
        ):
            field = _LIMIT if code == SHORT_SALE_PRICE_TEST and order.limit_price else "order.side"
            reasons.append(Reason(code, _short_sale_message(code, order, nbbo.bid_price), field))
    return Decision(
        not reasons,
        tuple(_unique(reasons)) if reasons else (),
        tuple(found),
        phase,
        state.bands,
        restricted,
        now,
    )


def _unique(reasons: list[Reason]) -> list[Reason]:
    seen: set[str] = set()
    kept = []
    for reason in reasons:
        if reason.code not in seen:
            seen.add(reason.code)
            kept.append(reason)
    return kept


def _market_reasons(
    engine: MarketStateEngine, now: datetime, session: Session | None
) -> list[Reason]:
    """Reasons that hold for every symbol: no session today, a market-wide halt."""
    if session is None:
        day = engine.calendar.trade_date_of(now)
        return [Reason("MARKET_CLOSED", f"{day} is not a trading day")]
    breaker = engine.breaker
    if not engine.market_halted(now) or breaker is None:
        return []
    if breaker.halted_for_day:
        what = f"{_level_name(breaker.level)}: halted for the rest of the day"
    elif breaker.carried_over:
        what = "Level 3 carried over from the previous day: halted until trading resumes"
    else:
        until = breaker.halted_until.isoformat() if breaker.halted_until else "?"
        what = f"{_level_name(breaker.level)}: halted until {until}"
    return [Reason("MARKET_WIDE_HALT", f"market-wide circuit breaker {what}")]


def _level_name(level: Level) -> str:
    return level.name.replace("_", " ").title()


def _halt_reasons(state: SymbolState, order: OrderRequest) -> list[Reason]:
    """The symbol's own halt or pause (declared or inferred), or its quotation-only period."""
    symbol = order.symbol
    halt = state.halt
    if halt is None:
        return []
    if halt.quotation_only:
        return _reopening_reasons(state, order)
    if halt.inferred:
        return [
            Reason(
                "PAUSE_INFERRED",
                f"{symbol} has been in a limit state for 15 s or more: treated as paused "
                "until the pause or resumption message arrives",
            )
        ]
    return [
        Reason(
            "SYMBOL_PAUSED" if halt.is_pause else "SYMBOL_HALTED",
            f"{symbol} is {'paused' if halt.is_pause else 'halted'} "
            f"({halt.reason_code}, {halt.halt_class.value.lower()}) since "
            f"{halt.since.isoformat()}",
        )
    ]


def _entry_reasons(
    state: SymbolState,
    order: OrderRequest,
    now: datetime,
    session: Session,
    window: auctions.Window,
) -> list[Reason]:
    """The order-entry windows: regular hours for continuous orders, auction windows otherwise."""
    assert state.reference is not None
    listing = state.reference.listing_exchange
    refusal = window.entry[order.order_type]
    reasons = []
    if not order.order_type.is_auction_only:
        # Decision (auctions): the gateway handles regular hours only.
        if not session.open_at <= now < session.close_at:
            when = "have not started" if now < session.open_at else "are over"
            reasons.append(
                Reason(
                    auctions.SESSION_CLOSED,
                    f"{order.symbol}: regular trading hours {when}; before the open only "
                    "auction-only orders (MOO, LOO) are taken",
                    "order.order_type",
                )
            )
        if refusal == auctions.AUCTION_CROSS_IN_PROGRESS:
            reasons.append(Reason(refusal, _auction_message(refusal, order, listing)))
        return reasons
    if refusal is not None:
        reasons.append(Reason(refusal, _auction_message(refusal, order, listing)))
    if order.venue and order.venue != listing:
        reasons.append(
            Reason(
                "AUCTION_NOT_ON_LISTING_EXCHANGE",
                f"{order.order_type.value} orders for {order.symbol} go to its listing "
                f"exchange {listing}, not {order.venue}",
                "order.venue",
            )
        )
    return reasons


def _reopening_reasons(state: SymbolState, order: OrderRequest) -> list[Reason]:
    # Quotation-only period: orders may be entered for the listing exchange's reopening auction.
    assert state.reference is not None
    listing = state.reference.listing_exchange
    reasons = []
    if order.venue and order.venue != listing:
        reasons.append(
            Reason(
                "REOPENING_ORDER_NOT_ON_LISTING_EXCHANGE",
                f"{order.symbol} is in a quotation-only period: only orders for the reopening "
                f"auction on {listing} are accepted",
                "order.venue",
            )
        )
    if order.time_in_force in (TimeInForce.IOC, TimeInForce.FOK):
        reasons.append(
            Reason(
                "REOPENING_ORDER_NOT_RESTING",
                f"{order.symbol} is in a quotation-only period: an {order.time_in_force.value} "
                "order cannot wait for the reopening auction",
                "order.time_in_force",
            )
        )
    return reasons


def _price_reasons(
    state: SymbolState, order: OrderRequest, settings: PretradeSettings
) -> list[Reason]:
    bands = state.bands
    if bands is None:
        return []
    reasons = []
    limit = order.limit_price
    refuse = settings.outside_band_policy is OutsideBandPolicy.REFUSE
    if limit is not None and refuse:
        if order.side is Side.BUY and limit > bands.upper:
            reasons.append(
                Reason(
                    "LIMIT_PRICE_ABOVE_UPPER_BAND",
                    f"buy limit {limit} is above the upper LULD band {bands.upper}",
                    _LIMIT,
                )
            )
        elif order.side.is_sell and limit < bands.lower:
            reasons.append(
                Reason(
                    "LIMIT_PRICE_BELOW_LOWER_BAND",
                    f"sell limit {limit} is below the lower LULD band {bands.lower}",
                    _LIMIT,
                )
            )
    pushing = (state.limit.state is LimitState.LIMIT_UP and order.side is Side.BUY) or (
        state.limit.state is LimitState.LIMIT_DOWN and order.side.is_sell
    )
    if pushing and order.order_type is OrderType.MARKET:
        reasons.append(
            Reason(
                "LIMIT_STATE_MARKET_ORDER",
                f"{order.symbol} is {state.limit.state.value.replace('_', ' ').lower()}: a market "
                "order on this side cannot execute at the band; send a limit order",
                "order.order_type",
            )
        )
    return reasons


def _venue_reasons(state: SymbolState, order: OrderRequest) -> list[Reason]:
    halt = state.operational.get(order.venue) if order.venue else None
    if halt is None:
        return []
    return [
        Reason(
            "VENUE_OPERATIONAL_HALT",
            f"{order.venue} has an operational halt ({halt.reason_code}) in {order.symbol} since "
            f"{halt.since.isoformat()}; other venues are trading",
            "order.venue",
        )
    ]


def _tick_reasons(state: SymbolState, order: OrderRequest) -> list[Reason]:
    limit = order.limit_price
    if limit is None:
        return []
    tick = (state.reference.tick_size if state.reference else None) or default_tick(limit)
    if is_on_tick(limit, tick):
        return []
    return [
        Reason(
            "LIMIT_PRICE_OFF_TICK", f"limit {limit} is not a multiple of the tick {tick}", _LIMIT
        )
    ]


def _auction_message(code: str, order: OrderRequest, listing: str) -> str:
    what = code.replace("_", " ").lower()
    return f"{order.order_type.value} for {order.symbol} on {listing}: {what}"


def _short_sale_message(code: str, order: OrderRequest, nbb: object) -> str:
    if code == "SHORT_SALE_MARKET_ORDER":
        return (
            f"{order.symbol} is under the Reg SHO 201 restriction: short sale market orders "
            "are refused"
        )
    if code == "SHORT_SALE_NO_NBB":
        return f"{order.symbol} is under the Reg SHO 201 restriction and has no national best bid"
    return (
        f"{order.symbol} is under the Reg SHO 201 restriction: a short sale must be priced above "
        f"the national best bid {nbb}"
    )


def check_cancel(engine: MarketStateEngine, working: WorkingOrder, now: datetime) -> list[Reason]:
    """Why ``working`` may not be cancelled now (empty when it may)."""
    if not working.state.is_open:
        return [
            Reason(
                "ORDER_NOT_OPEN",
                f"order {working.order.client_order_id} is {working.state.value.lower()}",
                "client_order_id",
            )
        ]
    state = engine.get(working.order.symbol)
    session = engine.session(now)
    if state is None or state.reference is None or session is None:
        return []
    refusal = auctions.cancel_refusal(
        working.order.order_type,
        state.reference.listing_exchange,
        now,
        session,
        engine.settings.auctions,
    )
    if refusal is None:
        return []
    return [
        Reason(
            refusal,
            f"{working.order.order_type.value} orders on {state.reference.listing_exchange} cannot "
            f"be cancelled now ({refusal.replace('_', ' ').lower()})",
        )
    ]
