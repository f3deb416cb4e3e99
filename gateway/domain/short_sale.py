"""Short sale circuit breaker (Reg SHO Rule 201): the trigger, the restriction and the price test.

Rule 201(b)(1): once a stock trades at or below 90% of its prior close on the listing market during
regular hours, short sales may execute or display only at a price above the current national best
bid, for the rest of that day and all of the next trading day, unless marked short exempt. Long
sales and buys are never affected.

Decisions:
- The trigger compares with the exact 90% value (20.00 -> 18.00; 20.01 -> 18.009, so 18.00 triggers
  and 18.01 does not); no rounding to the tick.
- A short market order is refused while restricted (``SHORT_SALE_MARKET_ORDER``); so is any
  unpriced short: MOO, MOC, and a closing offset without a limit.
- Priced auction orders (LOO, LOC, imbalance-only, priced closing offset) take the same price test
  as limit orders against the NBB at entry: the gateway cannot know the auction price in advance.
- A midpoint peg is priced at the mid, which is above the NBB whenever the market is not locked or
  crossed; its limit cap cannot lower it below the mid. It passes unless the NBO given is at or
  below the NBB.
- With no national best bid the price test cannot be met: ``SHORT_SALE_NO_NBB`` (a setting).
- The restriction carried over to the next day comes from reference data or from persisted state
  (``carry_over``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from gateway.domain.auctions import SessionTimes
from gateway.domain.orders import OrderType, Side

SHORT_SALE_PRICE_TEST = "SHORT_SALE_PRICE_TEST"
SHORT_SALE_MARKET_ORDER = "SHORT_SALE_MARKET_ORDER"
SHORT_SALE_NO_NBB = "SHORT_SALE_NO_NBB"


@dataclass(frozen=True, slots=True)
class ShortSaleSettings:
    """How the gateway applies Rule 201."""

    trigger_fraction: Decimal = Decimal("0.90")
    refuse_market_short_while_restricted: bool = True
    refuse_when_no_nbb: bool = True

    def __post_init__(self) -> None:
        if not Decimal(0) < self.trigger_fraction < Decimal(1):
            raise ValueError("trigger_fraction must be between 0 and 1")


DEFAULT_SETTINGS = ShortSaleSettings()


def trigger_price(prior_close: Decimal, settings: ShortSaleSettings = DEFAULT_SETTINGS) -> Decimal:
    """Return the exact price at or below which a trade triggers the restriction (20.00 -> 18.00).

    Rule 201(b)(1)(i): a decline of 10% or more from the prior day's closing price.
    """
    if prior_close <= 0:
        raise ValueError("prior close must be positive")
    return prior_close * settings.trigger_fraction


class ShortSaleState:
    """The Rule 201 restriction of one symbol (mutable; the engine owns one per symbol)."""

    __slots__ = ("_settings", "restricted_until", "triggered_on")

    def __init__(
        self,
        settings: ShortSaleSettings = DEFAULT_SETTINGS,
        restricted_until: date | None = None,
    ) -> None:
        self._settings = settings
        self.restricted_until = restricted_until
        self.triggered_on: date | None = None

    def carry_over(self, until: date) -> None:
        """Apply a restriction known from reference data or persisted state, through ``until``."""
        if self.restricted_until is None or until > self.restricted_until:
            self.restricted_until = until

    def on_trade(
        self,
        price: Decimal,
        at: datetime,
        prior_close: Decimal,
        session: SessionTimes,
        next_trading_day: date,
    ) -> bool:
        """Record a last-sale price; return True when the restriction is newly set or extended.

        Only regular-hours trades count (``session.open_at <= at < session.close_at``). A trigger
        restricts the rest of the trade date and all of ``next_trading_day`` (Rule 201(b)(1)(ii));
        a re-trigger while restricted extends the restriction only when that is later.
        """
        if next_trading_day <= session.trade_date:
            raise ValueError("next_trading_day must come after the session's trade date")
        if not session.open_at <= at < session.close_at:
            return False
        if price > trigger_price(prior_close, self._settings):
            return False
        if self.restricted_until is not None and self.restricted_until >= next_trading_day:
            return False
        self.restricted_until = next_trading_day
        self.triggered_on = session.trade_date
        return True

    def is_restricted(self, trade_date: date) -> bool:
        """Whether the restriction is in force on ``trade_date`` (the trigger day or later)."""
        return self.restricted_until is not None and trade_date <= self.restricted_until


# The positional order (side ... restricted, settings) is the pre-trade checks' calling convention.
def check_short_sale(  # noqa: PLR0917
    side: Side,
    order_type: OrderType,
    limit_price: Decimal | None,
    national_best_bid: Decimal | None,
    restricted: bool,
    settings: ShortSaleSettings = DEFAULT_SETTINGS,
    *,
    national_best_offer: Decimal | None = None,
) -> list[str]:
    """Return every Rule 201 reason to refuse the order now; empty when it may go.

    Only ``SELL_SHORT`` is checked, and only while ``restricted``; ``SELL_SHORT_EXEMPT``, long
    sales and buys are never refused. ``national_best_offer`` matters only for a midpoint peg.
    """
    if not restricted or side is not Side.SELL_SHORT:
        return []
    reasons: list[str] = []
    if order_type is OrderType.MIDPOINT_PEG:
        # Priced at the mid: above the NBB unless the market is locked or crossed.
        if (
            national_best_bid is not None
            and national_best_offer is not None
            and national_best_offer <= national_best_bid
        ):
            reasons.append(SHORT_SALE_PRICE_TEST)
    elif limit_price is None:
        if settings.refuse_market_short_while_restricted:
            reasons.append(SHORT_SALE_MARKET_ORDER)
    elif national_best_bid is not None and limit_price <= national_best_bid:
        # Rule 201(b)(1)(i): only at a price above the current national best bid.
        reasons.append(SHORT_SALE_PRICE_TEST)
    if national_best_bid is None and settings.refuse_when_no_nbb:
        reasons.append(SHORT_SALE_NO_NBB)
    return reasons
