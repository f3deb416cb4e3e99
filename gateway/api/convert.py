"""Proto <-> domain conversion and request validation: the only module that knows both sides.

Parsers collect every problem of a request as ``FieldViolation``s (named by field path, e.g.
``order.limit_price``) and raise one ``InvalidArgument`` listing them all.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import TypeVar

from google.protobuf.timestamp_pb2 import Timestamp

from gateway._pb.execgw.v1 import common_pb2 as common
from gateway.domain.orders import OrderRequest, OrderType, Side, TimeInForce
from gateway.errors import FieldViolation, InvalidArgument

__all__ = ["FieldViolation", "InvalidArgument", "Problems"]

MAX_ID_LENGTH = 64
MAX_DECIMAL_LENGTH = 32
MAX_DECIMAL_PLACES = 6
MAX_QUANTITY = 1_000_000_000
MAX_TIMESTAMP_SECONDS = 253_402_300_799  # 9999-12-31T23:59:59Z, the last second datetime holds
# Larger than any US equity price or account cash figure; rejects "1e400" and the like.
MAX_MAGNITUDE = Decimal("1e12")
_SYMBOL = re.compile(r"[A-Z][A-Z0-9./-]{0,15}")
_VENUE = re.compile(r"[A-Z][A-Z0-9_]{0,15}")
_IDENTIFIER = re.compile(r"[\x21-\x7e]{1,64}")  # printable ASCII, no spaces

E = TypeVar("E", bound=Enum)

Problems = list[FieldViolation]


def raise_if(problems: Problems) -> None:
    if problems:
        raise InvalidArgument(problems)


# --- scalars -----------------------------------------------------------------------------------


def identifier(value: str, field: str, problems: Problems, *, required: bool = True) -> str:
    """An id chosen by the client (order id, account, exec id): printable ASCII, 1-64 chars."""
    if not value:
        if required:
            problems.append(FieldViolation(field, "is required"))
        return value
    if len(value) > MAX_ID_LENGTH:
        problems.append(FieldViolation(field, f"is longer than {MAX_ID_LENGTH} characters"))
    elif not _IDENTIFIER.fullmatch(value):
        problems.append(FieldViolation(field, "must be printable ASCII without spaces"))
    return value


# Values that passed their checks before (bounded): prices, tickers and venues repeat, and the
# checks (regular expressions, Decimal parsing) cost more than the rest of a pre-trade decision.
_SEEN_SYMBOLS: set[str] = set()
_SEEN_VENUES: set[str] = set()
_SEEN_PRICES: dict[str, Decimal] = {}
_MAX_SEEN = 65_536


def _remember(seen: set[str], value: str) -> None:
    if len(seen) >= _MAX_SEEN:
        seen.clear()
    seen.add(value)


def symbol(value: str, field: str, problems: Problems) -> str:
    if value in _SEEN_SYMBOLS:
        return value
    if not value:
        problems.append(FieldViolation(field, "is required"))
    elif len(value) > 16:
        problems.append(FieldViolation(field, "is longer than 16 characters"))
    elif not _SYMBOL.fullmatch(value):
        problems.append(
            FieldViolation(field, "must be an upper-case ticker (letters, digits, '.', '/', '-')")
        )
    else:
        _remember(_SEEN_SYMBOLS, value)
    return value


def venue(value: str, field: str, problems: Problems, *, required: bool = False) -> str:
    if value in _SEEN_VENUES:
        return value
    if not value:
        if required:
            problems.append(FieldViolation(field, "is required"))
        return value
    if len(value) > 16 or not _VENUE.fullmatch(value):
        problems.append(
            FieldViolation(field, "must be a venue code of up to 16 upper-case letters, digits, _")
        )
    else:
        _remember(_SEEN_VENUES, value)
    return value


def decimal(
    text: str,
    field: str,
    problems: Problems,
    *,
    required: bool = True,
    positive: bool = True,
) -> Decimal | None:
    """A decimal string: finite, at most 6 decimal places, below 10^12 in size, and > 0 unless
    ``positive`` is False."""
    if positive:
        seen = _SEEN_PRICES.get(text)
        if seen is not None:
            return seen
    if not text:
        if required:
            problems.append(FieldViolation(field, "is required"))
        return None
    if len(text) > MAX_DECIMAL_LENGTH:
        problems.append(FieldViolation(field, f"is longer than {MAX_DECIMAL_LENGTH} characters"))
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        problems.append(FieldViolation(field, f"is not a decimal number: {text!r}"))
        return None
    if not value.is_finite():
        problems.append(FieldViolation(field, f"must be a finite number, not {text!r}"))
        return None
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -MAX_DECIMAL_PLACES:
        problems.append(FieldViolation(field, f"has more than {MAX_DECIMAL_PLACES} decimal places"))
        return None
    if positive and value <= 0:
        problems.append(FieldViolation(field, "must be greater than zero"))
        return None
    if abs(value) >= MAX_MAGNITUDE:
        problems.append(FieldViolation(field, f"must be less than {MAX_MAGNITUDE:,.0f} in size"))
        return None
    if positive:
        if len(_SEEN_PRICES) >= _MAX_SEEN:
            _SEEN_PRICES.clear()
        _SEEN_PRICES[text] = value
    return value


def quantity(value: int, field: str, problems: Problems) -> int:
    if value <= 0:
        problems.append(FieldViolation(field, "must be a whole number of shares greater than zero"))
    elif value > MAX_QUANTITY:
        problems.append(FieldViolation(field, f"must be at most {MAX_QUANTITY:,} shares"))
    return value


def enum_value(
    value: int,
    mapping: Mapping[int, E],
    field: str,
    problems: Problems,
    *,
    default: E | None = None,
) -> E | None:
    """Map a proto enum number; 0 (UNSPECIFIED) takes ``default`` or is a missing field."""
    if value == 0:
        if default is None:
            problems.append(FieldViolation(field, "is required"))
        return default
    found = mapping.get(value)
    if found is None:
        problems.append(FieldViolation(field, f"unknown value {value}"))
    return found


def trade_date(text: str, field: str, problems: Problems, *, required: bool = True) -> date | None:
    if not text:
        if required:
            problems.append(FieldViolation(field, "is required"))
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        problems.append(FieldViolation(field, f"must be a date YYYY-MM-DD, not {text!r}"))
        return None


def timestamp(
    value: Timestamp, present: bool, field: str, problems: Problems, *, required: bool = True
) -> datetime | None:
    if not present:
        if required:
            problems.append(FieldViolation(field, "is required"))
        return None
    if value.seconds <= 0:
        problems.append(FieldViolation(field, "must be after 1970-01-01"))
        return None
    if value.seconds > MAX_TIMESTAMP_SECONDS or not 0 <= value.nanos < 1_000_000_000:
        problems.append(FieldViolation(field, "must be a valid time before 10000-01-01"))
        return None
    return value.ToDatetime(tzinfo=UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_timestamp(value: datetime, into: Timestamp) -> None:
    """Set ``into`` to the aware ``value`` (a third of ``Timestamp.FromDatetime``'s cost)."""
    if value.tzinfo is None:
        into.FromDatetime(value)  # naive: taken as UTC, as protobuf does
        return
    since = value - _EPOCH
    # timedelta keeps seconds and microseconds non-negative, as Timestamp wants its nanos.
    into.seconds = since.days * 86_400 + since.seconds
    into.nanos = since.microseconds * 1_000


# --- enums -------------------------------------------------------------------------------------

SIDES: Mapping[int, Side] = {
    common.SIDE_BUY: Side.BUY,
    common.SIDE_SELL: Side.SELL,
    common.SIDE_SELL_SHORT: Side.SELL_SHORT,
    common.SIDE_SELL_SHORT_EXEMPT: Side.SELL_SHORT_EXEMPT,
}
ORDER_TYPES: Mapping[int, OrderType] = {
    common.ORDER_TYPE_MARKET: OrderType.MARKET,
    common.ORDER_TYPE_LIMIT: OrderType.LIMIT,
    common.ORDER_TYPE_MARKET_ON_OPEN: OrderType.MARKET_ON_OPEN,
    common.ORDER_TYPE_LIMIT_ON_OPEN: OrderType.LIMIT_ON_OPEN,
    common.ORDER_TYPE_MARKET_ON_CLOSE: OrderType.MARKET_ON_CLOSE,
    common.ORDER_TYPE_LIMIT_ON_CLOSE: OrderType.LIMIT_ON_CLOSE,
    common.ORDER_TYPE_IMBALANCE_ONLY: OrderType.IMBALANCE_ONLY,
    common.ORDER_TYPE_CLOSING_OFFSET: OrderType.CLOSING_OFFSET,
    common.ORDER_TYPE_MIDPOINT_PEG: OrderType.MIDPOINT_PEG,
}
TIMES_IN_FORCE: Mapping[int, TimeInForce] = {
    common.TIME_IN_FORCE_DAY: TimeInForce.DAY,
    common.TIME_IN_FORCE_IOC: TimeInForce.IOC,
    common.TIME_IN_FORCE_FOK: TimeInForce.FOK,
    common.TIME_IN_FORCE_GTC: TimeInForce.GTC,
}


# --- messages ----------------------------------------------------------------------------------


_PATHS: dict[tuple[type, str], object] = {}
P = TypeVar("P")


def field_paths(kind: type[P], parent: str) -> P:
    """The field paths of ``kind``'s fields under ``parent`` ("order.limit_price"), built once
    per parent: a request's fields are named in its errors, and formatting the names on every
    call costs more than the checks. ``kind`` is a dataclass whose field names are the message's.
    """
    found = _PATHS.get((kind, parent))
    if found is None:
        names = kind.__dataclass_fields__  # type: ignore[attr-defined]
        found = _PATHS[(kind, parent)] = kind(*(f"{parent}.{name}" for name in names))
    return found  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class _OrderFields:
    client_order_id: str
    account: str
    symbol: str
    side: str
    order_type: str
    quantity: str
    time_in_force: str
    limit_price: str
    venue: str


def order(message: common.Order, field: str, problems: Problems) -> OrderRequest | None:
    """Parse an ``Order``; returns None (with problems recorded) when it is invalid."""
    before = len(problems)
    paths = field_paths(_OrderFields, field)
    client_order_id = identifier(message.client_order_id, paths.client_order_id, problems)
    account = identifier(message.account, paths.account, problems)
    ticker = symbol(message.symbol, paths.symbol, problems)
    side = enum_value(message.side, SIDES, paths.side, problems)
    order_type = enum_value(message.order_type, ORDER_TYPES, paths.order_type, problems)
    shares = quantity(message.quantity, paths.quantity, problems)
    tif = enum_value(
        message.time_in_force,
        TIMES_IN_FORCE,
        paths.time_in_force,
        problems,
        default=TimeInForce.DAY,
    )
    limit_price: Decimal | None = None
    price_field = paths.limit_price
    if order_type is not None:
        if order_type.has_limit:
            limit_price = decimal(message.limit_price, price_field, problems)
        elif order_type is OrderType.MIDPOINT_PEG:
            limit_price = decimal(message.limit_price, price_field, problems, required=False)
        elif message.limit_price:
            problems.append(
                FieldViolation(price_field, f"must be empty for {order_type.value} orders")
            )
    destination = venue(message.venue, paths.venue, problems)
    if len(problems) != before:
        return None
    assert side is not None and order_type is not None and tif is not None
    return OrderRequest(  # positional: keywords cost a quarter more on the hot path
        client_order_id,
        account,
        ticker,
        side,
        order_type,
        shares,
        limit_price,
        tif,
        destination,
        message.post_only,
        message.hidden,
        message.intermarket_sweep,
    )


def require_order(message: common.Order, present: bool, field: str = "order") -> OrderRequest:
    """Parse a required ``Order`` field or raise InvalidArgument naming every problem."""
    problems: Problems = []
    if not present:
        raise InvalidArgument.field(field, "is required")
    parsed = order(message, field, problems)
    raise_if(problems)
    assert parsed is not None
    return parsed
