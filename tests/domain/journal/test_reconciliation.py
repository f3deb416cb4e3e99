from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.fees import FeeBreakdown
from gateway.domain.positions import PositionBook
from gateway.domain.reconciliation import (
    BreakKind,
    Statement,
    StatementCash,
    StatementPosition,
    journal_cash,
    parse_statement,
    reconcile,
)
from gateway.errors import InvalidArgument
from tests.domain.journal.trades import T0, fill

D = Decimal
DAY = date(2026, 6, 1)

STATEMENT = """\
# broker EOD 2026-06-01
account,symbol,quantity
ACC1,AAPL,100
ACC1,MSFT,-50
ACC1,$CASH,-502.47
"""


def _journal() -> tuple[dict[tuple[str, str], int], dict[str, Decimal]]:
    fills = [
        fill("B", 100, "10.00", exec_id="E1", at=T0),
        fill("SS", 50, "10.00", symbol="MSFT", exec_id="E2", at=T0),
    ]
    fees = {
        ("XNAS", "E1"): FeeBreakdown(D("1.00"), D("0.30"), D("0"), D("0")),
        ("XNAS", "E2"): FeeBreakdown(D("1.00"), D("0.15"), D("0.01"), D("0.01")),
    }
    book = PositionBook.replay(fills)
    positions = {(p.account, p.symbol): p.quantity for p in book.positions(include_flat=True)}
    return positions, journal_cash(fills, fees, DAY)


def test_parse_statement_when_documented_format_then_positions_and_cash() -> None:
    statement = parse_statement(STATEMENT)
    assert statement.positions == (
        StatementPosition("ACC1", "AAPL", 100),
        StatementPosition("ACC1", "MSFT", -50),
    )
    assert statement.cash == (StatementCash("ACC1", D("-502.47")),)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("acct,sym,qty\n", "statement.line[1]"),
        ("account,symbol,quantity\nACC1,AAPL,1.5\n", "statement.line[2]"),
        ("account,symbol,quantity\nACC1,AAPL,1\nACC1,AAPL,2\n", "statement.line[3]"),
        ("account,symbol,quantity\nACC1,$CASH,1.234\n", "statement.line[2]"),
        ("account,symbol,quantity\nACC1,AAPL\n", "statement.line[2]"),
        ("", "statement"),
    ],
)
def test_parse_statement_when_malformed_then_line_named(text: str, line: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        parse_statement(text)
    assert raised.value.reason == "INVALID_STATEMENT"
    assert raised.value.violations[0].field == line


def test_reconcile_when_exact_match_then_no_breaks() -> None:
    positions, cash = _journal()
    assert cash == {"ACC1": D("-502.47")}
    assert reconcile(parse_statement(STATEMENT), positions, cash).matched


@given(cents=st.integers(min_value=-(10**9), max_value=10**9), off=st.sampled_from([-1, 1]))
def test_reconcile_when_cash_off_by_one_cent_then_cash_break(cents: int, off: int) -> None:
    journal = D(cents) / 100
    statement = Statement(cash=(StatementCash("ACC1", journal + D(off) / 100),))
    assert reconcile(
        Statement(cash=(StatementCash("ACC1", journal),)), {}, {"ACC1": journal}
    ).matched
    result = reconcile(statement, {}, {"ACC1": journal})
    (only,) = result.breaks
    assert (only.kind, only.difference) == (BreakKind.CASH_MISMATCH, D(off) / 100)


def test_reconcile_when_journal_cash_has_sub_cent_then_matched_after_rounding() -> None:
    statement = Statement(cash=(StatementCash("ACC1", D("-10.00")),))
    assert reconcile(statement, {}, {"ACC1": D("-10.004")}).matched


def test_reconcile_when_every_kind_of_difference_then_each_break_with_amount() -> None:
    positions, cash = _journal()
    positions[("ACC1", "TSLA")] = 0  # traded earlier, flat: known to the journal
    positions[("ACC2", "IBM")] = 10
    statement = Statement(
        positions=(
            StatementPosition("ACC1", "AAPL", 90),
            StatementPosition("ACC1", "MSFT", -50),
            StatementPosition("ACC1", "NVDA", 5),
            StatementPosition("ACC1", "TSLA", 0),
        ),
        cash=(StatementCash("ACC1", D("-502.48")),),
    )
    breaks = {
        (b.kind, b.account, b.symbol): b for b in reconcile(statement, positions, cash).breaks
    }
    assert set(breaks) == {
        (BreakKind.QUANTITY_MISMATCH, "ACC1", "AAPL"),
        (BreakKind.UNKNOWN_SYMBOL, "ACC1", "NVDA"),
        (BreakKind.MISSING_FILL, "ACC2", "IBM"),
        (BreakKind.CASH_MISMATCH, "ACC1", ""),
    }
    assert breaks[(BreakKind.QUANTITY_MISMATCH, "ACC1", "AAPL")].difference == -10
    assert breaks[(BreakKind.UNKNOWN_SYMBOL, "ACC1", "NVDA")].actual == 5
    assert breaks[(BreakKind.MISSING_FILL, "ACC2", "IBM")].expected == 10
    assert breaks[(BreakKind.CASH_MISMATCH, "ACC1", "")].difference == D("-0.01")


def test_reconcile_when_accounts_limited_then_other_accounts_ignored() -> None:
    positions, cash = _journal()
    positions[("ACC2", "IBM")] = 10
    assert reconcile(parse_statement(STATEMENT), positions, cash, accounts={"ACC1"}).matched
