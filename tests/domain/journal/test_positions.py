from __future__ import annotations

from decimal import Decimal

import pytest

from gateway.domain.fills import FillKind
from gateway.domain.positions import CostMethod, FillOutcome, PositionBook
from tests.domain.journal.trades import fill

D = Decimal
AVG, FIFO = CostMethod.AVERAGE, CostMethod.FIFO

# (scenario, method, fills as (side, qty, price), quantity, average cost, realised, FIFO lots)
SCENARIOS = [
    ("new long", AVG, [("B", 100, "10")], 100, "10", "0", []),
    ("new long", FIFO, [("B", 100, "10")], 100, "10", "0", [(100, "10")]),
    ("add", AVG, [("B", 100, "10"), ("B", 100, "12")], 200, "11", "0", []),
    ("add", FIFO, [("B", 100, "10"), ("B", 100, "12")], 200, "11", "0", [(100, "10"), (100, "12")]),
    (
        "partial close",
        AVG,
        [("B", 100, "10"), ("B", 100, "12"), ("S", 50, "13")],
        150,
        "11",
        "100",
        [],
    ),
    (
        "partial close",
        FIFO,
        [("B", 100, "10"), ("B", 100, "12"), ("S", 50, "13")],
        150,
        "11.333333",
        "150",
        [(50, "10"), (100, "12")],
    ),
    ("close", AVG, [("B", 100, "10"), ("B", 100, "12"), ("S", 200, "13")], 0, "0", "400", []),
    ("close", FIFO, [("B", 100, "10"), ("B", 100, "12"), ("S", 200, "13")], 0, "0", "400", []),
    ("flip long to short", AVG, [("B", 100, "10"), ("S", 150, "12")], -50, "12", "200", []),
    (
        "flip long to short",
        FIFO,
        [("B", 100, "10"), ("S", 150, "12")],
        -50,
        "12",
        "200",
        [(-50, "12")],
    ),
    (
        "flip with partial fills",
        AVG,
        [("B", 50, "10"), ("B", 50, "12"), ("S", 60, "12"), ("S", 60, "11")],
        -20,
        "11",
        "60",
        [],
    ),
    (
        "flip with partial fills",
        FIFO,
        [("B", 50, "10"), ("B", 50, "12"), ("S", 60, "12"), ("S", 60, "11")],
        -20,
        "11",
        "60",
        [(-20, "11")],
    ),
    ("flip short to long", AVG, [("SS", 100, "20"), ("B", 130, "18")], 30, "18", "200", []),
    (
        "short cover partial",
        AVG,
        [("SS", 100, "20"), ("SS", 100, "22"), ("B", 50, "19")],
        -150,
        "21",
        "100",
        [],
    ),
    (
        "short cover partial",
        FIFO,
        [("SS", 100, "20"), ("SS", 100, "22"), ("B", 50, "19")],
        -150,
        "21.333333",
        "50",
        [(-50, "20"), (-100, "22")],
    ),
    ("short cover", AVG, [("SS", 100, "20"), ("B", 40, "18"), ("B", 60, "21")], 0, "0", "20", []),
    ("short cover", FIFO, [("SS", 100, "20"), ("B", 40, "18"), ("B", 60, "21")], 0, "0", "20", []),
]


@pytest.mark.parametrize(
    ("scenario", "method", "trades", "quantity", "average", "realized", "lots"),
    SCENARIOS,
    ids=[f"{s[0]}-{s[1].value}" for s in SCENARIOS],
)
def test_position_when_scenario_then_quantity_cost_and_realized(  # noqa: PLR0917  # table columns
    scenario: str,
    method: CostMethod,
    trades: list[tuple[str, int, str]],
    quantity: int,
    average: str,
    realized: str,
    lots: list[tuple[int, str]],
) -> None:
    book = PositionBook(default_method=method)
    realized_per_fill = [book.apply(fill(side, q, p)).realized_pnl for side, q, p in trades]
    position = book.position("ACC1", "AAPL", include_lots=True)
    assert position.quantity == quantity
    assert position.average_cost == D(average)
    assert position.realized_pnl == D(realized) == sum(realized_per_fill)
    assert [(lot.quantity, lot.price) for lot in position.lots] == [(q, D(p)) for q, p in lots]


