"""Limit Up-Limit Down: price bands, reference price, limit state and pause timing.

Implements the LULD Plan as amended through Amendment 18 (in force since 2020-02-24), as summarised
in market rules section 1. Every point the Plan leaves open is a field of ``LuldSettings``. Prices
are ``Decimal``; time is an argument (aware datetimes), never read from a clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from gateway.domain.calendar import Session
from gateway.domain.prices import PENNY, round_half_up
from gateway.domain.vocabulary import Vocabulary

_ZERO = Decimal(0)
_NO_TIME = timedelta(0)
_ONE = Decimal(1)
_TWO = Decimal(2)
_THREE_DOLLARS = Decimal("3.00")
_SEVENTY_FIVE_CENTS = Decimal("0.75")
_MIDDLE_BRACKET = Decimal("0.20")
_LOW_BRACKET_CAP = Decimal("0.15")
_LOW_BRACKET_FRACTION = Decimal("0.75")


class Tier(Vocabulary):
    """LULD tier of a symbol, from reference data."""

    TIER_1 = "TIER_1"  # S&P 500, Russell 1000 and selected ETPs
    TIER_2 = "TIER_2"  # every other NMS stock


class LimitState(Vocabulary):
    """Quote state of a symbol against its bands."""

    NONE = "NONE"
    LIMIT_UP = "LIMIT_UP"
    LIMIT_DOWN = "LIMIT_DOWN"
    STRADDLE = "STRADDLE"


class BandSource(Vocabulary):
    """Where a pair of bands came from."""

    COMPUTED = "COMPUTED"  # by this gateway, from the reference price
    PUBLISHED = "PUBLISHED"  # by the SIP, in a band message of the market data


_UPPER_BRACKET = {Tier.TIER_1: Decimal("0.05"), Tier.TIER_2: Decimal("0.10")}
_LIMIT_STATES = frozenset({LimitState.LIMIT_UP, LimitState.LIMIT_DOWN})


@dataclass(frozen=True, slots=True)
class LuldSettings:
    """The choices the Plan leaves to the gateway (each a "Decision" of market rules section 1)."""

    limit_state_timeout: timedelta = timedelta(seconds=15)
    pause_duration: timedelta = timedelta(minutes=5)
    pause_extension: timedelta = timedelta(minutes=5)
    no_reopen_window: timedelta = timedelta(minutes=10)
    closing_period: timedelta = timedelta(minutes=25)
    reference_window: timedelta = timedelta(minutes=5)
    reference_min_change: Decimal = Decimal("0.01")
    reference_min_age: timedelta = timedelta(seconds=30)
    lower_band_floor: Decimal = Decimal("0.01")
    published_bands_authoritative: bool = True

    def __post_init__(self) -> None:
        spans = [self.limit_state_timeout, self.pause_duration, self.pause_extension]
        spans += [self.closing_period, self.reference_window]
        if min(spans) <= _NO_TIME or min(self.no_reopen_window, self.reference_min_age) < _NO_TIME:
            raise ValueError(f"LULD durations must be positive (windows not negative): {self}")
        if self.reference_min_change <= _ZERO or self.lower_band_floor <= _ZERO:
            raise ValueError(f"reference_min_change and lower_band_floor must be positive: {self}")


DEFAULT_SETTINGS = LuldSettings()


@dataclass(frozen=True, slots=True)
class Bands:
    """Lower and upper price band of a symbol, and what they were derived from.

    Attributes:
        lower: Lower price band; a sell below it cannot execute.
        upper: Upper price band; a buy above it cannot execute.
        reference_price: The reference price the bands are centred on.
        parameter: The percentage parameter as a fraction (``Decimal("0.05")``); None for the
            sub-$0.75 dollar-width bracket and for published bands.
        source: Computed here or published by the SIP.
    """

    lower: Decimal
    upper: Decimal
    reference_price: Decimal
    parameter: Decimal | None
    source: BandSource

    def __post_init__(self) -> None:
        if self.lower > self.upper:
            raise ValueError(f"lower band {self.lower} is above upper band {self.upper}")

    def contains(self, price: Decimal) -> bool:
        """Return whether ``price`` lies within the bands (both ends included)."""
        return self.lower <= price <= self.upper

    def buy_limit_executable(self, limit: Decimal) -> bool:
        """Return whether a buy limit can execute now (LULD Plan VI: not above the upper band)."""
        return limit <= self.upper

    def sell_limit_executable(self, limit: Decimal) -> bool:
        """Return whether a sell limit can execute now (LULD Plan VI: not below the lower band)."""
        return limit >= self.lower


def doubles_in_closing_period(tier: Tier, prior_close: Decimal) -> bool:
    """Return whether the parameter doubles in the closing period for this tier and prior close.

    LULD Plan App. A (Amendment 18): Tier 1 always doubles; Tier 2 only with a prior close <= $3.00.
    """
    return tier is Tier.TIER_1 or prior_close <= _THREE_DOLLARS


def in_closing_period(
    now: datetime, session: Session, settings: LuldSettings = DEFAULT_SETTINGS
) -> bool:
    """Return whether ``now`` is in the closing period (15:35-16:00, or 12:35-13:00 early).

    LULD Plan App. A: the closing period is measured back from the session's actual close.
    """
    return session.close_at - settings.closing_period <= now < session.close_at


def percentage_parameter(
    tier: Tier, prior_close: Decimal, *, doubled: bool, leverage: Decimal = _ONE
) -> Decimal | None:
    """Return the percentage parameter as a fraction, or None for the sub-$0.75 dollar bracket.

    Args:
        tier: The symbol's tier.
        prior_close: The listing exchange's prior-day close; it fixes the bracket for the day.
        doubled: Whether ``now`` is in the closing period; doubling applies only where
            ``doubles_in_closing_period`` allows it.
        leverage: Leverage ratio of a leveraged ETP (its magnitude, e.g. 2 for a -2x fund).
    """
    _require_positive(prior_close=prior_close, leverage=leverage)
    if prior_close > _THREE_DOLLARS:
        base = _UPPER_BRACKET[tier]  # LULD Plan App. A: 5% Tier 1, 10% Tier 2
    elif prior_close >= _SEVENTY_FIVE_CENTS:
        base = _MIDDLE_BRACKET  # LULD Plan App. A: $0.75-$3.00 inclusive, 20% both tiers
    else:
        return None
    if doubled and doubles_in_closing_period(tier, prior_close):
        base *= _TWO
    return base * leverage  # LULD Plan App. A: leveraged ETPs multiply by the leverage ratio


def band_width(
    tier: Tier,
    prior_close: Decimal,
    reference_price: Decimal,
    *,
    doubled: bool,
    leverage: Decimal = _ONE,
) -> Decimal:
    """Return the unrounded distance of each band from the reference price."""
    _require_positive(reference_price=reference_price)
    parameter = percentage_parameter(tier, prior_close, doubled=doubled, leverage=leverage)
    if parameter is not None:
        return reference_price * parameter
    # LULD Plan App. A: below $0.75 the lesser of $0.15 or 75% of RP ($0.30 / 150% when doubled).
    factor = _TWO if doubled and doubles_in_closing_period(tier, prior_close) else _ONE
    cap = _LOW_BRACKET_CAP * factor
    return min(cap, reference_price * _LOW_BRACKET_FRACTION * factor) * leverage


def compute_bands(
    tier: Tier,
    prior_close: Decimal,
    reference_price: Decimal,
    *,
    doubled: bool,
    leverage: Decimal = _ONE,
    settings: LuldSettings = DEFAULT_SETTINGS,
) -> Bands:
    """Compute the bands around ``reference_price``.

    LULD Plan V: lower = RP - width, upper = RP + width, each to the nearest penny (half up,
    at every price level); a lower band at or below zero is floored at ``lower_band_floor``.
    """
    width = band_width(tier, prior_close, reference_price, doubled=doubled, leverage=leverage)
    lower = max(round_half_up(reference_price - width, PENNY), settings.lower_band_floor)
    # Only a reference price below half a cent could leave the upper band under the floor.
    upper = max(round_half_up(reference_price + width, PENNY), lower)
    parameter = percentage_parameter(tier, prior_close, doubled=doubled, leverage=leverage)
    return Bands(lower, upper, reference_price, parameter, BandSource.COMPUTED)


def published_bands(lower: Decimal, upper: Decimal, reference_price: Decimal) -> Bands:
    """Wrap the bands of a SIP band message; ``reference_price`` is the one in effect here."""
    return Bands(lower, upper, reference_price, None, BandSource.PUBLISHED)


def effective_bands(
    computed: Bands | None, published: Bands | None, settings: LuldSettings = DEFAULT_SETTINGS
) -> Bands | None:
    """Return the bands to enforce: published ones when authoritative or alone, else computed."""
    if published is not None and (settings.published_bands_authoritative or computed is None):
        return published
    return computed


class ReferencePrice:
    """The LULD reference price of one symbol, updated from eligible trades in O(1) amortised.

    LULD Plan V: the opening print (or the prior close when the stock opens on a quote) is the
    first RP; then the mean of the eligible trades of the last ``reference_window`` becomes the new
    RP when it differs by at least ``reference_min_change`` from the current one and the current
    one has been in effect for ``reference_min_age``. Every RP is held at the penny (half up), and
    the 1% test compares the penny-rounded mean with the current RP.

    Trades must arrive in (near) time order; the window is the half-open interval
    ``(at - reference_window, at]``. The engine owns one instance per symbol and decides which
    trades are eligible (the opening print too, when flagged eligible).
    """

    __slots__ = ("_current", "_settings", "_since", "_sum", "_window")

    def __init__(self, settings: LuldSettings = DEFAULT_SETTINGS) -> None:
        self._settings = settings
        self._window: deque[tuple[datetime, Decimal]] = deque()
        self._sum = _ZERO
        self._current: Decimal | None = None
        self._since: datetime | None = None

    @property
    def current(self) -> Decimal | None:
        """The reference price in effect, or None before the first one of the day."""
        return self._current

    @property
    def since(self) -> datetime | None:
        """When the current reference price took effect."""
        return self._since

    @property
    def has_window_trades(self) -> bool:
        """Whether any trade is still in the averaging window (as of the last add or evaluate)."""
        return bool(self._window)

    def set_opening(self, price: Decimal, at: datetime) -> None:
        """Start the day: the opening print, or the prior close if the stock opened on a quote."""
        self._restart(price, at)

    def set_reopening(self, price: Decimal, at: datetime) -> None:
        """Restart after a pause or halt: the reopening price is the new RP (LULD Plan V)."""
        self._restart(price, at)

    def add_trade(self, price: Decimal, at: datetime) -> bool:
        """Add an eligible trade and re-evaluate; return whether the reference price changed."""
        self._window.append((at, price))
        self._sum += price
        return self.evaluate(at)

    def evaluate(self, at: datetime) -> bool:
        """Expire old trades and apply a new reference price if due; return whether it changed."""
        window = self._window
        cutoff = at - self._settings.reference_window
        while window and window[0][0] <= cutoff:
            self._sum -= window.popleft()[1]
        if not window:
            self._sum = _ZERO  # no eligible trade in the window: the RP stays
            return False
        current, since = self._current, self._since
        if current is None or since is None or at - since < self._settings.reference_min_age:
            return False
        candidate = round_half_up(self._sum / len(window), PENNY)
        if abs(candidate - current) < current * self._settings.reference_min_change:
            return False
        self._current, self._since = candidate, at
        return True

    def _restart(self, price: Decimal, at: datetime) -> None:
        _require_positive(price=price)
        if at.utcoffset() is None:
            raise ValueError(f"at must be timezone-aware, got {at!r}")
        self._window.clear()
        self._sum = _ZERO
        self._current, self._since = round_half_up(price, PENNY), at


class LimitStateTracker:
    """Limit and straddle state of one symbol's national best bid and offer against its bands.

    LULD Plan VI: limit down when the NBO equals the lower band, limit up when the NBB equals the
    upper band; straddle when the NBB is below the lower band or the NBO above the upper band
    without a limit state. A bid above the upper band or an offer below the lower band is
    non-executable (LULD Plan VI): that side counts as absent here.
    """

    __slots__ = ("_since", "_state")

    def __init__(self) -> None:
        self._state = LimitState.NONE
        self._since: datetime | None = None

    @property
    def state(self) -> LimitState:
        """The state after the last evaluation."""
        return self._state

    @property
    def since(self) -> datetime | None:
        """When the current state was entered (None before the first change)."""
        return self._since

    def evaluate(
        self, best_bid: Decimal | None, best_offer: Decimal | None, bands: Bands, now: datetime
    ) -> LimitState:
        """Classify the NBBO against ``bands``; a change of state restarts ``since`` at ``now``."""
        lower, upper = bands.lower, bands.upper
        bid = best_bid if best_bid is not None and best_bid <= upper else None
        offer = best_offer if best_offer is not None and best_offer >= lower else None
        down = offer is not None and offer == lower
        up = bid is not None and bid == upper
        if down and up:
            # Crossed at both bands: keep a running limit state so its 15 s clock is not restarted.
            state = self._state if self._state in _LIMIT_STATES else LimitState.LIMIT_DOWN
        elif down:
            state = LimitState.LIMIT_DOWN
        elif up:
            state = LimitState.LIMIT_UP
        elif (bid is not None and bid < lower) or (offer is not None and offer > upper):
            state = LimitState.STRADDLE
        else:
            state = LimitState.NONE
        if state is not self._state:
            self._state, self._since = state, now
        return state

    def pause_inferred(self, now: datetime, settings: LuldSettings = DEFAULT_SETTINGS) -> bool:
        """Return whether a limit state has lasted ``limit_state_timeout`` (pause inferred).

        LULD Plan VII: a limit state not ended within 15 s leads to a trading pause; the gateway
        does not wait for the LUDP message. A straddle never infers a pause (LUDS is discretionary).
        """
        since = self._since
        return (
            self._state in _LIMIT_STATES
            and since is not None
            and now - since >= settings.limit_state_timeout
        )

    def reset(self) -> None:
        """Forget the state (after a pause, a halt, or new bands with no quote yet)."""
        self._state, self._since = LimitState.NONE, None


def pause_ends_at(
    declared_at: datetime, extensions: int = 0, settings: LuldSettings = DEFAULT_SETTINGS
) -> datetime:
    """Return when a pause extended ``extensions`` times may reopen (LULD Plan VII: 5 + 5n min)."""
    if extensions < 0:
        raise ValueError(f"extensions must not be negative, got {extensions}")
    return declared_at + settings.pause_duration + settings.pause_extension * extensions


def reopens_before_close(
    pause_declared_at: datetime, session: Session, settings: LuldSettings = DEFAULT_SETTINGS
) -> bool:
    """Return whether a pause declared then reopens in continuous trading.

    A pause declared in the last ``no_reopen_window`` of the session does not reopen: the stock goes
    to the closing auction (LULD Plan VII, market rules section 1 Decision).
    """
    return pause_declared_at < session.close_at - settings.no_reopen_window


def _require_positive(**values: Decimal) -> None:
    for name, value in values.items():
        if value <= _ZERO:
            raise ValueError(f"{name} must be positive, got {value}")
