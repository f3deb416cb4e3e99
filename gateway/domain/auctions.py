"""Auction phases and the order-entry and cancel windows of the listing exchanges (section 5).

The phase here is the *scheduled* one, read from the clock; halts, pauses and circuit breakers are
layered on top by the engine. Every cut-off is exclusive: "MOO until 09:28" accepts 09:27:59.999999
and refuses 09:28:00. Opening times are wall-clock times and never move; every close-relative time
(closing entry, cancel and imbalance times, given on the 16:00 clock) moves by the session's
``close_shift`` on an early-close day (NYSE MOC/LOC 15:50 -> 12:50 on a 13:00 close).

Decisions:
- The gateway handles regular hours only: continuous orders (market, limit, midpoint peg) outside
  ``open_at <= now < close_at`` are refused (``SESSION_CLOSED``); pre-market interest for the open
  must be an auction-only type (MOO/LOO).
- NYSE closing cancels between 15:50 and 15:58 ("legitimate error", NYSE 7.35B(f)(2)) are made with
  the exchange directly; the gateway refuses them unless ``closing_error_cancel_until`` is set.
- NYSE closing offset and closing imbalance-offset orders: entry until 15:59:50 like floor D orders,
  cancels under the MOC/LOC rules. Nasdaq imbalance-only orders: entry and cancel until 15:58 (the
  LOC cut-off); Nasdaq offers no closing offset order.
- Nasdaq opening cancels follow the entry cut-offs (MOO 09:28, LOO 09:29:30), like its close; NYSE
  opening orders may be entered and cancelled until the scheduled open (the exchange accepts them
  until the DMM opens the stock, which the gateway does not wait for).
- Listing exchanges without verified tables: NYSE American and IEX and Cboe BZX use the NYSE
  windows; NYSE Arca uses them with its opening cut-off at 09:29 (its one-minute auction imbalance
  freeze), the stricter of the two. Any other listing exchange falls back to the NYSE windows, the
  stricter closing cut-offs. All of these are settings.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Protocol

from gateway.domain.orders import OrderType
from gateway.domain.vocabulary import Vocabulary

AUCTION_ENTRY_CUTOFF = "AUCTION_ENTRY_CUTOFF"
AUCTION_NOT_AVAILABLE = "AUCTION_NOT_AVAILABLE"
AUCTION_CROSS_IN_PROGRESS = "AUCTION_CROSS_IN_PROGRESS"
AUCTION_CANCEL_CUTOFF = "AUCTION_CANCEL_CUTOFF"
SESSION_CLOSED = "SESSION_CLOSED"


class SessionTimes(Protocol):
    """The times of one trading session; ``gateway.domain.calendar.Session`` satisfies it.

    ``close_shift`` is ``close_at`` minus 16:00 of the trade date: zero on a full day, -3 hours on
    a 13:00 early close. Datetimes are tz-aware (America/New_York).
    """

    @property
    def trade_date(self) -> date: ...

    @property
    def open_at(self) -> datetime: ...

    @property
    def close_at(self) -> datetime: ...

    @property
    def early_close(self) -> bool: ...

    @property
    def close_shift(self) -> timedelta: ...


class Phase(Vocabulary):
    """Scheduled phase of the listing exchange's day."""

    PRE_OPEN = "PRE_OPEN"
    OPENING_AUCTION = "OPENING_AUCTION"
    CONTINUOUS = "CONTINUOUS"
    CLOSING_AUCTION = "CLOSING_AUCTION"
    CLOSED = "CLOSED"


@dataclass(frozen=True, slots=True)
class Cutoffs:
    """Entry and cancel/modify cut-offs of one auction order type (exclusive)."""

    entry_until: time
    cancel_until: time


