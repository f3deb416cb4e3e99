"""Market data events as the feed handler publishes them, already validated at the edge.

Each event names its symbol (empty for index levels) and the time it happened at its source.
The market-state engine applies them in order; one that would corrupt state is refused whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from gateway.domain.luld import Tier
from gateway.domain.vocabulary import Vocabulary
from gateway.errors import ExecgwError


class TradeType(Vocabulary):
    REGULAR = "REGULAR"
    # Official opening print of the listing exchange: the first LULD reference price.
    OPENING = "OPENING"
    # Reopening print after a halt or pause: the new reference price, and trading resumes.
    REOPENING = "REOPENING"
    CLOSING = "CLOSING"


class ResumptionPhase(Vocabulary):
    # Quotes resume first; trading stays halted.
    QUOTES = "QUOTES"
    # Trading resumes through the listing exchange's reopening auction.
    TRADING = "TRADING"


@dataclass(frozen=True, slots=True)
class ReferenceData:
    symbol: str
    at: datetime
    tier: Tier
    listing_exchange: str
    prior_close: Decimal
    trade_date: date
    leverage: Decimal = Decimal(1)
    # Reg SHO Rule 201 restriction carried over from the previous trading day.
    short_sale_restricted: bool = False
    # Outside the LULD Plan (rights, warrants).
    luld_exempt: bool = False
    tick_size: Decimal | None = None


@dataclass(frozen=True, slots=True)
class QuoteUpdate:
    """Top of book of one venue; a side with no quote has price None and size 0."""

    symbol: str
    at: datetime
    venue: str
    bid_price: Decimal | None
    bid_size: int
    ask_price: Decimal | None
    ask_size: int


@dataclass(frozen=True, slots=True)
class TradeReport:
    symbol: str
    at: datetime
    venue: str
    price: Decimal
    quantity: int
    # Regular-way and flagged eligible by the feed (not odd lot, not out of sequence).
    eligible: bool
    trade_type: TradeType = TradeType.REGULAR


@dataclass(frozen=True, slots=True)
class HaltNotice:
    symbol: str
    at: datetime
    reason_code: str
    venue: str = ""
    expected_quote_resumption: datetime | None = None
    expected_trade_resumption: datetime | None = None


@dataclass(frozen=True, slots=True)
class ResumeNotice:
    symbol: str
    at: datetime
    reason_code: str
    phase: ResumptionPhase
    venue: str = ""


@dataclass(frozen=True, slots=True)
class BandNotice:
    """LULD bands published by the SIP: authoritative over computed ones."""

    symbol: str
    at: datetime
    lower: Decimal
    upper: Decimal


@dataclass(frozen=True, slots=True)
class IndexUpdate:
    at: datetime
    index: str
    level: Decimal
    prior_close: Decimal | None = None
    symbol: str = ""


FeedEvent = (
    ReferenceData | QuoteUpdate | TradeReport | HaltNotice | ResumeNotice | BandNotice | IndexUpdate
)


class EventRefused(ExecgwError, ValueError):
    """An event the engine will not apply; ``reason`` is a stable code. State is unchanged."""

    reason = "EVENT_REFUSED"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message, reason=reason)
