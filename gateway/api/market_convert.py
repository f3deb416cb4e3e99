"""Proto <-> domain conversion for market data, market state and pre-trade answers.

The companion of ``convert`` (orders, scalars) for the halt-safety services: published events are
validated here into domain events, and engine state is rendered here into messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from gateway._pb.execgw.v1 import common_pb2 as common
from gateway._pb.execgw.v1 import market_state_pb2 as pb
from gateway._pb.execgw.v1 import pretrade_pb2 as pretrade_pb
from gateway.api import convert
from gateway.api.convert import FieldViolation, Problems
from gateway.domain.calendar import EXCHANGE_TZ
from gateway.domain.circuit_breakers import Level
from gateway.domain.feed import (
    BandNotice,
    FeedEvent,
    HaltNotice,
    IndexUpdate,
    QuoteUpdate,
    ReferenceData,
    ResumeNotice,
    ResumptionPhase,
    TradeReport,
    TradeType,
)
from gateway.domain.halt_codes import HaltClass
from gateway.domain.luld import Bands, BandSource, LimitState, Tier
from gateway.domain.market_state import ChangeKind, MarketStateEngine, Phase, SymbolState
from gateway.domain.orders import Reason
from gateway.domain.pretrade import Decision, Restriction, restrictions
from gateway.domain.working_orders import OrderEventType, OrderState, WorkingOrder

TIERS: Mapping[int, Tier] = {common.TIER_1: Tier.TIER_1, common.TIER_2: Tier.TIER_2}
TRADE_TYPES: Mapping[int, TradeType] = {
    pb.TRADE_TYPE_REGULAR: TradeType.REGULAR,
    pb.TRADE_TYPE_OPENING: TradeType.OPENING,
    pb.TRADE_TYPE_REOPENING: TradeType.REOPENING,
    pb.TRADE_TYPE_CLOSING: TradeType.CLOSING,
}
RESUMPTION_PHASES: Mapping[int, ResumptionPhase] = {
    pb.RESUMPTION_PHASE_QUOTES: ResumptionPhase.QUOTES,
    pb.RESUMPTION_PHASE_TRADING: ResumptionPhase.TRADING,
}
PHASES: Mapping[Phase, pb.TradingPhase.ValueType] = {
    p: pb.TradingPhase.Value(f"TRADING_PHASE_{p.value}") for p in Phase
}
HALT_CLASSES: Mapping[HaltClass, pb.HaltClass.ValueType] = {
    c: pb.HaltClass.Value(f"HALT_CLASS_{c.value}")
    for c in HaltClass
    if f"HALT_CLASS_{c.value}" in pb.HaltClass.keys()  # noqa: SIM118  # enum wrapper, not a dict
}
LIMIT_STATES: Mapping[LimitState, pb.LimitState.ValueType] = {
    s: pb.LimitState.Value(f"LIMIT_STATE_{s.value}") for s in LimitState
}
BAND_SOURCES: Mapping[BandSource, pb.BandSource.ValueType] = {
    s: pb.BandSource.Value(f"BAND_SOURCE_{s.value}") for s in BandSource
}
LEVELS: Mapping[Level, pb.CircuitBreakerLevel.ValueType] = {
    Level.NONE: pb.CIRCUIT_BREAKER_LEVEL_NONE,
    Level.LEVEL_1: pb.CIRCUIT_BREAKER_LEVEL_1,
    Level.LEVEL_2: pb.CIRCUIT_BREAKER_LEVEL_2,
    Level.LEVEL_3: pb.CIRCUIT_BREAKER_LEVEL_3,
}
CHANGES: Mapping[ChangeKind, pb.StateChange.ValueType] = {
    k: pb.StateChange.Value(f"STATE_CHANGE_{k.value}") for k in ChangeKind
}
RESTRICTIONS: Mapping[Restriction, common.Restriction.ValueType] = {
    r: common.Restriction.Value(f"RESTRICTION_{r.value}") for r in Restriction
}
ORDER_STATES: Mapping[OrderState, pretrade_pb.OrderState.ValueType] = {
    s: pretrade_pb.OrderState.Value(f"ORDER_STATE_{s.value}") for s in OrderState
}
ORDER_EVENT_TYPES: Mapping[int, OrderEventType] = {
    pretrade_pb.OrderEventType.Value(f"ORDER_EVENT_TYPE_{t.value}"): t for t in OrderEventType
}


# --- published events --------------------------------------------------------------------------


def _price(text: str, field: str, problems: Problems, *, required: bool = True) -> Decimal | None:
    return convert.decimal(text, field, problems, required=required)


def feed_event(message: pb.MarketDataEvent) -> tuple[FeedEvent | None, Problems]:
    """Validate one published event; returns the event or the problems that refuse it."""
    problems: Problems = []
    kind = message.WhichOneof("event")
    at = convert.timestamp(
        message.event_time, message.HasField("event_time"), "event_time", problems
    )
    if at is not None:
        at = at.astimezone(EXCHANGE_TZ)  # exchange time from here on: cheap session compares
    if kind is None:
        problems.append(FieldViolation("event", "is required (quote, trade, halt, ...)"))
        return None, problems
    if kind != "index_level":
        convert.symbol(message.symbol, "symbol", problems)
    parse = _PARSERS[kind]
    event = parse(message, at, problems)
    return (None, problems) if problems or at is None else (event, problems)


def _quote(m: pb.MarketDataEvent, at: datetime | None, p: Problems) -> FeedEvent | None:
    q = m.quote
    convert.venue(q.venue, "quote.venue", p, required=True)
    bid = _price(q.bid_price, "quote.bid_price", p, required=False)
    ask = _price(q.ask_price, "quote.ask_price", p, required=False)
    for side, price, size in (("bid", bid, q.bid_size), ("ask", ask, q.ask_size)):
        if size < 0:
            p.append(FieldViolation(f"quote.{side}_size", "must be >= 0"))
        elif (price is None) != (size == 0):
            p.append(
                FieldViolation(f"quote.{side}_size", f"a {side} needs both a price and a size > 0")
            )
    if p or at is None:
        return None
    return QuoteUpdate(m.symbol, at, q.venue, bid, q.bid_size, ask, q.ask_size)


def _trade(m: pb.MarketDataEvent, at: datetime | None, p: Problems) -> FeedEvent | None:
    t = m.trade
    convert.venue(t.venue, "trade.venue", p, required=True)
    price = _price(t.price, "trade.price", p)
    convert.quantity(t.quantity, "trade.quantity", p)
    kind = convert.enum_value(
        t.trade_type, TRADE_TYPES, "trade.trade_type", p, default=TradeType.REGULAR
    )
    if p or at is None or price is None or kind is None:
        return None
    return TradeReport(m.symbol, at, t.venue, price, t.quantity, t.eligible, kind)


def _optional_time(message: object, name: str, field: str, p: Problems) -> datetime | None:
    present = message.HasField(name)  # type: ignore[attr-defined]  # any proto message
    value = getattr(message, name)
    return convert.timestamp(value, present, field, p, required=False)


def _halt(m: pb.MarketDataEvent, at: datetime | None, p: Problems) -> FeedEvent | None:
    h = m.halt
    if not h.reason_code:
        p.append(FieldViolation("halt.reason_code", "is required"))
    convert.venue(h.venue, "halt.venue", p)
    quotes = _optional_time(h, "expected_quote_resumption", "halt.expected_quote_resumption", p)
    trades = _optional_time(h, "expected_trade_resumption", "halt.expected_trade_resumption", p)
    if p or at is None:
        return None
    return HaltNotice(m.symbol, at, h.reason_code, h.venue, quotes, trades)


def _resume(m: pb.MarketDataEvent, at: datetime | None, p: Problems) -> FeedEvent | None:
    r = m.resume
    phase = convert.enum_value(r.phase, RESUMPTION_PHASES, "resume.phase", p)
    convert.venue(r.venue, "resume.venue", p)
    if p or at is None or phase is None:
        return None
    return ResumeNotice(m.symbol, at, r.reason_code, phase, r.venue)


def _band(m: pb.MarketDataEvent, at: datetime | None, p: Problems) -> FeedEvent | None:
    lower = _price(m.band.lower_band, "band.lower_band", p)
    upper = _price(m.band.upper_band, "band.upper_band", p)
    if p or at is None or lower is None or upper is None:
        return None
    return BandNotice(m.symbol, at, lower, upper)


def _index(m: pb.MarketDataEvent, at: datetime | None, p: Problems) -> FeedEvent | None:
    i = m.index_level
    if not i.index:
        p.append(FieldViolation("index_level.index", "is required"))
    level = _price(i.level, "index_level.level", p)
    prior = _price(i.prior_close, "index_level.prior_close", p, required=False)
    if p or at is None or level is None:
        return None
    return IndexUpdate(at, i.index, level, prior)


def _reference(m: pb.MarketDataEvent, at: datetime | None, p: Problems) -> FeedEvent | None:
    r = m.reference_data
    tier = convert.enum_value(r.tier, TIERS, "reference_data.tier", p)
    convert.venue(r.listing_exchange, "reference_data.listing_exchange", p, required=True)
    prior = _price(r.prior_close, "reference_data.prior_close", p)
    leverage = _price(r.leverage, "reference_data.leverage", p, required=False)
    tick = _price(r.tick_size, "reference_data.tick_size", p, required=False)
    day = convert.trade_date(r.trade_date, "reference_data.trade_date", p)
    if p or at is None or tier is None or prior is None or day is None:
        return None
    return ReferenceData(
        m.symbol,
        at,
        tier,
        r.listing_exchange,
        prior,
        day,
        leverage or Decimal(1),
        r.short_sale_restricted,
        r.luld_exempt,
        tick,
    )


_PARSERS = {
    "quote": _quote,
    "trade": _trade,
    "halt": _halt,
    "resume": _resume,
    "band": _band,
    "index_level": _index,
    "reference_data": _reference,
}


# --- derived state -----------------------------------------------------------------------------


def _set_time(target: object, name: str, value: datetime | None) -> None:
    if value is not None:
        getattr(target, name).FromDatetime(value)


# Bands change far less often than they are sent (every decision carries them): each Bands value
# is rendered once and copied after that (bounded; keyed by identity, checked against reuse).
_RENDERED_BANDS: dict[int, tuple[Bands, pb.PriceBand]] = {}
_MAX_RENDERED_BANDS = 65_536


def band(bands: Bands | None, into: pb.PriceBand) -> None:
    if bands is None:
        return
    found = _RENDERED_BANDS.get(id(bands))
    if found is not None and found[0] is bands:
        into.CopyFrom(found[1])
        return
    rendered = pb.PriceBand(
        lower=str(bands.lower),
        upper=str(bands.upper),
        reference_price=str(bands.reference_price),
        source=BAND_SOURCES[bands.source],
    )
    if bands.parameter is not None:
        rendered.parameter = str(bands.parameter)
    if len(_RENDERED_BANDS) >= _MAX_RENDERED_BANDS:
        _RENDERED_BANDS.clear()
    _RENDERED_BANDS[id(bands)] = (bands, rendered)
    into.CopyFrom(rendered)


def symbol_state(engine: MarketStateEngine, state: SymbolState, now: datetime) -> pb.SymbolState:
    phase = engine.phase(state, now)
    message = pb.SymbolState(symbol=state.symbol, phase=PHASES[phase])
    halt = state.halt
    if halt is not None:
        message.halt.reason_code = halt.reason_code
        message.halt.halt_class = HALT_CLASSES.get(halt.halt_class, pb.HALT_CLASS_OTHER)
        message.halt.inferred = halt.inferred
        _set_time(message.halt, "since", halt.since)
        _set_time(message.halt, "expected_resumption", halt.expected_resumption)
    for venue, op in sorted(state.operational.items()):
        entry = message.operational_halts.add(venue=venue, reason_code=op.reason_code)
        entry.since.FromDatetime(op.since)
    band(state.bands, message.band)
    message.limit_state = LIMIT_STATES[state.limit.state]
    _set_time(message, "limit_state_since", state.limit.since)
    session = engine.session(now)
    if session is not None and state.ssr.is_restricted(session.trade_date):
        message.short_sale_restricted = True
        message.short_sale_restricted_until = str(state.ssr.restricted_until or "")
    message.restrictions.extend(RESTRICTIONS[r] for r in restrictions(engine, state, now, phase))
    nbbo = state.book.nbbo
    if nbbo.bid_price is not None:
        message.national_best_bid = str(nbbo.bid_price)
    if nbbo.ask_price is not None:
        message.national_best_offer = str(nbbo.ask_price)
    if state.last_trade is not None:
        message.last_trade_price = str(state.last_trade.price)
    reference = state.reference
    if reference is not None:
        message.tier = common.TIER_1 if reference.tier is Tier.TIER_1 else common.TIER_2
        message.listing_exchange = reference.listing_exchange
        message.prior_close = str(reference.prior_close)
    _set_time(message, "updated_at", state.updated_at)
    return message


def market_state(engine: MarketStateEngine, now: datetime) -> pb.MarketWideState:
    session = engine.session(now)
    message = pb.MarketWideState(level=pb.CIRCUIT_BREAKER_LEVEL_NONE)
    if session is not None:
        message.trade_date = session.trade_date.isoformat()
        message.early_close = session.early_close
    message.index_level, message.index_prior_close = engine.index_level
    breaker = engine.breaker
    if breaker is not None:
        message.level = LEVELS[breaker.level]
        message.halted_for_day = breaker.halted_for_day
        if breaker.halted(now) and not breaker.halted_for_day:
            _set_time(message, "halted_until", breaker.halted_until)
        message.levels_triggered_today.extend(LEVELS[level] for level in breaker.levels_triggered)
    return message


def changes(kinds: Iterable[ChangeKind]) -> list[pb.StateChange.ValueType]:
    return [CHANGES[k] for k in kinds]


def reason(value: Reason, into: common.Reason) -> None:
    into.code = value.code
    into.message = value.message
    into.field = value.field


def decision(value: Decision, into: pretrade_pb.CheckOrderResponse, latency_ns: int) -> None:
    into.allowed = value.allowed
    for item in value.reasons:
        reason(item, into.reasons.add())
    into.restrictions.extend(RESTRICTIONS[r] for r in value.restrictions)
    if value.phase is not None:
        into.phase = PHASES[value.phase]
    band(value.bands, into.band)
    into.short_sale_restricted = value.short_sale_restricted
    convert.to_timestamp(value.decided_at, into.decided_at)
    into.decision_latency_ns = latency_ns


def working_order(value: WorkingOrder, into: pretrade_pb.WorkingOrder) -> None:
    order = value.order
    target = into.order
    target.client_order_id = order.client_order_id
    target.account = order.account
    target.symbol = order.symbol
    target.side = common.Side.Value(f"SIDE_{order.side.value}")
    target.order_type = common.OrderType.Value(f"ORDER_TYPE_{order.order_type.value}")
    target.quantity = order.quantity
    if order.limit_price is not None:
        target.limit_price = str(order.limit_price)
    target.time_in_force = common.TimeInForce.Value(f"TIME_IN_FORCE_{order.time_in_force.value}")
    target.venue = order.venue
    target.post_only = order.post_only
    target.hidden = order.hidden
    target.intermarket_sweep = order.intermarket_sweep
    into.state = ORDER_STATES[value.state]
    into.filled_quantity = value.filled_quantity
    into.leaves_quantity = value.leaves_quantity
    into.venue = value.venue
    into.venue_order_id = value.venue_order_id
    into.decision_id = value.decision_id
    into.created_at.FromDatetime(value.created_at)
    into.updated_at.FromDatetime(value.updated_at)
    for item in value.reasons:
        reason(item, into.reasons.add())
