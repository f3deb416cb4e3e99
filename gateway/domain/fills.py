"""Fills: the immutable execution reports the trade journal records.

A fill is identified by (venue, exec_id): FIX tag 17 is unique per venue. Busts and corrections are
new fills that name the execution they reverse or replace in ``corrects_exec_id`` (same venue);
nothing recorded is ever changed. Times are timezone-aware; the trade date is the date of the
transaction time in exchange time (America/New_York).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from gateway.domain.orders import Side
from gateway.domain.vocabulary import Vocabulary
from gateway.errors import FieldViolation, InvalidArgument

EXCHANGE_TIMEZONE = ZoneInfo("America/New_York")
# Venue and gateway clocks differ by milliseconds; a minute allows for a slow NTP sync, not more.
DEFAULT_MAX_FUTURE_SKEW = timedelta(seconds=60)


class Liquidity(Vocabulary):
    """Liquidity flag of a fill (FIX tag 851 family): decides the venue fee or rebate."""

    ADDED = "ADDED"
    REMOVED = "REMOVED"
    ROUTED = "ROUTED"
    AUCTION = "AUCTION"


class FillKind(Vocabulary):
    """A new execution, or a record that replaces (CORRECTION) or reverses (BUST) an earlier one."""

    NEW = "NEW"
    CORRECTION = "CORRECTION"
    BUST = "BUST"


FillKey = tuple[str, str]
"""(venue, exec_id): the journal's idempotency key."""


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution report as the OMS gives it (validated with ``validate_fill``)."""

    venue: str
    exec_id: str
    account: str
    symbol: str
    side: Side
    quantity: int
    price: Decimal
    liquidity: Liquidity
    transaction_time: datetime
    client_order_id: str = ""
    decision_id: str = ""
    kind: FillKind = FillKind.NEW
    corrects_exec_id: str = ""

    @property
    def key(self) -> FillKey:
        return (self.venue, self.exec_id)

    @property
    def corrects_key(self) -> FillKey:
        """Key of the fill a correction or bust refers to (same venue)."""
        return (self.venue, self.corrects_exec_id)

    @property
    def signed_quantity(self) -> int:
        """Shares bought (> 0) or sold, long or short (< 0)."""
        return self.quantity if self.side is Side.BUY else -self.quantity

    @property
    def notional(self) -> Decimal:
        """Unsigned value of the execution, exact."""
        return self.price * self.quantity

    @property
    def trade_date(self) -> date:
        return trade_date_of(self.transaction_time)


_TEXT_FIELDS = (
    "venue",
    "exec_id",
    "account",
    "symbol",
    "client_order_id",
    "decision_id",
    "corrects_exec_id",
)


def trade_date_of(moment: datetime) -> date:
    """Return the exchange-time (America/New_York) date of an aware ``moment``."""
    return moment.astimezone(EXCHANGE_TIMEZONE).date()


def validate_fill(
    fill: Fill,
    now: datetime,
    *,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
    field: str = "fill",
) -> tuple[FieldViolation, ...]:
    """Return every problem with ``fill``, each naming its field; empty when the fill is valid.

    ``now`` is the gateway's receive time (aware). A transaction time more than
    ``max_future_skew`` after it is refused: a venue cannot report an execution from the future.
    """
    problems: list[FieldViolation] = []

    def bad(name: str, description: str) -> None:
        problems.append(FieldViolation(f"{field}.{name}", description))

    for name in ("venue", "exec_id", "account", "symbol"):
        if not getattr(fill, name).strip():
            bad(name, "is required")
    # The audit chain's canonical form separates fields with a control character.
    for name in _TEXT_FIELDS:
        if not getattr(fill, name).isprintable():
            bad(name, "must not contain control characters")
    if not isinstance(fill.side, Side):
        bad("side", f"unknown side {fill.side!r}")
    if isinstance(fill.quantity, bool) or not isinstance(fill.quantity, int):
        bad("quantity", "must be a whole number of shares")
    elif fill.quantity <= 0:
        bad("quantity", f"must be positive, got {fill.quantity}")
    if not isinstance(fill.price, Decimal) or not fill.price.is_finite():
        bad("price", f"must be a finite decimal, got {fill.price!r}")
    elif fill.price <= 0:
        bad("price", f"must be positive, got {fill.price}")
    if not isinstance(fill.liquidity, Liquidity):
        bad("liquidity", f"unknown liquidity flag {fill.liquidity!r}")
    moment = fill.transaction_time
    if moment.tzinfo is None or moment.utcoffset() is None:
        bad("transaction_time", "must carry a timezone")
    elif moment - now > max_future_skew:
        bad("transaction_time", f"is {moment - now} in the future (at most {max_future_skew})")
    if fill.kind is FillKind.NEW:
        if fill.corrects_exec_id:
            bad("corrects_exec_id", "must be empty for a new fill")
    elif not fill.corrects_exec_id.strip():
        bad("corrects_exec_id", f"is required for a {fill.kind.value.lower()}")
    elif fill.corrects_exec_id == fill.exec_id:
        bad("corrects_exec_id", "must name another execution, not the record itself")
    return tuple(problems)


def require_valid_fill(
    fill: Fill,
    now: datetime,
    *,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
    field: str = "fill",
) -> Fill:
    """Return ``fill``, or raise InvalidArgument (reason INVALID_FILL) listing every problem."""
    problems = validate_fill(fill, now, max_future_skew=max_future_skew, field=field)
    if problems:
        raise InvalidArgument(problems, reason="INVALID_FILL")
    return fill


def same_content(a: Fill, b: Fill) -> bool:
    """Whether two reports describe the same execution (for idempotency conflict detection).

    Every field takes part. Prices compare as numbers ("10.5" == "10.50"); transaction times as
    instants (the same moment in two timezones is the same time).
    """
    return a == b


def differing_fields(a: Fill, b: Fill) -> tuple[str, ...]:
    """Names of the fields whose values differ, to explain a conflict."""
    return tuple(name for name in Fill.__dataclass_fields__ if getattr(a, name) != getattr(b, name))
