"""Costs of a fill: commission, venue fee or rebate, SEC Section 31 fee and FINRA TAF.

Regulatory fees apply to sales only (long sales and short sales alike) and come from dated tables
(market-rules section 7): the entry in force on a trade date is the latest whose ``effective`` date
is on or before it. Regulators change these by order, so the tables are data, replaceable in
``FeeSettings``.

Rounding (named, explicit):

- SEC Section 31 (member method): proceeds x rate, truncated at 5 decimals, then rounded up to the
  cent. Brokers apply it per trade or per day (``SecFeeMode``). In per-day mode each fill carries
  the increase of the day's fee, fee(day's sales so far incl. this fill) - fee(before it), so the
  fills of a day sum exactly to the daily fee.
- FINRA TAF: shares x rate rounded up to the cent, at least $0.01, then capped per trade.
- Commission: rounded half-up to the cent, then the schedule's minimum and maximum.
- Venue fee: exact per-share amounts, quantized to 6 decimals (the journal's precision) half-even.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal
from typing import Protocol, TypeVar

from gateway.domain.fills import Fill, FillKind, Liquidity
from gateway.domain.prices import ONE_DOLLAR, PENNY, round_up, truncate
from gateway.domain.vocabulary import Vocabulary

ZERO = Decimal(0)
MICRO = Decimal("0.000001")
_FIVE_PLACES = Decimal("0.00001")
_PER_MILLION = Decimal(1_000_000)
_BASIS_POINT = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class SecFeeRate:
    """SEC Section 31 fee rate in dollars per $1,000,000 of sale proceeds, from ``effective``."""

    effective: date
    per_million: Decimal


@dataclass(frozen=True, slots=True)
class TafRate:
    """FINRA Trading Activity Fee per share sold, with its per-trade maximum, from ``effective``."""

    effective: date
    per_share: Decimal
    max_per_trade: Decimal


# market-rules section 7 (SEC fee rate advisories).
SEC_FEE_RATES: tuple[SecFeeRate, ...] = (
    SecFeeRate(date(2024, 5, 22), Decimal("27.80")),
    SecFeeRate(date(2025, 5, 14), Decimal("0.00")),
    SecFeeRate(date(2026, 4, 4), Decimal("20.60")),
)
# market-rules section 7 (FINRA By-Laws Schedule A, Section 1: TAF for covered equity sales).
TAF_RATES: tuple[TafRate, ...] = (
    TafRate(date(2024, 1, 1), Decimal("0.000166"), Decimal("8.30")),
    TafRate(date(2026, 1, 1), Decimal("0.000195"), Decimal("9.79")),
)


class SecFeeMode(Vocabulary):
    """Whether the Section 31 rounding applies to each trade or to a day's sales (broker choice)."""

    PER_TRADE = "PER_TRADE"
    PER_DAY = "PER_DAY"


class CommissionKind(Vocabulary):
    PER_SHARE = "PER_SHARE"
    BASIS_POINTS = "BASIS_POINTS"


@dataclass(frozen=True, slots=True)
class CommissionSchedule:
    """An account's commission: ``rate`` dollars per share, or basis points of the fill's value.

    ``minimum`` and ``maximum`` (dollars, ``None`` = none) apply per fill.
    """

    kind: CommissionKind = CommissionKind.PER_SHARE
    rate: Decimal = ZERO
    minimum: Decimal = ZERO
    maximum: Decimal | None = None

    def commission(self, quantity: int, price: Decimal) -> Decimal:
        """Return the commission on ``quantity`` shares at ``price``, in cents."""
        if self.kind is CommissionKind.PER_SHARE:
            raw = self.rate * quantity
        else:
            raw = price * quantity * self.rate * _BASIS_POINT
        amount = raw.quantize(PENNY, rounding=ROUND_HALF_UP)
        amount = max(amount, self.minimum)
        if self.maximum is not None:
            amount = min(amount, self.maximum)
        return amount


NO_COMMISSION = CommissionSchedule()


class VenueFeeParameters(Protocol):
    """What a venue profile must say about fees; the router's ``VenueFees`` satisfies it.

    Positive take fee = the taker pays; positive make rebate = the maker is paid (inverted venues
    have both negative). Per-share amounts apply at or above $1.00; below, the rates are a fraction
    of the price (Rule 610(c) shape).
    """

    @property
    def take_fee_per_share(self) -> Decimal: ...
    @property
    def make_rebate_per_share(self) -> Decimal: ...
    @property
    def take_fee_rate_below_1(self) -> Decimal: ...
    @property
    def make_rebate_rate_below_1(self) -> Decimal: ...
    @property
    def routed_fee_per_share(self) -> Decimal: ...
    @property
    def auction_fee_per_share(self) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class VenueFeeSchedule:
    """Plain fee parameters of one venue (same meaning as ``VenueFeeParameters``)."""

    take_fee_per_share: Decimal = ZERO
    make_rebate_per_share: Decimal = ZERO
    take_fee_rate_below_1: Decimal = ZERO
    make_rebate_rate_below_1: Decimal = ZERO
    routed_fee_per_share: Decimal = ZERO
    auction_fee_per_share: Decimal = ZERO


