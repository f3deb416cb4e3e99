"""P&L attribution over a date range, and implementation shortfall per parent order.

Signs. Every ``PnlBreakdown`` part is a contribution to P&L in dollars: positive is money made,
negative a cost (commission and fees paid are negative, rebates positive).

What adds up. ``net = gross_realized + gross_unrealized + commission + exchange_fees +
regulatory_fees + borrow``. The execution-quality parts (slippage, market impact, timing cost,
venue selection savings) explain where the gross came from; they are already inside it (a fill
bought above the arrival price realises less), so adding them to net would count them twice.

Rounding, so the parts add up to the cent. Each part of each row is computed exactly and rounded
once to the cent (half-even); a row's ``net`` is the sum of its rounded parts, and every total is
the sum of the rounded rows, part by part. Sums of cents are exact, so rows add to the total and
parts add to net, to the cent, by construction. The same rule holds for shortfalls: each part
rounded, ``total`` = the sum of the rounded parts.

Definitions (``s`` = +1 for a buy, -1 for a sale; ``q`` shares; ``p`` the fill price):

- gross realised: from the position fold (average cost or FIFO, per account setting) over the
  effective fills in journal order, on the closing fill's row; gross unrealised:
  ``U(end) - U(start)`` of each position, ``U = quantity x mark - cost basis``, at the
  ``end_marks`` and (for what was open before the range) the ``start_marks``, on a row with no
  venue dated the end date;
- slippage: ``s x q x (arrival mid - p)``, arrival mid = the mid when the order was decided;
- market impact (markout): ``s x q x (mid horizon after the fill - mid at the fill)``; negative
  when the price moved against the position after the fill (adverse selection);
- timing cost: ``s x q x (arrival mid - mid at the order's first fill)``;
- venue selection savings: ``s x q x (baseline price - p) + q x baseline fee - venue fee``.

Implementation shortfall (Perold), costs positive, decision price d = arrival mid, release price
r = mid at the first fill (d without market data), end price e = mid when the order ended:
``delay = s x filled x (r - d)``, ``trading = s x sum q x (p - r)``,
``opportunity = s x (ordered - filled) x (e - d)``, ``fees`` = the fills' fees.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Protocol

from gateway.domain.borrow import BorrowAccrual
from gateway.domain.fees import NO_FEES, FeeBreakdown
from gateway.domain.fills import Fill, FillKey
from gateway.domain.orders import Side
from gateway.domain.positions import CostMethod, PositionBook, PositionKey, PositionLedger
from gateway.domain.prices import PENNY
from gateway.domain.vocabulary import Vocabulary
from gateway.errors import FailedPrecondition

ZERO = Decimal(0)
DEFAULT_MARKOUT_HORIZON = timedelta(seconds=60)


class PnlGrouping(Vocabulary):
    ACCOUNT = "ACCOUNT"
    SYMBOL = "SYMBOL"
    VENUE = "VENUE"
    DAY = "DAY"


DEFAULT_GROUPING = (PnlGrouping.ACCOUNT, PnlGrouping.SYMBOL)


class MidSource(Protocol):
    """Historical NBBO midpoints (from market data), for markouts and timing."""

    def mid_at(self, symbol: str, at: datetime) -> Decimal | None: ...


@dataclass(frozen=True, slots=True)
class ParentOrder:
    """An order as decided: the arrival price is the mid when it was decided."""

    client_order_id: str
    account: str
    symbol: str
    side: Side
    ordered_quantity: int
    decision_time: datetime
    arrival_mid: Decimal
    end_mid: Decimal | None = None


@dataclass(frozen=True, slots=True)
class VenueBaseline:
    """What the routing baseline would have achieved for a fill, per share."""

    price: Decimal
    fee_per_share: Decimal


@dataclass(frozen=True, slots=True)
class PnlBreakdown:
    """Signed P&L contributions in dollars (see the module docstring)."""

    gross_realized: Decimal = ZERO
    gross_unrealized: Decimal = ZERO
    commission: Decimal = ZERO
    exchange_fees: Decimal = ZERO
    regulatory_fees: Decimal = ZERO
    borrow: Decimal = ZERO
    slippage: Decimal = ZERO
    market_impact: Decimal = ZERO
    timing_cost: Decimal = ZERO
    venue_selection_savings: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        """Gross P&L after costs; excludes the execution-quality parts (already in gross)."""
        return (
            self.gross_realized
            + self.gross_unrealized
            + self.commission
            + self.exchange_fees
            + self.regulatory_fees
            + self.borrow
        )

    def __add__(self, other: PnlBreakdown) -> PnlBreakdown:
        return PnlBreakdown(*(getattr(self, n) + getattr(other, n) for n in _PARTS))

    def rounded(self) -> PnlBreakdown:
        """Every part rounded to the cent, half-even."""
        return PnlBreakdown(*(_cents(getattr(self, n)) for n in _PARTS))


_PARTS = tuple(f.name for f in fields(PnlBreakdown))


def _cents(value: Decimal) -> Decimal:
    return value.quantize(PENNY, rounding=ROUND_HALF_EVEN)


@dataclass(frozen=True, slots=True)
class PnlRow:
    """One group; dimensions not grouped by are empty (``trade_date`` None)."""

    account: str
    symbol: str
    venue: str
    trade_date: date | None
    pnl: PnlBreakdown


@dataclass(frozen=True, slots=True)
class ShortfallBreakdown:
    """Implementation shortfall of one parent order, costs positive, each part in cents."""

    client_order_id: str
    account: str
    symbol: str
    side: Side
    ordered_quantity: int
    filled_quantity: int
    decision_price: Decimal
    delay_cost: Decimal
    trading_cost: Decimal
    opportunity_cost: Decimal
    fees: Decimal

    @property
    def total(self) -> Decimal:
        return self.delay_cost + self.trading_cost + self.opportunity_cost + self.fees


@dataclass(frozen=True, slots=True)
class PnlReport:
    rows: tuple[PnlRow, ...]
    total: PnlBreakdown
    shortfalls: tuple[ShortfallBreakdown, ...] = ()


@dataclass(frozen=True, slots=True)
class PnlRequest:
    """Everything an attribution needs; the journal records are all of them, in journal order."""

    start: date
    end: date
    records: tuple[Fill, ...]
    fees: Mapping[FillKey, FeeBreakdown]
    end_marks: Mapping[str, Decimal]
    start_marks: Mapping[str, Decimal] = field(default_factory=dict)
    group_by: Collection[PnlGrouping] = DEFAULT_GROUPING
    accounts: Collection[str] = ()
    symbols: Collection[str] = ()
    cost_methods: Mapping[str, CostMethod] = field(default_factory=dict)
    default_cost_method: CostMethod = CostMethod.AVERAGE
    borrow: tuple[BorrowAccrual, ...] = ()
    orders: Mapping[str, ParentOrder] = field(default_factory=dict)
    mids: MidSource | None = None
    baselines: Mapping[FillKey, VenueBaseline] = field(default_factory=dict)
    markout_horizon: timedelta = DEFAULT_MARKOUT_HORIZON
    include_shortfall: bool = False


_RowKey = tuple[str, str, str, date | None]


def _sign(side: Side) -> int:
    return 1 if side is Side.BUY else -1


class _Attribution:
    """Accumulates exact parts per group, then rounds (one instance per request)."""

    def __init__(self, request: PnlRequest) -> None:
        self.request = request
        self.grouping = frozenset(request.group_by or DEFAULT_GROUPING)
        self.groups: dict[_RowKey, PnlBreakdown] = {}
        self.first_fill_mid: dict[str, Decimal | None] = {}

    def wanted(self, account: str, symbol: str) -> bool:
        request = self.request
        return (not request.accounts or account in request.accounts) and (
            not request.symbols or symbol in request.symbols
        )

    def add(self, account: str, symbol: str, venue: str, day: date, part: PnlBreakdown) -> None:
        g = self.grouping
        key = (
            account if PnlGrouping.ACCOUNT in g else "",
            symbol if PnlGrouping.SYMBOL in g else "",
            venue if PnlGrouping.VENUE in g else "",
            day if PnlGrouping.DAY in g else None,
        )
        current = self.groups.get(key)
        self.groups[key] = part if current is None else current + part

    def fill_part(self, fill: Fill, realized: Decimal) -> PnlBreakdown:
        request = self.request
        fees = request.fees.get(fill.key, NO_FEES)
        s, q = _sign(fill.side), fill.quantity
        slippage = impact = timing = savings = ZERO
        order = request.orders.get(fill.client_order_id) if fill.client_order_id else None
        if order is not None:
            slippage = s * q * (order.arrival_mid - fill.price)
            first_mid = self.first_fill_mid.get(order.client_order_id)
            if first_mid is not None:
                timing = s * q * (order.arrival_mid - first_mid)
        mids = request.mids
        if mids is not None:
            at_fill = mids.mid_at(fill.symbol, fill.transaction_time)
            after = mids.mid_at(fill.symbol, fill.transaction_time + request.markout_horizon)
            if at_fill is not None and after is not None:
                impact = s * q * (after - at_fill)
        baseline = request.baselines.get(fill.key)
        if baseline is not None:
            savings = s * q * (baseline.price - fill.price) + q * baseline.fee_per_share
            savings -= fees.venue_fee
        return PnlBreakdown(
            gross_realized=realized,
            commission=-fees.commission,
            exchange_fees=-fees.venue_fee,
            regulatory_fees=-fees.regulatory,
            slippage=slippage,
            market_impact=impact,
            timing_cost=timing,
            venue_selection_savings=savings,
        )


def _first_fill_mids(effective: Iterable[Fill], request: PnlRequest) -> dict[str, Decimal | None]:
    """Mid at the first fill of each parent order (by transaction time)."""
    first: dict[str, Fill] = {}
    for fill in effective:
        if fill.client_order_id in request.orders:
            seen = first.get(fill.client_order_id)
            if seen is None or fill.transaction_time < seen.transaction_time:
                first[fill.client_order_id] = fill
    mids = request.mids
    return {
        order_id: mids.mid_at(fill.symbol, fill.transaction_time) if mids else None
        for order_id, fill in first.items()
    }


def attribute_pnl(request: PnlRequest) -> PnlReport:
    """Attribute P&L of ``request.start``..``request.end`` (inclusive trade dates).

    Busts and corrections known now apply: the records resolve to effective fills first.

    Raises:
        FailedPrecondition: MARK_MISSING when a position open at the end has no end mark, or
            one open before the start has no start mark.
    """
    book = PositionBook.replay(request.records, request.cost_methods, request.default_cost_method)
    work = _Attribution(request)
    effective = [f for f in book.all_effective_fills() if f.trade_date <= request.end]
    work.first_fill_mid = _first_fill_mids(effective, request)
    by_position: dict[PositionKey, list[Fill]] = {}
    for fill in effective:
        by_position.setdefault((fill.account, fill.symbol), []).append(fill)
    unmarked = []
    for (account, symbol), fills in sorted(by_position.items()):
        if not work.wanted(account, symbol):
            continue
        method = book.cost_method(account)
        ledger, opening = PositionLedger(method), PositionLedger(method)
        for fill in fills:
            day = fill.trade_date
            realized = ledger.apply(fill)
            if day < request.start:
                opening.apply(fill)
            else:
                work.add(account, symbol, fill.venue, day, work.fill_part(fill, realized))
        unrealized = ZERO
        for state, marks in ((ledger, request.end_marks), (opening, request.start_marks)):
            if state.quantity:
                mark = marks.get(symbol)
                if mark is None:
                    unmarked.append(symbol)
                    continue
                value = state.quantity * mark - state.cost_basis
                unrealized += value if state is ledger else -value
        if unrealized:
            work.add(account, symbol, "", request.end, PnlBreakdown(gross_unrealized=unrealized))
    if unmarked:
        raise FailedPrecondition(
            f"no mark for positions open at the start or end in {', '.join(sorted(set(unmarked)))}",
            reason="MARK_MISSING",
        )
    for accrual in request.borrow:
        if request.start <= accrual.accrual_date <= request.end and work.wanted(
            accrual.account, accrual.symbol
        ):
            work.add(
                accrual.account,
                accrual.symbol,
                "",
                accrual.accrual_date,
                PnlBreakdown(borrow=-accrual.amount),
            )
    rows = tuple(
        PnlRow(account, symbol, venue, day, part.rounded())
        for (account, symbol, venue, day), part in sorted(
            work.groups.items(), key=lambda item: (*item[0][:3], item[0][3] or date.min)
        )
    )
    total = sum((row.pnl for row in rows), PnlBreakdown())
    shortfalls = _shortfalls(effective, request, work) if request.include_shortfall else ()
    return PnlReport(rows, total, shortfalls)


def _shortfalls(
    effective: Iterable[Fill], request: PnlRequest, work: _Attribution
) -> tuple[ShortfallBreakdown, ...]:
    fills_of: dict[str, list[Fill]] = {}
    for fill in effective:
        if fill.client_order_id in request.orders and fill.trade_date >= request.start:
            fills_of.setdefault(fill.client_order_id, []).append(fill)
    result = []
    for order_id in sorted(fills_of):
        order = request.orders[order_id]
        if not work.wanted(order.account, order.symbol):
            continue
        fills = fills_of[order_id]
        result.append(shortfall(order, fills, request.fees, work.first_fill_mid.get(order_id)))
    return tuple(result)


def shortfall(
    order: ParentOrder,
    fills: Iterable[Fill],
    fees: Mapping[FillKey, FeeBreakdown],
    release_mid: Decimal | None = None,
) -> ShortfallBreakdown:
    """Decompose the implementation shortfall of one parent order (see the module docstring)."""
    s = _sign(order.side)
    decision = order.arrival_mid
    release = decision if release_mid is None else release_mid
    fills = list(fills)
    filled = sum(f.quantity for f in fills)
    trading = s * sum((f.quantity * (f.price - release) for f in fills), ZERO)
    unfilled = max(order.ordered_quantity - filled, 0)
    end = decision if order.end_mid is None else order.end_mid
    paid = sum((fees.get(f.key, NO_FEES).total for f in fills), ZERO)
    return ShortfallBreakdown(
        order.client_order_id,
        order.account,
        order.symbol,
        order.side,
        order.ordered_quantity,
        filled,
        decision,
        _cents(s * filled * (release - decision)),
        _cents(trading),
        _cents(s * unfilled * (end - decision)),
        _cents(paid),
    )
