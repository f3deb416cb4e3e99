"""Order vocabulary shared by the pre-trade checks, the router and the journal."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from gateway.domain.vocabulary import Vocabulary


class Side(Vocabulary):
    BUY = "BUY"
    SELL = "SELL"
    SELL_SHORT = "SELL_SHORT"
    SELL_SHORT_EXEMPT = "SELL_SHORT_EXEMPT"

    @property
    def is_buy(self) -> bool:
        return self is Side.BUY

    @property
    def is_sell(self) -> bool:
        return self is not Side.BUY

    @property
    def is_short(self) -> bool:
        return self in (Side.SELL_SHORT, Side.SELL_SHORT_EXEMPT)


class OrderType(Vocabulary):
    MARKET = "MARKET"
    LIMIT = "LIMIT"
    MARKET_ON_OPEN = "MARKET_ON_OPEN"
    LIMIT_ON_OPEN = "LIMIT_ON_OPEN"
    MARKET_ON_CLOSE = "MARKET_ON_CLOSE"
    LIMIT_ON_CLOSE = "LIMIT_ON_CLOSE"
    IMBALANCE_ONLY = "IMBALANCE_ONLY"
    CLOSING_OFFSET = "CLOSING_OFFSET"
    MIDPOINT_PEG = "MIDPOINT_PEG"

    @property
    def has_limit(self) -> bool:
        """Whether the type carries a limit price (required for these, optional for a peg)."""
        return self in _LIMIT_TYPES

    @property
    def is_auction_only(self) -> bool:
        return self in _OPENING_AUCTION_TYPES or self in _CLOSING_AUCTION_TYPES

    @property
    def is_opening_auction(self) -> bool:
        return self in _OPENING_AUCTION_TYPES

    @property
    def is_closing_auction(self) -> bool:
        return self in _CLOSING_AUCTION_TYPES


_LIMIT_TYPES = frozenset(
    {OrderType.LIMIT, OrderType.LIMIT_ON_OPEN, OrderType.LIMIT_ON_CLOSE, OrderType.IMBALANCE_ONLY}
)
_OPENING_AUCTION_TYPES = frozenset({OrderType.MARKET_ON_OPEN, OrderType.LIMIT_ON_OPEN})
_CLOSING_AUCTION_TYPES = frozenset(
    {
        OrderType.MARKET_ON_CLOSE,
        OrderType.LIMIT_ON_CLOSE,
        OrderType.IMBALANCE_ONLY,
        OrderType.CLOSING_OFFSET,
    }
)


@dataclass(frozen=True, slots=True)
class Reason:
    """Why something was refused or restricted: a stable code, a message for people, and the
    request field it is about when there is one ("order.limit_price")."""

    code: str
    message: str
    field: str = ""


class TimeInForce(Vocabulary):
    DAY = "DAY"
    IOC = "IOC"
    FOK = "FOK"
    GTC = "GTC"


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """An order as the OMS intends to send it, already validated at the edge.

    ``limit_price`` is set exactly when ``order_type.has_limit`` (optional cap for MIDPOINT_PEG).
    ``venue`` is empty when the router chooses.
    """

    client_order_id: str
    account: str
    symbol: str
    side: Side
    order_type: OrderType
    quantity: int
    limit_price: Decimal | None = None
    time_in_force: TimeInForce = TimeInForce.DAY
    venue: str = ""
    post_only: bool = False
    hidden: bool = False
    intermarket_sweep: bool = False
