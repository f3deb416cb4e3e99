"""The market-state engine: per-symbol halt, pause, band, limit, auction and restriction state.

Pure domain: events come in (``apply``), time passes (``tick``), and each call returns the changes
it made, which the edge publishes, records for compliance and turns into cancel instructions.
An event the engine refuses (``EventRefused``) changes nothing.

Decisions (settings in ``MarketSettings`` and the rule modules):
- A stock with no opening print by the time a quote or trade arrives in regular hours is taken to
  have opened on a quote: its first reference price is the prior close (LULD Plan).
- Published SIP bands win over computed ones until the next band message, the next trading day or
  a reopening; computed bands are used where none were published.
- A reopening print, or a resume message for trading, ends a halt or pause; the reopening print
  sets the new reference price.
- Regulatory halts outlast the trading day; pauses, limit states and bands do not. A Level 3
  market-wide halt lasts for the rest of its day only (MWC0 carries it over, per symbol).
- A market-wide halt ends every limit state: LULD limit states are measured again from the first
  quote after it, so a stale limit state never infers a pause across the halt.
- Eligible trades feed the reference price only in regular hours (LULD Plan scope).

Refusals (``EventRefused.reason``): EVENT_OUT_OF_ORDER, QUOTE_CROSSED, PRICE_NOT_POSITIVE,
UNKNOWN_HALT_CODE, NOT_A_HALT_CODE, VENUE_REQUIRED, BAND_INVALID, INDEX_PRIOR_CLOSE_MISSING. Every
check runs before anything is changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from gateway.domain import auctions, halt_codes
from gateway.domain.auctions import AuctionSettings
from gateway.domain.calendar import CalendarError, Session, TradingCalendar
from gateway.domain.circuit_breakers import CircuitBreakerSettings, Level, MarketWideBreaker
from gateway.domain.feed import (
    BandNotice,
    EventRefused,
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
from gateway.domain.luld import (
    Bands,
    LimitState,
    LimitStateTracker,
    LuldSettings,
    ReferencePrice,
    compute_bands,
    effective_bands,
    in_closing_period,
    published_bands,
    reopens_before_close,
)
from gateway.domain.quotes import QuoteBook, VenueQuote
from gateway.domain.short_sale import ShortSaleSettings, ShortSaleState
from gateway.domain.vocabulary import Vocabulary


class ChangeKind(Vocabulary):
    HALT = "HALT"
    PAUSE = "PAUSE"
    RESUME = "RESUME"
    LIMIT_STATE = "LIMIT_STATE"
    BAND = "BAND"
    AUCTION_PHASE = "AUCTION_PHASE"
    CIRCUIT_BREAKER = "CIRCUIT_BREAKER"
    SHORT_SALE_RESTRICTION = "SHORT_SALE_RESTRICTION"
    OPERATIONAL_HALT = "OPERATIONAL_HALT"
    REFERENCE_DATA = "REFERENCE_DATA"


class Phase(Vocabulary):
    PRE_OPEN = "PRE_OPEN"
    OPENING_AUCTION = "OPENING_AUCTION"
    CONTINUOUS = "CONTINUOUS"
    HALTED = "HALTED"
    PAUSED = "PAUSED"
    QUOTATION_ONLY = "QUOTATION_ONLY"
    REOPENING_AUCTION = "REOPENING_AUCTION"
    CLOSING_AUCTION = "CLOSING_AUCTION"
    CLOSED = "CLOSED"


_SCHEDULED = {
    auctions.Phase.PRE_OPEN: Phase.PRE_OPEN,
    auctions.Phase.OPENING_AUCTION: Phase.OPENING_AUCTION,
    auctions.Phase.CONTINUOUS: Phase.CONTINUOUS,
    auctions.Phase.CLOSING_AUCTION: Phase.CLOSING_AUCTION,
    auctions.Phase.CLOSED: Phase.CLOSED,
}


@dataclass(frozen=True, slots=True)
class Halt:
    """A halt or pause in force for a symbol (or, for operational halts, one venue)."""

    reason_code: str
    halt_class: HaltClass
    since: datetime
    # A pause the gateway inferred from a limit state of 15 s, before the exchange declared it.
    inferred: bool = False
    expected_resumption: datetime | None = None
    # Quotes have resumed; trading has not.
    quotation_only: bool = False
    # False for a pause declared in the last 10 minutes: it goes to the closing auction.
    reopens: bool = True

    @property
    def is_pause(self) -> bool:
        return self.halt_class is HaltClass.VOLATILITY


@dataclass(frozen=True, slots=True)
class Change:
    """What one event or tick changed for one symbol ("" for the market as a whole).

    ``record`` names the compliance record to write (market_state_events.kind), if any;
    ``cancel`` asks for cancel instructions for the symbol's open orders (all symbols when the
    symbol is "", only those at ``venue`` for an operational halt).
    """

    symbol: str
    at: datetime
    kinds: tuple[ChangeKind, ...]
    reason_code: str = ""
    record: str = ""
    cancel: bool = False
    venue: str = ""
    detail: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class MarketSettings:
    """Every rule setting of the engine, parsed once at start."""

    luld: LuldSettings = field(default_factory=LuldSettings)
    auctions: AuctionSettings = field(default_factory=AuctionSettings)
    breakers: CircuitBreakerSettings = field(default_factory=CircuitBreakerSettings)
    short_sale: ShortSaleSettings = field(default_factory=ShortSaleSettings)


class SymbolState:
    """Everything the engine knows about one symbol. Owned and mutated by the engine only."""

    __slots__ = (
        "band_doubled",
        "book",
        "closing_print",
        "computed",
        "halt",
        "last_at",
        "last_trade",
        "limit",
        "luld",
        "opened",
        "operational",
        "published",
        "reference",
        "rp",
        "scheduled",
        "ssr",
        "symbol",
        "updated_at",
    )

    def __init__(self, symbol: str, settings: MarketSettings) -> None:
        self.symbol = symbol
        self.luld = luld = settings.luld
        self.reference: ReferenceData | None = None
        self.book = QuoteBook()
        self.last_at: datetime | None = None
        self.updated_at: datetime | None = None
        self.last_trade: TradeReport | None = None
        self.rp = ReferencePrice(luld)
        self.limit = LimitStateTracker()
        self.published: Bands | None = None
        self.computed: Bands | None = None
        self.band_doubled = False
        self.halt: Halt | None = None
        self.operational: dict[str, Halt] = {}
        self.ssr = ShortSaleState(settings.short_sale)
        self.opened = False
        self.closing_print = False
        self.scheduled: Phase | None = None

    @property
    def bands(self) -> Bands | None:
        """Bands in force: the published ones when there are (a setting), else the computed."""
        return effective_bands(self.computed, self.published, self.luld)

    def reset_day(self) -> None:
        self.rp = ReferencePrice(self.luld)
        self.limit = LimitStateTracker()
        self.published = self.computed = None
        self.opened = self.closing_print = False
        if self.halt is not None and self.halt.is_pause:
            self.halt = None  # pauses never outlast the session
        self.operational.clear()


class MarketStateEngine:
    """State of every symbol and of the market, from published events and the passing of time."""

    def __init__(self, calendar: TradingCalendar, settings: MarketSettings | None = None) -> None:
        self.calendar = calendar
        self.settings = settings or MarketSettings()
        self.symbols: dict[str, SymbolState] = {}
        self.breaker: MarketWideBreaker | None = None
        self._breaker_halted = False
        self._limit_watch: set[str] = set()
        self._trading: set[str] = set()
        self._sessions: dict[date, Session | None] = {}
        self._last_now: datetime | None = None
        self._last_session: Session | None = None
        self._closing_period: dict[date, bool] = {}
        # Scheduled phase per listing exchange at the last tick, and symbols not placed yet: a
        # tick walks every symbol only when an exchange changes phase or the bands double.
        self._exchange_phase: dict[tuple[date, str], Phase] = {}
        self._unscheduled: set[str] = set()
        self._listing_set: dict[str, None] = {}
        self._index_at: datetime | None = None
        self.index_level: tuple[str, str] = ("", "")

    # --- queries ----------------------------------------------------------------------------

    def session(self, now: datetime) -> Session | None:
        """The session of ``now``'s trading day (None on holidays and outside the calendar)."""
        if now is self._last_now:
            return self._last_session  # one decision asks several times with the same instant
        day = self.calendar.trade_date_of(now)
        if day not in self._sessions:
            try:
                self._sessions[day] = self.calendar.session(day)
            except CalendarError:
                self._sessions[day] = None
        found = self._sessions[day]
        self._last_now, self._last_session = now, found
        return found

    def get(self, symbol: str) -> SymbolState | None:
        return self.symbols.get(symbol)

    def carry_over_short_sale(self, symbol: str, until: date) -> None:
        """Restore a Reg SHO 201 restriction from persisted state (after a restart)."""
        state = self.symbols.get(symbol)
        if state is None:
            state = self.symbols[symbol] = SymbolState(symbol, self.settings)
        state.ssr.carry_over(until)

    def _breaker_today(self, now: datetime) -> MarketWideBreaker | None:
        # A breaker belongs to one trading day: Level 3 halts "for the rest of the day" only.
        breaker = self.breaker
        session = self.session(now)
        if breaker is None or session is None or breaker.trade_date != session.trade_date:
            return None
        return breaker

    def market_halted(self, now: datetime) -> bool:
        """Whether a market-wide circuit breaker halts trading at ``now``."""
        breaker = self._breaker_today(now)
        return breaker is not None and breaker.halted(now)

    def phase(self, state: SymbolState, now: datetime) -> Phase:
        """The trading phase of ``state`` at ``now``: halts and pauses over the schedule."""
        session = self.session(now)
        if session is None:
            return Phase.CLOSED
        if self.market_halted(now):
            return Phase.HALTED
        halt = state.halt
        if halt is not None:
            if halt.quotation_only:
                return Phase.QUOTATION_ONLY
            return Phase.PAUSED if halt.is_pause else Phase.HALTED
        listing = state.reference.listing_exchange if state.reference else ""
        scheduled = auctions.scheduled_phase(now, session, listing, self.settings.auctions)
        return _SCHEDULED[scheduled]

    # --- events -----------------------------------------------------------------------------

    def apply(self, event: FeedEvent) -> list[Change]:
        """Apply one event; returns the changes, or raises EventRefused and changes nothing."""
        if isinstance(event, IndexUpdate):
            return self._on_index(event)
        state = self.symbols.get(event.symbol)
        if state is not None and state.last_at is not None and event.at < state.last_at:
            raise EventRefused(
                "EVENT_OUT_OF_ORDER",
                f"{event.symbol}: event at {event.at.isoformat()} is older than the last one "
                f"applied ({state.last_at.isoformat()})",
            )
        self._validate(event)
        if state is None:
            # Only now: a refused event must not leave even an empty symbol behind.
            state = self.symbols[event.symbol] = SymbolState(event.symbol, self.settings)
        if isinstance(event, QuoteUpdate):
            changes = self._on_quote(state, event)
        elif isinstance(event, TradeReport):
            changes = self._on_trade(state, event)
        elif isinstance(event, HaltNotice):
            changes = self._on_halt(state, event)
        elif isinstance(event, ResumeNotice):
            changes = self._on_resume(state, event)
        elif isinstance(event, BandNotice):
            changes = self._on_band(state, event)
        else:
            changes = self._on_reference(state, event)
        state.last_at = event.at
        if changes:
            state.updated_at = event.at
        return changes

    @staticmethod
    def _validate(event: FeedEvent) -> None:
        """Refuse an event that would corrupt state, before anything is changed."""
        symbol = event.symbol
        if isinstance(event, QuoteUpdate):
            _require_positive(symbol, bid=event.bid_price, ask=event.ask_price)
            if (
                event.bid_price is not None
                and event.ask_price is not None
                and event.bid_price > event.ask_price
            ):
                raise EventRefused(
                    "QUOTE_CROSSED",
                    f"{symbol}: {event.venue} bid {event.bid_price} is above its ask "
                    f"{event.ask_price}",
                )
        elif isinstance(event, TradeReport):
            _require_positive(symbol, price=event.price)
        elif isinstance(event, ReferenceData):
            _require_positive(symbol, prior_close=event.prior_close, leverage=event.leverage)
        elif isinstance(event, BandNotice):
            if event.lower <= 0 or event.lower >= event.upper:
                raise EventRefused(
                    "BAND_INVALID",
                    f"{symbol}: bands {event.lower} / {event.upper} are not 0 < lower < upper",
                )
        elif isinstance(event, HaltNotice):
            code = _lookup(event.reason_code)
            if code.is_resumption:
                raise EventRefused(
                    "NOT_A_HALT_CODE",
                    f"{symbol}: {code.code} is a resumption code; send it as a resume message",
                )
            if code.is_operational and not event.venue:
                raise EventRefused(
                    "VENUE_REQUIRED", f"{symbol}: operational halt O1 must name its venue"
                )
        elif isinstance(event, ResumeNotice) and event.reason_code.strip():
            # Fail safe: a resumption nobody can classify leaves the symbol halted.
            _lookup(event.reason_code)

    def _on_reference(self, state: SymbolState, event: ReferenceData) -> list[Change]:
        previous = state.reference
        if previous is not None:
            last_day: date | None = previous.trade_date
        else:  # known from market data only (a halt, quotes) until now
            last_day = self.calendar.trade_date_of(state.last_at) if state.last_at else None
        if last_day is not None and last_day != event.trade_date:
            state.reset_day()
            self._limit_watch.discard(state.symbol)
            self._trading.discard(state.symbol)
            # A venue that has not quoted since an earlier day must not set today's NBBO.
            for stale in [
                q for q in state.book if self.calendar.trade_date_of(q.time) < event.trade_date
            ]:
                state.book.remove(stale.venue)
        state.reference = event
        self._unscheduled.add(state.symbol)
        kinds = [ChangeKind.REFERENCE_DATA]
        if event.short_sale_restricted and not state.ssr.is_restricted(event.trade_date):
            state.ssr.carry_over(event.trade_date)
            kinds.append(ChangeKind.SHORT_SALE_RESTRICTION)
        return [Change(state.symbol, event.at, tuple(kinds))]

    def _regular_hours(self, at: datetime) -> Session | None:
        session = self.session(at)
        return session if session is not None and session.is_open(at) else None

    def _open_on_quote(self, state: SymbolState, at: datetime) -> None:
        # LULD Plan: a stock that opened on a quote takes the prior close as first reference.
        reference = state.reference
        if reference is not None and not state.opened and self._regular_hours(at) is not None:
            state.opened = True
            state.rp.set_opening(reference.prior_close, at)
            self._recompute(state, at)

    def _on_quote(self, state: SymbolState, event: QuoteUpdate) -> list[Change]:
        state.book.update(
            VenueQuote(
                event.venue,
                event.bid_price,
                event.bid_size,
                event.ask_price,
                event.ask_size,
                event.at,
            )
        )
        self._open_on_quote(state, event.at)
        return self._evaluate_limit(state, event.at)

    def _on_trade(self, state: SymbolState, event: TradeReport) -> list[Change]:
        state.last_trade = event
        changes: list[Change] = []
        if event.trade_type is TradeType.OPENING:
            state.opened = True
            state.rp.set_opening(event.price, event.at)
            changes.extend(self._recompute(state, event.at))
        elif event.trade_type is TradeType.REOPENING:
            state.opened = True
            state.published = None
            state.rp.set_reopening(event.price, event.at)
            if state.halt is not None:
                changes.append(self._end_halt(state, event.at, "REOPENING_PRINT"))
            changes.extend(self._recompute(state, event.at))
        elif event.trade_type is TradeType.CLOSING:
            state.closing_print = True
        elif event.eligible and self._regular_hours(event.at) is not None:
            # LULD Plan scope: only regular-hours trades feed the reference price.
            self._open_on_quote(state, event.at)
            if state.rp.add_trade(event.price, event.at):
                changes.extend(self._recompute(state, event.at))
            self._trading.add(state.symbol)
        changes.extend(self._short_sale(state, event))
        return changes

    def _short_sale(self, state: SymbolState, event: TradeReport) -> list[Change]:
        reference = state.reference
        session = self._regular_hours(event.at)
        if reference is None or session is None or not event.eligible:
            return []
        try:
            next_day = self.calendar.next_trading_day(session.trade_date)
        except CalendarError:
            next_day = session.trade_date + timedelta(days=1)  # past the calendar: next day
        if not state.ssr.on_trade(event.price, event.at, reference.prior_close, session, next_day):
            return []
        until = state.ssr.restricted_until
        return [
            Change(
                state.symbol,
                event.at,
                (ChangeKind.SHORT_SALE_RESTRICTION,),
                "REG_SHO_201",
                "SHORT_SALE_RESTRICTION",
                detail=(("price", str(event.price)), ("restricted_until", str(until))),
            )
        ]

    def _on_halt(self, state: SymbolState, event: HaltNotice) -> list[Change]:
        code = _lookup(event.reason_code)  # validated: a halt code, O1 with its venue
        if code.is_operational:
            state.operational[event.venue] = Halt(code.code, code.halt_class, event.at)
            return [
                Change(
                    state.symbol,
                    event.at,
                    (ChangeKind.OPERATIONAL_HALT,),
                    code.code,
                    "OPERATIONAL_HALT",
                    cancel=True,
                    venue=event.venue,
                )
            ]
        changes: list[Change] = []
        if code.is_market_wide:
            changes.extend(self._breaker_message(code.code, event.at))
        expected = event.expected_trade_resumption
        reopens = True
        if code.is_pause:
            session = self.session(event.at)
            if session is not None:
                reopens = reopens_before_close(event.at, session, self.settings.luld)
        previous = state.halt
        state.halt = Halt(
            code.code,
            code.halt_class,
            event.at,
            expected_resumption=expected,
            quotation_only=code.is_quotation_only,
            reopens=reopens,
        )
        state.limit.reset()
        self._limit_watch.discard(state.symbol)
        kind = ChangeKind.PAUSE if code.is_pause else ChangeKind.HALT
        record = "PAUSE" if code.is_pause else "HALT"
        # The declared pause replaces the one the gateway inferred: its orders were cancelled then,
        # and none could be entered since, so no second round of cancels.
        confirms = previous is not None and previous.inferred and code.is_pause
        detail = (("replaces", "PAUSE_INFERRED"),) if confirms else ()
        changes.append(
            Change(
                state.symbol,
                event.at,
                (kind,),
                code.code,
                record,
                cancel=not confirms,
                detail=detail,
            )
        )
        return changes

    def _on_resume(self, state: SymbolState, event: ResumeNotice) -> list[Change]:
        if event.venue and event.venue in state.operational:
            del state.operational[event.venue]
            return [
                Change(
                    state.symbol,
                    event.at,
                    (ChangeKind.OPERATIONAL_HALT,),
                    event.reason_code,
                    "OPERATIONAL_RESUME",
                    venue=event.venue,
                )
            ]
        changes: list[Change] = []
        if event.reason_code.strip().upper() == "MWCQ":
            changes.extend(self._breaker_resume(event.at))
        if state.halt is None:
            return changes  # already trading: a repeated resume changes nothing
        if event.phase is ResumptionPhase.QUOTES:
            state.halt = replace(state.halt, quotation_only=True)
            changes.append(
                Change(
                    state.symbol,
                    event.at,
                    (ChangeKind.RESUME, ChangeKind.AUCTION_PHASE),
                    event.reason_code,
                    "RESUME",
                    detail=(("phase", "QUOTES"),),
                )
            )
            return changes
        changes.append(self._end_halt(state, event.at, event.reason_code))
        return changes

    def _end_halt(self, state: SymbolState, at: datetime, code: str) -> Change:
        state.halt = None
        state.limit.reset()
        return Change(
            state.symbol, at, (ChangeKind.RESUME,), code, "RESUME", detail=(("phase", "TRADING"),)
        )

    def _on_band(self, state: SymbolState, event: BandNotice) -> list[Change]:
        reference = state.rp.current or (event.lower + event.upper) / 2
        state.published = published_bands(event.lower, event.upper, reference)
        changes = [Change(state.symbol, event.at, (ChangeKind.BAND,))]
        changes.extend(self._evaluate_limit(state, event.at))
        return changes

    def _recompute(self, state: SymbolState, at: datetime) -> list[Change]:
        reference = state.reference
        rp = state.rp.current
        if reference is None or rp is None or reference.luld_exempt:
            return []
        session = self.session(at)
        doubled = session is not None and in_closing_period(at, session, self.settings.luld)
        bands = compute_bands(
            reference.tier,
            reference.prior_close,
            rp,
            doubled=doubled,
            leverage=reference.leverage,
            settings=self.settings.luld,
        )
        state.band_doubled = doubled
        if bands == state.computed:
            return []
        state.computed = bands
        if state.published is not None:
            return []
        changes = [Change(state.symbol, at, (ChangeKind.BAND,))]
        changes.extend(self._evaluate_limit(state, at))
        return changes

    def _evaluate_limit(self, state: SymbolState, at: datetime) -> list[Change]:
        bands = state.bands
        if (
            bands is None
            or state.halt is not None
            or self._regular_hours(at) is None
            or self.market_halted(at)
        ):
            return []
        nbbo = state.book.nbbo
        before = state.limit.state
        after = state.limit.evaluate(nbbo.bid_price, nbbo.ask_price, bands, at)
        if after is LimitState.NONE:
            self._limit_watch.discard(state.symbol)
        else:
            self._limit_watch.add(state.symbol)
        if after is before:
            return []
        record = "STRADDLE" if after is LimitState.STRADDLE else "LIMIT_STATE"
        return [
            Change(
                state.symbol,
                at,
                (ChangeKind.LIMIT_STATE,),
                after.value,
                record if after is not LimitState.NONE or before is not LimitState.NONE else "",
                detail=(("from", before.value), ("to", after.value)),
            )
        ]

    # --- market-wide circuit breakers --------------------------------------------------------

    def _on_index(self, event: IndexUpdate) -> list[Change]:
        if event.index != self.settings.breakers.index:
            return []
        last = self._index_at
        if last is not None and event.at < last:
            raise EventRefused(
                "EVENT_OUT_OF_ORDER",
                f"{event.index}: level at {event.at.isoformat()} is older than the last one "
                f"applied ({last.isoformat()})",
            )
        _require_positive(event.index, level=event.level, prior_close=event.prior_close)
        session = self.session(event.at)
        if session is None:
            self._index_at = event.at
            return []
        breaker = self._breaker_today(event.at)
        if breaker is None:
            if event.prior_close is None:
                raise EventRefused(
                    "INDEX_PRIOR_CLOSE_MISSING",
                    f"{event.index}: the prior close is needed once a day before levels",
                )
            breaker = self.breaker = MarketWideBreaker(
                session.trade_date, event.prior_close, session, self.settings.breakers
            )
            self._breaker_halted = False
        self._index_at = event.at
        self.index_level = (str(event.level), str(breaker.prior_close))
        fired = breaker.on_index_level(event.level, event.at)
        if fired is None:
            return []
        return [self._breaker_change(fired.code, fired.halted, event.at)]

    def _breaker_message(self, code: str, at: datetime) -> list[Change]:
        breaker = self._breaker_today(at)
        if breaker is None:
            return []  # no index prior close today: the symbol's own halt still applies
        fired = breaker.on_halt_message(code, at)
        if fired is None:
            return []
        return [self._breaker_change(fired.code, fired.halted, at)]

    def _breaker_resume(self, at: datetime) -> list[Change]:
        # MWCQ: the market-wide halt in force ends (never a Level 3 of the same day).
        breaker = self._breaker_today(at)
        if breaker is None or not self._breaker_halted or not breaker.on_resume(at):
            return []
        self._breaker_halted = False
        return [Change("", at, (ChangeKind.CIRCUIT_BREAKER, ChangeKind.RESUME), "MWCQ", "RESUME")]

    def _breaker_change(self, code: str, halted: bool, at: datetime) -> Change:
        if halted:
            # Limit states measured before the halt say nothing about the market after it.
            for symbol in self._limit_watch:
                self.symbols[symbol].limit.reset()
            self._limit_watch.clear()
        self._breaker_halted = self._breaker_halted or halted
        return Change(
            "",
            at,
            (ChangeKind.CIRCUIT_BREAKER, ChangeKind.HALT)
            if halted
            else (ChangeKind.CIRCUIT_BREAKER,),
            code,
            "CIRCUIT_BREAKER",
            cancel=halted,
            detail=(("halted", str(halted).lower()),),
        )

    # --- the passing of time -----------------------------------------------------------------

    def tick(self, now: datetime) -> list[Change]:
        """Apply what time alone changes: inferred pauses, breaker ends, phases, doubling."""
        changes: list[Change] = []
        luld = self.settings.luld
        for symbol in sorted(self._limit_watch):
            state = self.symbols[symbol]
            if state.halt is None and state.limit.pause_inferred(now, luld):
                change = self._infer_pause(state, now)
                if change is not None:
                    changes.append(change)
        if self._breaker_halted and not self.market_halted(now):
            self._breaker_halted = False
            if self._breaker_today(now) is not None:
                changes.append(
                    Change(
                        "", now, (ChangeKind.CIRCUIT_BREAKER, ChangeKind.RESUME), "MWCQ", "RESUME"
                    )
                )
        for symbol in sorted(self._trading):
            state = self.symbols[symbol]
            if state.rp.evaluate(now):
                changes.extend(self._recompute(state, now))
            if not state.rp.has_window_trades:
                self._trading.discard(symbol)
        changes.extend(self._scheduled_changes(now))
        return changes

    def _infer_pause(self, state: SymbolState, now: datetime) -> Change | None:
        luld = self.settings.luld
        since = state.limit.since or now
        self._limit_watch.discard(state.symbol)
        # The pause starts when the limit state has lasted 15 s, however late the tick comes;
        # a limit state that reaches 15 s only after the close infers nothing (LULD Plan scope).
        paused_at = since + luld.limit_state_timeout
        session = self._regular_hours(paused_at)
        if session is None:
            return None
        state.halt = Halt(
            "LUDP",
            HaltClass.VOLATILITY,
            paused_at,
            inferred=True,
            expected_resumption=paused_at + luld.pause_duration,
            reopens=reopens_before_close(paused_at, session, luld),
        )
        return Change(
            state.symbol,
            paused_at,
            (ChangeKind.PAUSE,),
            "LUDP",
            "PAUSE_INFERRED",
            cancel=True,
            detail=(("limit_state", state.limit.state.value), ("since", since.isoformat())),
        )

    def _scheduled_changes(self, now: datetime) -> list[Change]:
        session = self.session(now)
        if session is None:
            return []
        changes: list[Change] = []
        closing = in_closing_period(now, session, self.settings.luld)
        doubling_flip = self._closing_period.get(session.trade_date, False) != closing
        self._closing_period[session.trade_date] = closing
        phases: dict[tuple[date, str], Phase] = {}
        for key in {(session.trade_date, listing) for listing in self._listings()}:
            phases[key] = _SCHEDULED[
                auctions.scheduled_phase(now, session, key[1], self.settings.auctions)
            ]
        moved = phases != self._exchange_phase
        self._exchange_phase = phases
        if moved or doubling_flip:
            states: list[SymbolState] = list(self.symbols.values())
        else:
            states = [self.symbols[s] for s in sorted(self._unscheduled)]
        self._unscheduled.clear()
        for state in states:
            if state.reference is None:
                continue
            scheduled = phases[(session.trade_date, state.reference.listing_exchange)]
            if scheduled is not state.scheduled:
                state.scheduled = scheduled
                changes.append(
                    Change(
                        state.symbol,
                        now,
                        (ChangeKind.AUCTION_PHASE,),
                        scheduled.value,
                        "AUCTION_PHASE",
                    )
                )
            if doubling_flip and state.rp.current is not None:
                changes.extend(self._recompute(state, now))
        return changes

    def _listings(self) -> dict[str, None]:
        """Listing exchanges of the symbols with reference data (kept as they arrive)."""
        for symbol in self._unscheduled:
            reference = self.symbols[symbol].reference
            if reference is not None:
                self._listing_set[reference.listing_exchange] = None
        return self._listing_set

    def levels_triggered(self) -> tuple[Level, ...]:
        return self.breaker.levels_triggered if self.breaker is not None else ()


def _lookup(code: str) -> halt_codes.HaltCode:
    try:
        return halt_codes.lookup(code)
    except halt_codes.UnknownHaltCode as exc:
        raise EventRefused("UNKNOWN_HALT_CODE", str(exc)) from exc


def _require_positive(symbol: str, **prices: Decimal | None) -> None:
    for name, value in prices.items():
        if value is not None and value <= 0:
            raise EventRefused("PRICE_NOT_POSITIVE", f"{symbol}: {name} {value} is not positive")
