"""End-of-day reconciliation: the broker's positions and cash against the journal's, to $0.01.

Statement CSV format, version 1 (``parse_statement``):

    # lines starting with '#' and blank lines are ignored
    account,symbol,quantity
    ACC1,AAPL,300
    ACC1,TSLA,-50
    ACC1,$CASH,-56234.17

- UTF-8, comma separated, the header row ``account,symbol,quantity`` first;
- a position row gives signed whole shares (negative = short) for one account and symbol;
- a cash row has the symbol ``$CASH`` (no ticker contains '$') and, in the quantity column, the
  account's net cash movement of the day from trading after fees, in dollars (at most 2 places);
- an account and symbol listed twice is an error; a flat position may be omitted or given as 0.

Breaks (``expected`` = journal, ``actual`` = broker, ``difference`` = actual - expected):

- UNKNOWN_SYMBOL: the broker holds shares in an account x symbol the journal has never traded;
- MISSING_FILL: the journal holds a position the statement does not list at all;
- QUANTITY_MISMATCH: both list the position, with different quantities;
- CASH_MISMATCH: an account's cash differs once both sides are rounded to the cent (half-even),
  so a difference of one cent breaks and an exact match passes. An account with no cash row on one
  side counts as zero there.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation

from gateway.domain.fees import FeeBreakdown
from gateway.domain.fills import Fill, FillKey
from gateway.domain.positions import PositionKey
from gateway.domain.prices import PENNY
from gateway.domain.vocabulary import Vocabulary
from gateway.errors import FieldViolation, InvalidArgument

CASH_SYMBOL = "$CASH"
STATEMENT_HEADER = ("account", "symbol", "quantity")
ZERO = Decimal(0)


class BreakKind(Vocabulary):
    MISSING_FILL = "MISSING_FILL"
    QUANTITY_MISMATCH = "QUANTITY_MISMATCH"
    CASH_MISMATCH = "CASH_MISMATCH"
    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"


@dataclass(frozen=True, slots=True)
class StatementPosition:
    account: str
    symbol: str
    quantity: int


@dataclass(frozen=True, slots=True)
class StatementCash:
    account: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Statement:
    """The broker's end-of-day statement for one trade date."""

    positions: tuple[StatementPosition, ...] = ()
    cash: tuple[StatementCash, ...] = ()


@dataclass(frozen=True, slots=True)
class ReconciliationBreak:
    """One difference; ``symbol`` is empty for cash. Shares for positions, dollars for cash."""

    kind: BreakKind
    account: str
    symbol: str
    expected: Decimal
    actual: Decimal
    difference: Decimal
    detail: str


@dataclass(frozen=True, slots=True)
class ReconciliationResult:
    breaks: tuple[ReconciliationBreak, ...]

    @property
    def matched(self) -> bool:
        return not self.breaks


def parse_statement(text: str) -> Statement:
    """Parse a version-1 statement CSV; raise InvalidArgument naming every bad line."""
    problems: list[FieldViolation] = []
    positions: dict[PositionKey, StatementPosition] = {}
    cash: dict[str, StatementCash] = {}
    header_seen = False
    for number, record in enumerate(csv.reader(io.StringIO(text)), start=1):
        field = f"statement.line[{number}]"
        if not record or not "".join(record).strip() or record[0].lstrip().startswith("#"):
            continue
        cells = tuple(cell.strip() for cell in record)
        if not header_seen:
            header_seen = True
            if tuple(cell.lower() for cell in cells) != STATEMENT_HEADER:
                problems.append(
                    FieldViolation(field, f"header must be {','.join(STATEMENT_HEADER)}")
                )
            continue
        if len(cells) != 3 or not cells[0] or not cells[1]:
            problems.append(FieldViolation(field, "needs account, symbol and quantity"))
            continue
        account, symbol, value = cells
        if symbol == CASH_SYMBOL:
            amount = _decimal(value)
            if amount is None or amount != amount.quantize(PENNY):
                problems.append(FieldViolation(field, f"cash {value!r} is not dollars and cents"))
            elif account in cash:
                problems.append(FieldViolation(field, f"cash of {account} listed twice"))
            else:
                cash[account] = StatementCash(account, amount)
            continue
        try:
            quantity = int(value)
        except ValueError:
            problems.append(FieldViolation(field, f"quantity {value!r} is not whole shares"))
            continue
        if (account, symbol) in positions:
            problems.append(FieldViolation(field, f"{account} {symbol} listed twice"))
        else:
            positions[(account, symbol)] = StatementPosition(account, symbol, quantity)
    if not header_seen:
        problems.append(FieldViolation("statement", "is empty"))
    if problems:
        raise InvalidArgument(problems, reason="INVALID_STATEMENT")
    return Statement(tuple(positions.values()), tuple(cash.values()))