def test_unrealized_when_marked_then_quantity_times_mark_minus_cost() -> None:
    book = PositionBook()
    book.apply(fill("B", 100, "10"))
    book.apply(fill("B", 100, "12"))
    assert book.position("ACC1", "AAPL").unrealized_pnl(D("11.50")) == D("100")
    short = PositionBook()
    short.apply(fill("SS", 100, "20"))
    assert short.position("ACC1", "AAPL").unrealized_pnl(D("19")) == D("100")


def test_cost_method_when_set_per_account_then_each_account_uses_its_own() -> None:
    book = PositionBook({"FIFO1": FIFO})
    for account in ("FIFO1", "AVG1"):
        book.apply(fill("B", 100, "10", account=account))
        book.apply(fill("B", 100, "12", account=account))
        book.apply(fill("S", 100, "13", account=account))
    assert book.position("FIFO1", "AAPL").realized_pnl == D("300")
    assert book.position("AVG1", "AAPL").realized_pnl == D("200")


def test_apply_when_bust_then_fill_reversed_and_history_kept() -> None:
    book = PositionBook()
    book.apply(fill("B", 100, "10", exec_id="E1"))
    book.apply(fill("B", 100, "12", exec_id="E2"))
    effect = book.apply(fill("B", 100, "12", exec_id="E3", kind=FillKind.BUST, corrects="E2"))
    assert effect.outcome is FillOutcome.APPLIED and effect.rebuilt
    assert (effect.position.quantity, effect.position.average_cost) == (100, D("10"))
    assert [f.exec_id for f in book.effective_fills("ACC1", "AAPL")] == ["E1"]


def test_apply_when_correction_then_replaces_in_place_and_realized_restated() -> None:
    book = PositionBook(default_method=FIFO)
    book.apply(fill("B", 100, "10", exec_id="E1"))
    book.apply(fill("B", 100, "12", exec_id="E2"))
    book.apply(fill("S", 100, "13", exec_id="E3"))
    effect = book.apply(
        fill("B", 100, "11", exec_id="E1C", kind=FillKind.CORRECTION, corrects="E1")
    )
    assert effect.realized_pnl == D("-100")  # the first lot now cost 11, not 10
    assert book.position("ACC1", "AAPL").realized_pnl == D("200")
    assert [f.exec_id for f in book.effective_fills("ACC1", "AAPL")] == ["E1C", "E2", "E3"]


def test_apply_when_correction_then_bust_of_either_id_removes_it() -> None:
    book = PositionBook()
    book.apply(fill("B", 100, "10", exec_id="E1"))
    book.apply(fill("B", 50, "10", exec_id="E1C", kind=FillKind.CORRECTION, corrects="E1"))
    book.apply(fill("B", 50, "10", exec_id="B1", kind=FillKind.BUST, corrects="E1C"))
    assert book.position("ACC1", "AAPL").quantity == 0
    late = book.apply(fill("B", 50, "10", exec_id="C2", kind=FillKind.CORRECTION, corrects="E1"))
    assert late.outcome is FillOutcome.REFERENCE_BUSTED


def test_apply_when_bust_arrives_before_its_fill_then_applied_on_arrival() -> None:
    book = PositionBook()
    early = book.apply(fill("B", 100, "10", exec_id="B1", kind=FillKind.BUST, corrects="E1"))
    assert early.outcome is FillOutcome.WAITING_FOR_REFERENCE and len(book.waiting()) == 1
    book.apply(fill("B", 100, "10", exec_id="E1"))
    assert book.position("ACC1", "AAPL").quantity == 0 and book.waiting() == ()


def test_apply_when_same_exec_id_again_then_duplicate_and_unchanged() -> None:
    book = PositionBook()
    first = fill("B", 100, "10", exec_id="E1")
    book.apply(first)
    effect = book.apply(first)
    assert effect.outcome is FillOutcome.DUPLICATE
    assert effect.position.quantity == 100


def test_apply_when_correction_moves_symbol_then_both_positions_rebuilt() -> None:
    book = PositionBook()
    book.apply(fill("B", 100, "10", exec_id="E1", symbol="AAPL"))
    book.apply(
        fill("B", 100, "10", exec_id="E1C", symbol="MSFT", kind=FillKind.CORRECTION, corrects="E1")
    )
    assert book.position("ACC1", "AAPL").quantity == 0
    assert book.position("ACC1", "MSFT").quantity == 100
    assert [p.symbol for p in book.positions()] == ["MSFT"]
    assert [p.symbol for p in book.positions(include_flat=True)] == ["AAPL", "MSFT"]