@dataclass(frozen=True, slots=True)
class AuctionWindows:
    """Auction order windows of one listing exchange; ``None`` = type not offered there.

    Closing times are on the 16:00 clock and shift with an early close; opening times never do.
    ``opening_auction_start`` defaults to the latest opening entry cut-off (Nasdaq 09:29:30; on
    NYSE it is the open, so no OPENING_AUCTION phase); ``closing_auction_start`` to the MOC entry
    cut-off.
    """

    market_on_open: Cutoffs | None = Cutoffs(time(9, 30), time(9, 30))
    limit_on_open: Cutoffs | None = Cutoffs(time(9, 30), time(9, 30))
    market_on_close: Cutoffs | None = Cutoffs(time(15, 50), time(15, 50))
    limit_on_close: Cutoffs | None = Cutoffs(time(15, 50), time(15, 50))
    imbalance_only: Cutoffs | None = Cutoffs(time(15, 59, 50), time(15, 50))
    closing_offset: Cutoffs | None = Cutoffs(time(15, 59, 50), time(15, 50))
    # NYSE 7.35B(f)(2): cancels to correct a legitimate error until 15:58. None = the gateway
    # refuses them; such cancels are made with the exchange directly.
    closing_error_cancel_until: time | None = None
    # NYSE disseminates opening imbalance information from 08:00 and closing from 15:50.
    opening_imbalance_from: time | None = time(8, 0)
    closing_imbalance_from: time | None = time(15, 50)
    opening_auction_start: time | None = None
    closing_auction_start: time | None = None

    def cutoffs(self, order_type: OrderType) -> Cutoffs | None:
        """Return the cut-offs of an auction-only type; None for continuous or unoffered types."""
        return {
            OrderType.MARKET_ON_OPEN: self.market_on_open,
            OrderType.LIMIT_ON_OPEN: self.limit_on_open,
            OrderType.MARKET_ON_CLOSE: self.market_on_close,
            OrderType.LIMIT_ON_CLOSE: self.limit_on_close,
            OrderType.IMBALANCE_ONLY: self.imbalance_only,
            OrderType.CLOSING_OFFSET: self.closing_offset,
        }.get(order_type)


NYSE_WINDOWS = AuctionWindows()
NASDAQ_WINDOWS = AuctionWindows(
    market_on_open=Cutoffs(time(9, 28), time(9, 28)),  # Nasdaq 4752: MOO before 09:28
    limit_on_open=Cutoffs(time(9, 29, 30), time(9, 29, 30)),
    market_on_close=Cutoffs(time(15, 55), time(15, 55)),  # Nasdaq 4754: no cancel after cut-off
    limit_on_close=Cutoffs(time(15, 58), time(15, 58)),
    imbalance_only=Cutoffs(time(15, 58), time(15, 58)),
    closing_offset=None,
    opening_imbalance_from=time(9, 25),
    closing_imbalance_from=time(15, 50),
)
NYSE_ARCA_WINDOWS = AuctionWindows(
    market_on_open=Cutoffs(time(9, 29), time(9, 29)),
    limit_on_open=Cutoffs(time(9, 29), time(9, 29)),
)

DEFAULT_WINDOWS: dict[str, AuctionWindows] = {
    "NYSE": NYSE_WINDOWS,
    "NASDAQ": NASDAQ_WINDOWS,
    "NYSE_ARCA": NYSE_ARCA_WINDOWS,
    "NYSE_AMERICAN": NYSE_WINDOWS,
    "BATS_BZX": NYSE_WINDOWS,
    "IEX": NYSE_WINDOWS,
}


@dataclass(frozen=True, slots=True)
class AuctionSettings:
    """Windows per listing exchange, the fallback for others, and the closing-cross grace."""

    windows: Mapping[str, AuctionWindows] = field(default_factory=lambda: dict(DEFAULT_WINDOWS))
    fallback: AuctionWindows = NYSE_WINDOWS
    # Between the close and the closing print: no new orders and no cancels of any type.
    cross_grace: timedelta = timedelta(seconds=10)

    def __post_init__(self) -> None:
        if self.cross_grace < timedelta(0):
            raise ValueError("cross_grace must not be negative")

    def windows_for(self, listing_exchange: str) -> AuctionWindows:
        """Return the exchange's windows (name case-insensitive), or the fallback."""
        return self.windows.get(listing_exchange.strip().upper(), self.fallback)

    def opening_auction_start(self, listing_exchange: str, session: SessionTimes) -> datetime:
        """Return when the phase becomes OPENING_AUCTION (never after the open)."""
        w = self.windows_for(listing_exchange)
        if w.opening_auction_start is not None:
            start = _opening(session, w.opening_auction_start)
        else:
            cuts = [c.entry_until for c in (w.market_on_open, w.limit_on_open) if c is not None]
            start = _opening(session, max(cuts)) if cuts else session.open_at
        return min(start, session.open_at)

    def closing_auction_start(self, listing_exchange: str, session: SessionTimes) -> datetime:
        """Return when the phase becomes CLOSING_AUCTION: the MOC entry cut-off by default."""
        w = self.windows_for(listing_exchange)
        if w.closing_auction_start is not None:
            start = _closing(session, w.closing_auction_start)
        elif w.market_on_close is not None:
            start = _closing(session, w.market_on_close.entry_until)
        else:
            start = session.close_at
        return min(start, session.close_at)


