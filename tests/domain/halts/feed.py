"""A scripted feed for market-state tests: real trading days, events and orders in one line each.

Time is always an argument. Days come from the shipped calendar: Tuesday 2026-11-24 and Wednesday
2026-11-25 are full days, Thursday 2026-11-26 is Thanksgiving, Friday 2026-11-27 closes at 13:00.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from gateway.domain.calendar import EXCHANGE_TZ, TradingCalendar
from gateway.domain.feed import (
    BandNotice,
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
from gateway.domain.luld import Bands, LimitState, Tier
from gateway.domain.market_state import Change, MarketStateEngine, Phase
from gateway.domain.orders import OrderRequest, OrderType, Side, TimeInForce

D = Decimal
TUESDAY = date(2026, 11, 24)
WEDNESDAY = date(2026, 11, 25)
THANKSGIVING = date(2026, 11, 26)
EARLY_CLOSE = date(2026, 11, 27)
SYMBOL = "AAPL"
VENUES = ("NASDAQ", "NYSE", "NYSE_ARCA", "IEX", "BATS_BZX", "EDGX")


def et(day: date, clock: str) -> datetime:
    """Exchange time ``clock`` ("10:00", "09:28:00.5") on ``day``."""
    return datetime.combine(day, time.fromisoformat(clock), tzinfo=EXCHANGE_TZ)


def engine() -> MarketStateEngine:
    return MarketStateEngine(TradingCalendar.default())


def reference(
    at: datetime,
    *,
    symbol: str = SYMBOL,
    prior: str = "100.00",
    tier: Tier = Tier.TIER_1,
    listing: str = "NASDAQ",
    trade_date: date | None = None,
    restricted: bool = False,
    tick: str | None = None,
    exempt: bool = False,
) -> ReferenceData:
    return ReferenceData(
        symbol,
        at,
        tier,
        listing,
        D(prior),
        trade_date or at.date(),
        short_sale_restricted=restricted,
        luld_exempt=exempt,
        tick_size=D(tick) if tick is not None else None,
    )


def quote(
    at: datetime,
    bid: str | None,
    ask: str | None,
    *,
    symbol: str = SYMBOL,
    venue: str = "NASDAQ",
    size: int = 300,
) -> QuoteUpdate:
    return QuoteUpdate(
        symbol,
        at,
        venue,
        D(bid) if bid is not None else None,
        size if bid is not None else 0,
        D(ask) if ask is not None else None,
        size if ask is not None else 0,
    )


def trade(
    at: datetime,
    price: str,
    *,
    symbol: str = SYMBOL,
    venue: str = "NASDAQ",
    kind: TradeType = TradeType.REGULAR,
    eligible: bool = True,
    quantity: int = 100,
) -> TradeReport:
    return TradeReport(symbol, at, venue, D(price), quantity, eligible, kind)


def halt(at: datetime, code: str, *, symbol: str = SYMBOL, venue: str = "") -> HaltNotice:
    return HaltNotice(symbol, at, code, venue)


def resume(
    at: datetime,
    code: str = "R4",
    phase: ResumptionPhase = ResumptionPhase.TRADING,
    *,
    symbol: str = SYMBOL,
    venue: str = "",
) -> ResumeNotice:
    return ResumeNotice(symbol, at, code, phase, venue)


def band_notice(at: datetime, lower: str, upper: str, *, symbol: str = SYMBOL) -> BandNotice:
    return BandNotice(symbol, at, D(lower), D(upper))


def index(at: datetime, level: str, prior_close: str | None = None) -> IndexUpdate:
    return IndexUpdate(at, "SPX", D(level), D(prior_close) if prior_close is not None else None)


def opened(
    day: date = TUESDAY,
    *,
    symbol: str = SYMBOL,
    prior: str = "100.00",
    opening: str = "100.00",
    listing: str = "NASDAQ",
    bid: str = "99.99",
    ask: str = "100.01",
    into: MarketStateEngine | None = None,
) -> MarketStateEngine:
    """An engine where ``symbol`` opened at ``opening`` at 09:30 and quotes bid/ask everywhere."""
    target = into if into is not None else engine()
    target.apply(reference(et(day, "08:00"), symbol=symbol, prior=prior, listing=listing))
    target.apply(
        trade(et(day, "09:30"), opening, symbol=symbol, venue=listing, kind=TradeType.OPENING)
    )
    for venue in VENUES:
        target.apply(quote(et(day, "09:30"), bid, ask, symbol=symbol, venue=venue))
    target.tick(et(day, "09:30"))  # the scheduled phase is announced once
    return target


def move(
    target: MarketStateEngine,
    at: datetime,
    bid: str | None,
    ask: str | None,
    *,
    symbol: str = SYMBOL,
) -> list[Change]:
    """Every venue quotes ``bid`` / ``ask`` at ``at``; returns the engine's changes."""
    changes: list[Change] = []
    for venue in VENUES:
        changes.extend(target.apply(quote(at, bid, ask, symbol=symbol, venue=venue)))
    return changes


def pre_open(
    day: date = TUESDAY, *, symbol: str = SYMBOL, listing: str = "NASDAQ", prior: str = "100.00"
) -> MarketStateEngine:
    """An engine that knows ``symbol`` from reference data at 07:00 and nothing else."""
    target = engine()
    target.apply(reference(et(day, "07:00"), symbol=symbol, prior=prior, listing=listing))
    return target


def order(
    *,
    side: Side = Side.BUY,
    order_type: OrderType = OrderType.LIMIT,
    limit: str | None = "100.00",
    symbol: str = SYMBOL,
    venue: str = "",
    tif: TimeInForce = TimeInForce.DAY,
    quantity: int = 100,
    client_order_id: str = "ord-1",
) -> OrderRequest:
    return OrderRequest(
        client_order_id,
        "ACC-1",
        symbol,
        side,
        order_type,
        quantity,
        D(limit) if limit is not None else None,
        tif,
        venue,
    )


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a refused event must leave exactly as it was."""

    phase: Phase
    bands: Bands | None
    limit: LimitState
    limit_since: datetime | None
    halt: tuple[str, HaltClass, bool, bool, bool] | None
    nbbo: tuple[Decimal | None, int, Decimal | None, int]
    operational: tuple[str, ...]
    reference_price: Decimal | None
    restricted_until: date | None
    last_at: datetime | None
    market_halted: bool


def snapshot(target: MarketStateEngine, symbol: str, now: datetime) -> Snapshot | None:
    state = target.get(symbol)
    if state is None:
        return None
    h = state.halt
    nbbo = state.book.nbbo
    return Snapshot(
        target.phase(state, now),
        state.bands,
        state.limit.state,
        state.limit.since,
        (h.reason_code, h.halt_class, h.inferred, h.quotation_only, h.reopens) if h else None,
        (nbbo.bid_price, nbbo.bid_size, nbbo.ask_price, nbbo.ask_size),
        tuple(sorted(state.operational)),
        state.rp.current,
        state.ssr.restricted_until,
        state.last_at,
        target.market_halted(now),
    )