def venue_fee(
    fees: VenueFeeParameters, liquidity: Liquidity, quantity: int, price: Decimal
) -> Decimal:
    """Return what the venue charges for the fill: positive = fee paid, negative = rebate."""
    at_or_above_dollar = price >= ONE_DOLLAR
    if liquidity is Liquidity.REMOVED:
        per_share = (
            fees.take_fee_per_share if at_or_above_dollar else price * fees.take_fee_rate_below_1
        )
    elif liquidity is Liquidity.ADDED:
        rebate = (
            fees.make_rebate_per_share
            if at_or_above_dollar
            else price * fees.make_rebate_rate_below_1
        )
        per_share = -rebate
    elif liquidity is Liquidity.ROUTED:
        per_share = fees.routed_fee_per_share
    else:
        per_share = fees.auction_fee_per_share
    return (per_share * quantity).quantize(MICRO, rounding=ROUND_HALF_EVEN)


_Rate = TypeVar("_Rate", SecFeeRate, TafRate)


def _in_force(table: Sequence[_Rate], trade_date: date) -> _Rate | None:
    index = bisect_right(table, trade_date, key=_effective)
    return table[index - 1] if index else None


def _effective(entry: SecFeeRate | TafRate) -> date:
    return entry.effective


def sec_fee(
    proceeds: Decimal, trade_date: date, table: Sequence[SecFeeRate] = SEC_FEE_RATES
) -> Decimal:
    """Section 31 fee on ``proceeds`` of sales (member method: truncate at 5 places, round up)."""
    entry = _in_force(table, trade_date)
    if entry is None or proceeds <= 0:
        return ZERO.quantize(PENNY)
    exact = proceeds * entry.per_million / _PER_MILLION
    return round_up(truncate(exact, _FIVE_PLACES), PENNY)


def finra_taf(shares: int, trade_date: date, table: Sequence[TafRate] = TAF_RATES) -> Decimal:
    """FINRA TAF on ``shares`` sold in one trade: round up to the cent, at least $0.01, capped."""
    entry = _in_force(table, trade_date)
    if entry is None or shares <= 0:
        return ZERO.quantize(PENNY)
    fee = max(round_up(entry.per_share * shares, PENNY), PENNY)
    return min(fee, entry.max_per_trade)


@dataclass(frozen=True, slots=True)
class FeeBreakdown:
    """The costs of one fill; positive = paid, negative venue fee = rebate received."""

    commission: Decimal
    venue_fee: Decimal
    sec_fee: Decimal
    finra_taf: Decimal

    @property
    def regulatory(self) -> Decimal:
        return self.sec_fee + self.finra_taf

    @property
    def total(self) -> Decimal:
        return self.commission + self.venue_fee + self.sec_fee + self.finra_taf


NO_FEES = FeeBreakdown(ZERO, ZERO, ZERO, ZERO)


@dataclass(frozen=True, slots=True)
class FeeSettings:
    """Fee tables and modes, parsed once at start."""

    sec_fee_mode: SecFeeMode = SecFeeMode.PER_TRADE
    sec_fee_rates: tuple[SecFeeRate, ...] = SEC_FEE_RATES
    taf_rates: tuple[TafRate, ...] = TAF_RATES
    default_commission: CommissionSchedule = NO_COMMISSION
    commissions: Mapping[str, CommissionSchedule] = field(default_factory=dict)

    def commission_for(self, account: str) -> CommissionSchedule:
        return self.commissions.get(account, self.default_commission)


def fill_fees(
    fill: Fill,
    venue_fees: VenueFeeParameters,
    settings: FeeSettings,
    *,
    prior_day_sales: Decimal = ZERO,
) -> FeeBreakdown:
    """Return the fees of one fill.

    ``prior_day_sales`` is the account's sale proceeds earlier the same trade date; it matters only
    in per-day Section 31 mode (the fill then carries the increase of the day's fee).
    """
    commission = settings.commission_for(fill.account).commission(fill.quantity, fill.price)
    venue = venue_fee(venue_fees, fill.liquidity, fill.quantity, fill.price)
    if not fill.side.is_sell:
        return FeeBreakdown(commission, venue, ZERO, ZERO)
    trade_date = fill.trade_date
    proceeds = fill.notional
    if settings.sec_fee_mode is SecFeeMode.PER_TRADE:
        sec = sec_fee(proceeds, trade_date, settings.sec_fee_rates)
    else:
        sec = sec_fee(prior_day_sales + proceeds, trade_date, settings.sec_fee_rates) - sec_fee(
            prior_day_sales, trade_date, settings.sec_fee_rates
        )
    taf = finra_taf(fill.quantity, trade_date, settings.taf_rates)
    return FeeBreakdown(commission, venue, sec, taf)


class FeeCalculator:
    """Fees for a stream of fills; remembers each account's sales per day for per-day SEC mode.

    Feed it fills in journal order. Busted or corrected fills are not taken back here: their fees
    stay as charged on the original record, and a bust record itself costs nothing. P&L
    takes the fees of the effective fills only.
    """

    __slots__ = ("_day_sales", "_settings")

    def __init__(self, settings: FeeSettings) -> None:
        self._settings = settings
        self._day_sales: dict[tuple[str, date], Decimal] = {}

    def fees(self, fill: Fill, venue_fees: VenueFeeParameters) -> FeeBreakdown:
        """Return the fees of ``fill`` and, for a sale, add it to the account's day.

        A bust costs nothing itself (zero fees); a correction is charged like a new fill.
        """
        if fill.kind is FillKind.BUST:
            return NO_FEES
        if not fill.side.is_sell or self._settings.sec_fee_mode is SecFeeMode.PER_TRADE:
            return fill_fees(fill, venue_fees, self._settings)
        day = (fill.account, fill.trade_date)
        prior = self._day_sales.get(day, ZERO)
        self._day_sales[day] = prior + fill.notional
        return fill_fees(fill, venue_fees, self._settings, prior_day_sales=prior)