DEFAULT_SETTINGS = AuctionSettings()


def _opening(session: SessionTimes, at: time) -> datetime:
    # Opening times never shift.
    return datetime.combine(session.trade_date, at, tzinfo=session.open_at.tzinfo)


def _closing(session: SessionTimes, at: time) -> datetime:
    # Close-relative: an early close moves every closing time by the same offset.
    wall = datetime.combine(session.trade_date, at, tzinfo=session.close_at.tzinfo)
    return wall + session.close_shift


@dataclass(frozen=True, slots=True)
class _TypeTimes:
    auction_at: datetime
    entry_cutoff: datetime
    cancel_cutoff: datetime


@dataclass(frozen=True, slots=True)
class Window:
    """The answers of the rules below for every instant between two consecutive schedule instants.

    Every rule compares ``now`` with the schedule's instants through half-open intervals
    (``start <= now < end``), so the answers are constant between two consecutive instants: they
    are worked out once per interval, from the rules themselves, instead of on every order.
    """

    phase: Phase
    entry: Mapping[OrderType, str | None]
    no_cancel: bool


@dataclass(frozen=True, slots=True)
class _Schedule:
    """Every instant the rules below compare against, for one session and listing exchange."""

    session: SessionTimes
    opening_auction_start: datetime
    closing_auction_start: datetime
    cross_end: datetime
    types: Mapping[OrderType, _TypeTimes]
    # Sorted distinct instants, and the answers per interval between them (filled when asked).
    instants: tuple[datetime, ...] = ()
    windows: list[Window | None] = field(default_factory=list)

    def window(self, now: datetime) -> Window:
        """The answers at ``now`` (an instant on the session's trade date)."""
        index = bisect_right(self.instants, now)
        found = self.windows[index]
        if found is None:
            # Any instant of the interval gives the answers; its first one, or just before the
            # first schedule instant for the interval that has no start.
            at = self.instants[index - 1] if index else self.instants[0] - _BEFORE
            found = self.windows[index] = Window(
                self._phase_at(at),
                {t: self._entry_at(t, at) for t in OrderType},
                self._no_cancel_at(at),
            )
        return found

    def _phase_at(self, now: datetime) -> Phase:
        if now < self.opening_auction_start:
            return Phase.PRE_OPEN
        if now < self.session.open_at:
            return Phase.OPENING_AUCTION
        if now < self.closing_auction_start:
            return Phase.CONTINUOUS
        if now < self.cross_end:
            return Phase.CLOSING_AUCTION
        return Phase.CLOSED

    def _entry_at(self, order_type: OrderType, now: datetime) -> str | None:
        session = self.session
        if session.close_at <= now < self.cross_end:
            return AUCTION_CROSS_IN_PROGRESS
        if not order_type.is_auction_only:
            return None if session.open_at <= now < session.close_at else SESSION_CLOSED
        times = self.types.get(order_type)
        if times is None or now >= times.auction_at:
            return AUCTION_NOT_AVAILABLE
        if now >= times.entry_cutoff:
            return AUCTION_ENTRY_CUTOFF
        return None

    def _no_cancel_at(self, now: datetime) -> bool:
        if self.session.close_at <= now < self.cross_end:
            return True
        return any(t.cancel_cutoff <= now < t.auction_at for t in self.types.values())


_BEFORE = timedelta(microseconds=1)
_SCHEDULES: dict[tuple[int, str, int], tuple[AuctionSettings, _Schedule]] = {}
_MAX_SCHEDULES = 4096


def _schedule(settings: AuctionSettings, listing_exchange: str, session: SessionTimes) -> _Schedule:
    # The pre-trade check asks these questions for every order: compute each session's instants
    # once per listing exchange instead of on every call.
    # Keyed by identity (hashing a session costs more than the rules): the engine keeps one
    # session object per day, and a stale entry of a reused id is caught by the checks.
    key = (id(settings), listing_exchange, id(session))
    found = _SCHEDULES.get(key)
    if found is not None and found[0] is settings and found[1].session is session:
        return found[1]
    windows = settings.windows_for(listing_exchange)
    types = {}
    for order_type in OrderType:
        cuts = windows.cutoffs(order_type)
        if cuts is None:
            continue
        if order_type.is_opening_auction:
            auction_at = session.open_at
            entry, cancel = (
                _opening(session, cuts.entry_until),
                _opening(session, cuts.cancel_until),
            )
        else:
            auction_at = session.close_at
            entry, cancel = (
                _closing(session, cuts.entry_until),
                _closing(session, cuts.cancel_until),
            )
            if windows.closing_error_cancel_until is not None:
                cancel = max(cancel, _closing(session, windows.closing_error_cancel_until))
        types[order_type] = _TypeTimes(auction_at, entry, cancel)
    opening_start = settings.opening_auction_start(listing_exchange, session)
    closing_start = settings.closing_auction_start(listing_exchange, session)
    cross_end = session.close_at + settings.cross_grace
    instants = {opening_start, closing_start, cross_end, session.open_at, session.close_at}
    for times in types.values():
        instants.update((times.auction_at, times.entry_cutoff, times.cancel_cutoff))
    ordered = tuple(sorted(instants))
    schedule = _Schedule(
        session,
        opening_start,
        closing_start,
        cross_end,
        types,
        ordered,
        [None] * (len(ordered) + 1),
    )
    if len(_SCHEDULES) >= _MAX_SCHEDULES:
        _SCHEDULES.clear()
    _SCHEDULES[key] = (settings, schedule)
    return schedule


