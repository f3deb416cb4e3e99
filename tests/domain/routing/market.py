"""Building blocks for routing tests: a fixed time, the default venues and quote books."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal

from gateway.domain.fill_probability import FillProbabilityModel
from gateway.domain.orders import OrderRequest, OrderType, Side
from gateway.domain.quotes import QuoteBook, VenueQuote
from gateway.domain.router import Router, RouterSettings
from gateway.domain.venue_health import VenueHealth
from gateway.domain.venues import VenueSet, load_venues

NOW = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)  # 11:00 ET
VENUES = ("NASDAQ", "NYSE", "NYSE_ARCA", "IEX", "BATS_BZX", "EDGX")

Row = tuple[str, str | None, int, str | None, int]


def default_venues() -> VenueSet:
    return load_venues(trade_date=NOW.date())


def book(rows: Iterable[Row], at: datetime = NOW) -> QuoteBook:
    """Rows of (venue, bid, bid size, ask, ask size)."""
    result = QuoteBook()
    for venue, bid, bid_size, ask, ask_size in rows:
        result.update(
            VenueQuote(
                venue,
                Decimal(bid) if bid is not None else None,
                bid_size,
                Decimal(ask) if ask is not None else None,
                ask_size,
                at,
            )
        )
    return result


def flat_book(
    bid: str = "100.00", ask: str = "100.02", size: int = 500, at: datetime = NOW
) -> QuoteBook:
    """Every venue at the same NBBO with the same size."""
    return book(((v, bid, size, ask, size) for v in VENUES), at)


def router(venues: VenueSet, settings: RouterSettings | None = None) -> Router:
    return Router(settings or RouterSettings(), FillProbabilityModel(venues), VenueHealth(venues))


def order(
    quantity: int = 100,
    limit: str | None = "100.02",
    side: Side = Side.BUY,
    order_type: OrderType | None = None,
    symbol: str = "AAPL",
    **extra: object,
) -> OrderRequest:
    kind = order_type or (OrderType.LIMIT if limit is not None else OrderType.MARKET)
    return OrderRequest(
        "c-1",
        "ACC",
        symbol,
        side,
        kind,
        quantity,
        Decimal(limit) if limit is not None else None,
        **extra,  # type: ignore[arg-type]
    )
