"""Journal proto <-> domain conversion: fills in; acknowledgements, positions and fees out.

The edge checks what it can judge from the message alone (``check_fill``), then builds the domain
``Fill`` and lets the domain's ``validate_fill`` judge the rest (a transaction time from the
future, control characters); every problem is named by its field path. An unspecified liquidity
flag is taken as REMOVED: the taker fee is the conservative cost when the OMS does not say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from gateway._pb.execgw.v1 import common_pb2 as common
from gateway._pb.execgw.v1 import journal_pb2 as pb
from gateway.api import convert, status
from gateway.domain.fees import FeeBreakdown
from gateway.domain.fills import Fill, FillKind, Liquidity, validate_fill
from gateway.domain.pnl import DEFAULT_GROUPING, PnlBreakdown, PnlGrouping, PnlReport
from gateway.domain.positions import CostMethod, Position
from gateway.domain.reconciliation import (
    BreakKind,
    Statement,
    StatementCash,
    StatementPosition,
)
from gateway.errors import ExecgwError, InvalidArgument
from gateway.trade_journal import PnlQuery, Recorded
from storage.reconciliation_runs import ReconciliationRun

LIQUIDITY: Mapping[int, Liquidity] = {
    common.LIQUIDITY_ADDED: Liquidity.ADDED,
    common.LIQUIDITY_REMOVED: Liquidity.REMOVED,
    common.LIQUIDITY_ROUTED: Liquidity.ROUTED,
    common.LIQUIDITY_AUCTION: Liquidity.AUCTION,
}
KINDS: Mapping[int, FillKind] = {
    pb.FILL_KIND_NEW: FillKind.NEW,
    pb.FILL_KIND_CORRECTION: FillKind.CORRECTION,
    pb.FILL_KIND_BUST: FillKind.BUST,
}
COST_METHODS: Mapping[CostMethod, int] = {
    CostMethod.AVERAGE: pb.COST_METHOD_AVERAGE,
    CostMethod.FIFO: pb.COST_METHOD_FIFO,
}
_SIDE_NUMBERS = {side: number for number, side in convert.SIDES.items()}
_LIQUIDITY_NUMBERS = {flag: number for number, flag in LIQUIDITY.items()}
_KIND_NUMBERS = {kind: number for number, kind in KINDS.items()}


@dataclass(frozen=True, slots=True)
class _FillFields:
    """The field paths of a ``Fill``'s fields under one parent field, built once per parent."""

    venue: str
    exec_id: str
    account: str
    symbol: str
    side: str
    quantity: str
    price: str
    liquidity: str
    transaction_time: str
    client_order_id: str
    decision_id: str
    kind: str
    corrects_exec_id: str


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# datetime's range ends with year 9999; a later timestamp cannot be a fill's.
_MAX_SECONDS = int((datetime(9999, 12, 31, tzinfo=UTC) - _EPOCH).total_seconds())
_SIX_PLACES = Decimal("0.000001")


def check_fill(fill: pb.Fill, field: str, problems: convert.Problems) -> Decimal | None:
    """Check the fields of a fill that the edge can judge alone; return the parsed price."""
    paths = convert.field_paths(_FillFields, field)
    convert.venue(fill.venue, paths.venue, problems, required=True)
    convert.identifier(fill.exec_id, paths.exec_id, problems)
    convert.identifier(fill.account, paths.account, problems)
    convert.symbol(fill.symbol, paths.symbol, problems)
    if fill.side not in convert.SIDES:
        convert.enum_value(fill.side, convert.SIDES, paths.side, problems)
    convert.quantity(fill.quantity, paths.quantity, problems)
    price = convert.decimal(fill.price, paths.price, problems)
    if fill.liquidity and fill.liquidity not in LIQUIDITY:
        problems.append(convert.FieldViolation(paths.liquidity, f"unknown value {fill.liquidity}"))
    if not fill.HasField("transaction_time"):
        problems.append(convert.FieldViolation(paths.transaction_time, "is required"))
    elif fill.transaction_time.seconds <= 0:
        problems.append(convert.FieldViolation(paths.transaction_time, "must be after 1970-01-01"))
    elif fill.transaction_time.seconds > _MAX_SECONDS:
        problems.append(convert.FieldViolation(paths.transaction_time, "must be before 9999-12-31"))
    kind = fill.kind
    if kind:
        if kind not in KINDS:
            problems.append(convert.FieldViolation(paths.kind, f"unknown value {kind}"))
        elif kind != pb.FILL_KIND_NEW and not fill.corrects_exec_id:
            problems.append(
                convert.FieldViolation(
                    paths.corrects_exec_id, "is required for corrections and busts"
                )
            )
    if fill.client_order_id:
        convert.identifier(fill.client_order_id, paths.client_order_id, problems)
    if fill.decision_id:
        convert.identifier(fill.decision_id, paths.decision_id, problems)
    if fill.corrects_exec_id:
        convert.identifier(fill.corrects_exec_id, paths.corrects_exec_id, problems)
    return price