def window_at(
    listing_exchange: str,
    now: datetime,
    session: SessionTimes,
    settings: AuctionSettings = DEFAULT_SETTINGS,
) -> Window:
    """Return every scheduled answer at ``now`` at once: phase, entry refusal per order type and
    whether some order cannot be cancelled (what the functions below return one by one)."""
    return _schedule(settings, listing_exchange, session).window(now)


def scheduled_phase(
    now: datetime,
    session: SessionTimes,
    listing_exchange: str,
    settings: AuctionSettings = DEFAULT_SETTINGS,
) -> Phase:
    """Return the scheduled phase at ``now`` (an instant on the session's trade date).

    CLOSING_AUCTION lasts from the closing auction start through the cross grace after the close;
    continuous trading goes on until the close within it.
    """
    return _schedule(settings, listing_exchange, session).window(now).phase


def entry_refusal(
    order_type: OrderType,
    listing_exchange: str,
    now: datetime,
    session: SessionTimes,
    settings: AuctionSettings = DEFAULT_SETTINGS,
) -> str | None:
    """Return why an order of ``order_type`` may not be entered now, or None when it may.

    Reasons: ``AUCTION_CROSS_IN_PROGRESS`` (closing cross, any type), ``AUCTION_NOT_AVAILABLE``
    (type not offered by the listing exchange, or its auction is over), ``AUCTION_ENTRY_CUTOFF``
    (after the type's entry cut-off, before its auction), ``SESSION_CLOSED`` (continuous order
    outside regular hours).
    """
    return _schedule(settings, listing_exchange, session).window(now).entry[order_type]


def cancel_refusal(
    order_type: OrderType,
    listing_exchange: str,
    now: datetime,
    session: SessionTimes,
    settings: AuctionSettings = DEFAULT_SETTINGS,
) -> str | None:
    """Return why a working order of ``order_type`` may not be cancelled or modified now.

    Reasons: ``AUCTION_CROSS_IN_PROGRESS`` (closing cross, any type) and ``AUCTION_CANCEL_CUTOFF``
    (auction-only order between its cancel cut-off and its auction). Outside those windows the
    cancel is allowed; after its auction an auction order no longer works, so there is nothing to
    protect.
    """
    schedule = _schedule(settings, listing_exchange, session)
    if session.close_at <= now < schedule.cross_end:
        return AUCTION_CROSS_IN_PROGRESS
    times = schedule.types.get(order_type)
    if times is None:
        return None
    return AUCTION_CANCEL_CUTOFF if times.cancel_cutoff <= now < times.auction_at else None


def no_cancel_window(
    listing_exchange: str,
    now: datetime,
    session: SessionTimes,
    settings: AuctionSettings = DEFAULT_SETTINGS,
) -> bool:
    """Return whether some order in a symbol of this listing exchange cannot be cancelled now.

    This drives the NO_CANCEL restriction: True during the closing cross and whenever any
    auction-only type is past its cancel cut-off and before its auction.
    """
    return _schedule(settings, listing_exchange, session).window(now).no_cancel


def imbalance_expected(
    listing_exchange: str,
    now: datetime,
    session: SessionTimes,
    settings: AuctionSettings = DEFAULT_SETTINGS,
) -> bool:
    """Return whether the listing exchange publishes auction imbalance data at ``now``."""
    windows = settings.windows_for(listing_exchange)
    opening, closing = windows.opening_imbalance_from, windows.closing_imbalance_from
    return (opening is not None and _opening(session, opening) <= now < session.open_at) or (
        closing is not None and _closing(session, closing) <= now < session.close_at
    )
