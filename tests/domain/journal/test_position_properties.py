"""Hypothesis properties of positions: round trips, replay, and incremental vs rebuilt state."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain.fills import Fill, FillKind
from gateway.domain.orders import Side
from gateway.domain.positions import CostMethod, PositionBook
from tests.domain.journal.trades import T0, fill

methods = st.sampled_from(list(CostMethod))
prices = st.decimals(min_value="0.01", max_value="999.99", places=2)
quantities = st.integers(min_value=1, max_value=5_000)


@st.composite
def splits(draw: st.DrawFn, total: int) -> list[int]:
    cuts = sorted(draw(st.sets(st.integers(1, total - 1), max_size=4))) if total > 1 else []
    bounds = [0, *cuts, total]
    return [b - a for a, b in itertools.pairwise(bounds)]


@given(method=methods, price=prices, quantity=quantities, data=st.data(), short=st.booleans())
def test_round_trip_when_same_price_no_costs_then_zero_pnl(
    method: CostMethod, price: Decimal, quantity: int, data: st.DataObject, short: bool
) -> None:
    book = PositionBook(default_method=method)
    opening, closing = (Side.SELL_SHORT, Side.BUY) if short else (Side.BUY, Side.SELL)
    for part in data.draw(splits(quantity)):
        book.apply(fill(opening, part, price))
    for part in data.draw(splits(quantity)):
        book.apply(fill(closing, part, price))
    position = book.position("ACC1", "AAPL")
    assert position.quantity == 0
    assert position.realized_pnl == 0
    assert position.cost_basis == 0


@st.composite
def journals(draw: st.DrawFn) -> tuple[list[Fill], list[Fill]]:
    """Journal records (fills, busts, corrections, some early) and the effective fills expected."""
    count = draw(st.integers(1, 25))
    news = []
    for i in range(count):
        news.append(
            fill(
                draw(st.sampled_from([Side.BUY, Side.SELL, Side.SELL_SHORT])),
                draw(st.integers(1, 500)),
                draw(st.decimals(min_value="1", max_value="50", places=2)),
                account=draw(st.sampled_from(["A1", "A2"])),
                symbol=draw(st.sampled_from(["AAPL", "MSFT"])),
                exec_id=f"N{i}",
                at=T0 + timedelta(seconds=i),
            )
        )
    effective: dict[int, Fill | None] = dict(enumerate(news))
    records: list[Fill] = list(news)
    for i in range(count):
        action = draw(st.sampled_from(["keep", "keep", "bust", "correct", "correct-then-bust"]))
        if action == "keep":
            continue
        original = news[i]
        amends: list[Fill] = []
        if action.startswith("correct"):
            corrected = dataclasses.replace(
                original,
                exec_id=f"C{i}",
                kind=FillKind.CORRECTION,
                corrects_exec_id=original.exec_id,
                quantity=draw(st.integers(1, 500)),
                price=draw(st.decimals(min_value="1", max_value="50", places=2)),
            )
            amends.append(corrected)
            effective[i] = corrected
        if action.endswith("bust"):
            bust_the_correction = draw(st.booleans())
            target = amends[-1].exec_id if amends and bust_the_correction else original.exec_id
            amends.append(
                dataclasses.replace(
                    original, exec_id=f"B{i}", kind=FillKind.BUST, corrects_exec_id=target
                )
            )
            effective[i] = None
        # Amendments go anywhere after... or even before the original (out of order delivery),
        # but a bust of a correction never before that correction.
        for amend in amends:
            floor = records.index(amends[0]) + 1 if amend is not amends[0] else 0
            records.insert(draw(st.integers(floor, len(records))), amend)
    return records, [f for f in effective.values() if f is not None]


@settings(max_examples=150)
@given(journal=journals(), method=methods)
def test_replay_when_busts_and_corrections_then_equals_live_and_plain_fold(
    journal: tuple[list[Fill], list[Fill]], method: CostMethod
) -> None:
    records, expected_effective = journal
    live = PositionBook(default_method=method)
    for record in records:
        live.apply(record)
    live_positions = live.positions(include_flat=True, include_lots=True)

    replayed = PositionBook.replay(records, default_method=method)
    assert replayed.positions(include_flat=True, include_lots=True) == live_positions

    # The same effective fills, folded as plain new fills, give the same positions.
    plain_fills = [
        dataclasses.replace(f, kind=FillKind.NEW, corrects_exec_id="") for f in expected_effective
    ]
    plain = PositionBook.replay(plain_fills, default_method=method)
    for position in live_positions:
        assert plain.position(position.account, position.symbol, include_lots=True) == position

    live.rebuild_all()
    assert live.positions(include_flat=True, include_lots=True) == live_positions
    assert live.waiting() == ()


@settings(max_examples=100)
@given(journal=journals(), method=methods)
def test_positions_when_any_journal_then_cash_identity_holds(
    journal: tuple[list[Fill], list[Fill]], method: CostMethod
) -> None:
    records, effective = journal
    book = PositionBook.replay(records, default_method=method)
    for position in book.positions(include_flat=True):
        fills = [
            f for f in effective if (f.account, f.symbol) == (position.account, position.symbol)
        ]
        assert position.quantity == sum(f.signed_quantity for f in fills)
        cash = -sum((f.signed_quantity * f.price for f in fills), Decimal(0))
        # realised - open cost basis == cash from trading, exactly, whatever the cost method
        assert position.realized_pnl - position.cost_basis == cash


@settings(max_examples=150)
@given(
    journal=journals(),
    method=methods,
    history=st.integers(1, 6),
    resends=st.lists(st.integers(0, 24), max_size=6),
)
def test_bounded_history_when_unknown_records_rebuilt_from_journal_then_equals_full_book(
    journal: tuple[list[Fill], list[Fill]],
    method: CostMethod,
    history: int,
    resends: list[int],
) -> None:
    """A book that forgets old fills, rebuilt per position from the journal when it must,
    holds the same positions as one that keeps everything, after every record."""
    records, _ = journal
    full = PositionBook(default_method=method)
    bounded = PositionBook(default_method=method, history=history)
    stored: list[Fill] = []

    def deliver(record: Fill, duplicate: bool) -> None:
        full.apply(record)
        if bounded.knows(record, duplicate):
            bounded.apply(record)
        else:
            # What the journal does: every record of the position, in journal order.
            key = (record.account, record.symbol)
            rows = [r for r in stored if (r.account, r.symbol) == key]
            bounded.adopt(PositionBook.replay(rows, default_method=method), [key])
        assert bounded.positions(include_flat=True, include_lots=True) == full.positions(
            include_flat=True, include_lots=True
        )
        assert bounded.kept() <= history

    for step, record in enumerate(records):
        stored.append(record)
        deliver(record, duplicate=False)
        if step in resends:  # an OMS retry of an earlier fill: the journal answers duplicate
            deliver(records[resends.index(step) % (step + 1)], duplicate=True)
    assert sorted(f.key for f in bounded.waiting()) == sorted(f.key for f in full.waiting())