def fill_from_proto(message: pb.Fill, now: datetime, field: str = "fill") -> Fill:
    """The domain fill of ``message``, or InvalidArgument (INVALID_FILL) naming each field."""
    problems: convert.Problems = []
    price = check_fill(message, field, problems)
    if problems:
        raise InvalidArgument(problems, reason="INVALID_FILL")
    assert price is not None
    moment = message.transaction_time
    fill = Fill(
        message.venue,
        message.exec_id,
        message.account,
        message.symbol,
        convert.SIDES[message.side],
        message.quantity,
        price,
        LIQUIDITY.get(message.liquidity, Liquidity.REMOVED),
        # Timestamp.ToDatetime costs several times this; nanoseconds are truncated the same way.
        _EPOCH + timedelta(seconds=moment.seconds, microseconds=moment.nanos // 1000),
        message.client_order_id,
        message.decision_id,
        KINDS.get(message.kind, FillKind.NEW),
        message.corrects_exec_id,
    )
    found = validate_fill(fill, now, field=field)
    if found:
        raise InvalidArgument(found, reason="INVALID_FILL")
    return fill


def fill_to_proto(fill: Fill, into: pb.Fill) -> None:
    into.venue = fill.venue
    into.exec_id = fill.exec_id
    into.account = fill.account
    into.symbol = fill.symbol
    into.side = _SIDE_NUMBERS[fill.side]  # type: ignore[assignment]  # enum number
    into.quantity = fill.quantity
    into.price = str(fill.price)
    into.liquidity = _LIQUIDITY_NUMBERS[fill.liquidity]  # type: ignore[assignment]
    convert.to_timestamp(fill.transaction_time, into.transaction_time)
    into.client_order_id = fill.client_order_id
    into.decision_id = fill.decision_id
    into.kind = _KIND_NUMBERS[fill.kind]  # type: ignore[assignment]  # enum number
    into.corrects_exec_id = fill.corrects_exec_id


def fees_to_proto(fees: FeeBreakdown, into: pb.FeeBreakdown) -> None:
    into.commission = str(fees.commission)
    into.venue_fee = str(fees.venue_fee)
    into.sec_fee = str(fees.sec_fee)
    into.finra_taf = str(fees.finra_taf)
    into.total = str(fees.total)


def _journal_scale(value: Decimal) -> str:
    """``value`` with at least the journal's 6 decimal places: a position folded from fills as
    sent ("400") and one replayed from the journal (numeric(20,6): "400.000000") read the same."""
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -6:
        value = value.quantize(_SIX_PLACES)
    return str(value)


def position_to_proto(position: Position, mark: Decimal | None, into: pb.Position) -> None:
    """Fill ``into``; unrealised P&L is left empty when there is no mark for the symbol."""
    into.account = position.account
    into.symbol = position.symbol
    into.quantity = position.quantity
    into.average_cost = str(position.average_cost)
    into.realized_pnl = _journal_scale(position.realized_pnl)
    if mark is not None:
        into.mark_price = str(mark)
        into.unrealized_pnl = str(position.unrealized_pnl(mark))
    into.cost_method = COST_METHODS[position.cost_method]  # type: ignore[assignment]
    for lot in position.lots:
        added = into.lots.add(quantity=lot.quantity, price=_journal_scale(lot.price))
        convert.to_timestamp(lot.opened_at, added.opened_at)
    if position.updated_at is not None:
        convert.to_timestamp(position.updated_at, into.updated_at)


def ack_to_proto(recorded: Recorded, mark: Decimal | None, into: pb.FillAck) -> None:
    into.sequence = recorded.stored.sequence
    into.duplicate = recorded.stored.duplicate
    fill_to_proto(recorded.fill, into.fill)
    fees_to_proto(recorded.fees, into.fees)
    position_to_proto(recorded.position, mark, into.position)
    convert.to_timestamp(recorded.stored.row.received_at, into.received_at)


def stream_error(error: ExecgwError, into: common.StreamError) -> None:
    """An error answered on a stream instead of ending it (same code and reason as unary)."""
    into.status = status.status_code_for(error).name
    into.reason = error.reason
    into.message = error.message
    if isinstance(error, InvalidArgument):
        for violation in error.violations:
            into.field_violations.add(field=violation.field, description=violation.description)


GROUPINGS: Mapping[int, PnlGrouping] = {
    pb.PNL_GROUPING_ACCOUNT: PnlGrouping.ACCOUNT,
    pb.PNL_GROUPING_SYMBOL: PnlGrouping.SYMBOL,
    pb.PNL_GROUPING_VENUE: PnlGrouping.VENUE,
    pb.PNL_GROUPING_DAY: PnlGrouping.DAY,
}
_BREAK_KINDS: Mapping[BreakKind, int] = {
    BreakKind.MISSING_FILL: pb.BREAK_KIND_MISSING_FILL,
    BreakKind.QUANTITY_MISMATCH: pb.BREAK_KIND_QUANTITY_MISMATCH,
    BreakKind.CASH_MISMATCH: pb.BREAK_KIND_CASH_MISMATCH,
    BreakKind.UNKNOWN_SYMBOL: pb.BREAK_KIND_UNKNOWN_SYMBOL,
}


def pnl_query(request: pb.GetPnlRequest) -> PnlQuery:
    """The query of a GetPnl request, or InvalidArgument naming every bad field."""
    problems: convert.Problems = []
    start = convert.trade_date(request.start_date, "start_date", problems)
    end = convert.trade_date(request.end_date, "end_date", problems)
    if start and end and start > end:
        problems.append(convert.FieldViolation("end_date", "must not be before start_date"))
    for i, account in enumerate(request.accounts):
        convert.identifier(account, f"accounts[{i}]", problems)
    for i, symbol in enumerate(request.symbols):
        convert.symbol(symbol, f"symbols[{i}]", problems)
    grouping = [
        convert.enum_value(g, GROUPINGS, f"group_by[{i}]", problems)
        for i, g in enumerate(request.group_by)
    ]
    convert.raise_if(problems)
    assert start is not None and end is not None
    return PnlQuery(
        start,
        end,
        frozenset(request.accounts),
        frozenset(request.symbols),
        tuple(g for g in grouping if g is not None) or DEFAULT_GROUPING,
        request.include_shortfall,
    )


def _breakdown(part: PnlBreakdown, into: pb.PnlBreakdown) -> None:
    for name in _PNL_PARTS:
        setattr(into, name, str(getattr(part, name)))
    into.net = str(part.net)


_PNL_PARTS = (
    "gross_realized",
    "gross_unrealized",
    "commission",
    "exchange_fees",
    "regulatory_fees",
    "borrow",
    "slippage",
    "market_impact",
    "timing_cost",
    "venue_selection_savings",
)


def pnl_report(report: PnlReport) -> pb.GetPnlResponse:
    response = pb.GetPnlResponse()
    for row in report.rows:
        out = response.rows.add(
            account=row.account,
            symbol=row.symbol,
            venue=row.venue,
            trade_date=row.trade_date.isoformat() if row.trade_date else "",
        )
        _breakdown(row.pnl, out.pnl)
    _breakdown(report.total, response.total)
    for s in report.shortfalls:
        response.shortfalls.add(
            client_order_id=s.client_order_id,
            account=s.account,
            symbol=s.symbol,
            side=_SIDE_NUMBERS[s.side],
            ordered_quantity=s.ordered_quantity,
            filled_quantity=s.filled_quantity,
            decision_price=str(s.decision_price),
            delay_cost=str(s.delay_cost),
            trading_cost=str(s.trading_cost),
            opportunity_cost=str(s.opportunity_cost),
            fees=str(s.fees),
            total=str(s.total),
        )
    return response


def statement(request: pb.ReconcileRequest) -> tuple[date, Statement]:
    """The trade date and statement of a Reconcile request, or InvalidArgument."""
    problems: convert.Problems = []
    day = convert.trade_date(request.trade_date, "trade_date", problems)
    seen: set[tuple[str, str]] = set()
    for i, position in enumerate(request.positions):
        convert.identifier(position.account, f"positions[{i}].account", problems)
        convert.symbol(position.symbol, f"positions[{i}].symbol", problems)
        if (position.account, position.symbol) in seen:
            problems.append(convert.FieldViolation(f"positions[{i}]", "listed twice"))
        seen.add((position.account, position.symbol))
    amounts = []
    for i, cash in enumerate(request.cash):
        convert.identifier(cash.account, f"cash[{i}].account", problems)
        amounts.append(convert.decimal(cash.amount, f"cash[{i}].amount", problems, positive=False))
    if len({c.account for c in request.cash}) != len(request.cash):
        problems.append(convert.FieldViolation("cash", "lists an account twice"))
    convert.raise_if(problems)
    assert day is not None
    return day, Statement(
        tuple(StatementPosition(p.account, p.symbol, p.quantity) for p in request.positions),
        tuple(
            StatementCash(c.account, amount)
            for c, amount in zip(request.cash, amounts, strict=True)
            if amount is not None
        ),
    )


def reconciliation(run: ReconciliationRun) -> pb.ReconcileResponse:
    response = pb.ReconcileResponse(run_id=str(run.run_id), matched=not run.breaks)
    response.run_at.FromDatetime(run.run_at)
    for found in run.breaks:
        response.breaks.add(
            kind=_BREAK_KINDS[found.kind],
            account=found.account,
            symbol=found.symbol,
            expected=str(found.expected),
            actual=str(found.actual),
            difference=str(found.difference),
            detail=found.detail,
        )
    return response