def _decimal(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def journal_cash(
    fills: Iterable[Fill], fees: Mapping[FillKey, FeeBreakdown], trade_date: date
) -> dict[str, Decimal]:
    """Net cash of each account from the effective fills of ``trade_date``, after their fees.

    Buys pay, sales receive; ``fees`` maps each fill's key to its fees (missing = none). Exact.
    """
    totals: dict[str, Decimal] = {}
    for fill in fills:
        if fill.trade_date != trade_date:
            continue
        charged = fees.get(fill.key)
        amount = -fill.signed_quantity * fill.price - (charged.total if charged else ZERO)
        totals[fill.account] = totals.get(fill.account, ZERO) + amount
    return totals


def reconcile(
    statement: Statement,
    journal_positions: Mapping[PositionKey, int],
    journal_cash: Mapping[str, Decimal],
    *,
    accounts: Collection[str] | None = None,
) -> ReconciliationResult:
    """Compare the statement with the journal; return every break, positions first.

    Args:
        journal_positions: signed quantity of every account x symbol the journal has traded,
            flat ones included (a flat one is "known", so the broker listing it is not unknown).
        journal_cash: the journal's net cash of the day per account (``journal_cash()``).
        accounts: only these accounts; ``None`` = every account on either side.
    """

    def wanted(account: str) -> bool:
        return accounts is None or account in accounts

    breaks: list[ReconciliationBreak] = []
    listed = {(p.account, p.symbol): p.quantity for p in statement.positions}
    for key in sorted(listed.keys() | journal_positions.keys()):
        account, symbol = key
        if not wanted(account):
            continue
        actual = listed.get(key)
        expected = journal_positions.get(key)
        if expected is None:
            if actual:
                breaks.append(
                    _break(
                        BreakKind.UNKNOWN_SYMBOL,
                        account,
                        symbol,
                        0,
                        actual,
                        detail="no fills journaled",
                    )
                )
        elif actual is None:
            if expected:
                breaks.append(
                    _break(
                        BreakKind.MISSING_FILL,
                        account,
                        symbol,
                        expected,
                        0,
                        detail="the statement does not list this position",
                    )
                )
        elif actual != expected:
            breaks.append(_break(BreakKind.QUANTITY_MISMATCH, account, symbol, expected, actual))
    stated = {c.account: c.amount for c in statement.cash}
    for account in sorted(stated.keys() | journal_cash.keys()):
        if not wanted(account):
            continue
        expected_cash = journal_cash.get(account, ZERO).quantize(PENNY, rounding=ROUND_HALF_EVEN)
        actual_cash = stated.get(account, ZERO).quantize(PENNY, rounding=ROUND_HALF_EVEN)
        if expected_cash != actual_cash:
            breaks.append(_break(BreakKind.CASH_MISMATCH, account, "", expected_cash, actual_cash))
    return ReconciliationResult(tuple(breaks))


def _break(
    kind: BreakKind,
    account: str,
    symbol: str,
    expected: Decimal | int,
    actual: Decimal | int,
    *,
    detail: str = "",
) -> ReconciliationBreak:
    expected, actual = Decimal(expected), Decimal(actual)
    return ReconciliationBreak(kind, account, symbol, expected, actual, actual - expected, detail)
