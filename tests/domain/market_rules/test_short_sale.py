"""Reg SHO Rule 201: the 90% trigger, the restriction to the next trading day, the price test."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.orders import OrderType, Side
from gateway.domain.short_sale import (
    SHORT_SALE_MARKET_ORDER,
    SHORT_SALE_NO_NBB,
    SHORT_SALE_PRICE_TEST,
    ShortSaleSettings,
    ShortSaleState,
    check_short_sale,
    trigger_price,
)

from .sessions import at, session

FRIDAY = date(2026, 11, 20)
MONDAY = date(2026, 11, 23)
TUESDAY = date(2026, 11, 24)
WEDNESDAY = date(2026, 11, 25)
PRIOR = Decimal("20.00")
NBB = Decimal("17.95")


@pytest.mark.parametrize(
    ("prior_close", "expected"),
    [("20.00", "18.00"), ("20.01", "18.009"), ("0.50", "0.45"), ("123.45", "111.105")],
)
def test_trigger_price_when_prior_close_then_exact_ninety_percent(
    prior_close: str, expected: str
) -> None:
    assert trigger_price(Decimal(prior_close)) == Decimal(expected)


def test_trigger_price_when_prior_close_not_positive_then_value_error() -> None:
    with pytest.raises(ValueError, match="positive"):
        trigger_price(Decimal("0"))


@pytest.mark.parametrize(
    ("prior_close", "price", "triggers"),
    [
        ("20.00", "18.00", True),  # at the trigger price
        ("20.00", "17.50", True),
        ("20.00", "18.01", False),
        ("20.01", "18.00", True),  # below the exact 18.009
        ("20.01", "18.01", False),  # above it: no rounding of the trigger to the tick
    ],
)
def test_on_trade_when_price_against_trigger_then_triggers_at_or_below(
    prior_close: str, price: str, triggers: bool
) -> None:
    state = ShortSaleState()
    fired = state.on_trade(
        Decimal(price), at("10:00", FRIDAY), Decimal(prior_close), session(FRIDAY), MONDAY
    )
    assert fired is triggers
    assert state.is_restricted(FRIDAY) is triggers
    assert state.triggered_on == (FRIDAY if triggers else None)


@pytest.mark.parametrize("clock", ["04:00", "09:29:59.999999", "16:00", "18:30"])
def test_on_trade_when_outside_regular_hours_then_no_trigger(clock: str) -> None:
    state = ShortSaleState()
    fired = state.on_trade(Decimal("15.00"), at(clock, FRIDAY), PRIOR, session(FRIDAY), MONDAY)
    assert not fired
    assert not state.is_restricted(FRIDAY)
    assert state.restricted_until is None


@pytest.mark.parametrize("clock", ["09:30", "15:59:59.999999"])
def test_on_trade_when_at_edges_of_regular_hours_then_triggers(clock: str) -> None:
    state = ShortSaleState()
    assert state.on_trade(Decimal("18.00"), at(clock, FRIDAY), PRIOR, session(FRIDAY), MONDAY)


def test_restriction_when_triggered_friday_then_restricted_through_monday_only() -> None:
    state = ShortSaleState()
    assert state.on_trade(Decimal("17.99"), at("14:00", FRIDAY), PRIOR, session(FRIDAY), MONDAY)
    assert state.restricted_until == MONDAY
    assert state.is_restricted(FRIDAY)
    assert state.is_restricted(MONDAY)
    assert not state.is_restricted(TUESDAY)


def test_restriction_when_retriggered_same_day_then_not_extended() -> None:
    state = ShortSaleState()
    state.on_trade(Decimal("18.00"), at("10:00", FRIDAY), PRIOR, session(FRIDAY), MONDAY)
    assert not state.on_trade(Decimal("17.00"), at("11:00", FRIDAY), PRIOR, session(FRIDAY), MONDAY)
    assert state.restricted_until == MONDAY


def test_restriction_when_retriggered_on_carried_day_then_extended_to_next_day() -> None:
    state = ShortSaleState()
    state.on_trade(Decimal("18.00"), at("10:00", FRIDAY), PRIOR, session(FRIDAY), MONDAY)
    monday_prior = Decimal("18.50")  # Friday's close; Monday's trigger is 16.65
    assert not state.on_trade(
        Decimal("16.66"), at("10:00", MONDAY), monday_prior, session(MONDAY), TUESDAY
    )
    assert state.on_trade(
        Decimal("16.65"), at("11:00", MONDAY), monday_prior, session(MONDAY), TUESDAY
    )
    assert state.restricted_until == TUESDAY
    assert state.triggered_on == MONDAY


def test_carry_over_when_from_reference_data_then_restricted_that_day() -> None:
    state = ShortSaleState()
    state.carry_over(MONDAY)
    assert state.is_restricted(MONDAY)
    assert not state.is_restricted(TUESDAY)
    assert state.triggered_on is None


def test_carry_over_when_earlier_than_current_restriction_then_not_shortened() -> None:
    state = ShortSaleState(restricted_until=TUESDAY)
    state.carry_over(MONDAY)
    assert state.restricted_until == TUESDAY


def test_on_trade_when_next_trading_day_not_after_trade_date_then_value_error() -> None:
    state = ShortSaleState()
    with pytest.raises(ValueError, match="next_trading_day"):
        state.on_trade(Decimal("18.00"), at("10:00", FRIDAY), PRIOR, session(FRIDAY), FRIDAY)


SS, SSE = Side.SELL_SHORT, Side.SELL_SHORT_EXEMPT
LIMIT, MARKET, PEG = OrderType.LIMIT, OrderType.MARKET, OrderType.MIDPOINT_PEG


@pytest.mark.parametrize(
    ("side", "order_type", "limit", "expected"),
    [
        # Section 3 worked example: prior close 20.00, NBB 17.95.
        (SS, LIMIT, "17.96", []),
        (SS, LIMIT, "17.95", [SHORT_SALE_PRICE_TEST]),
        (SS, LIMIT, "17.94", [SHORT_SALE_PRICE_TEST]),
        (SS, MARKET, None, [SHORT_SALE_MARKET_ORDER]),
        # Auction types: unpriced ones are market shorts, priced ones take the price test.
        (SS, OrderType.MARKET_ON_CLOSE, None, [SHORT_SALE_MARKET_ORDER]),
        (SS, OrderType.MARKET_ON_OPEN, None, [SHORT_SALE_MARKET_ORDER]),
        (SS, OrderType.CLOSING_OFFSET, None, [SHORT_SALE_MARKET_ORDER]),
        (SS, OrderType.LIMIT_ON_CLOSE, "17.95", [SHORT_SALE_PRICE_TEST]),
        (SS, OrderType.LIMIT_ON_CLOSE, "17.96", []),
        (SS, OrderType.LIMIT_ON_OPEN, "17.90", [SHORT_SALE_PRICE_TEST]),
        (SS, OrderType.IMBALANCE_ONLY, "18.00", []),
        # Short exempt, long sales and buys are never refused.
        (SSE, MARKET, None, []),
        (SSE, LIMIT, "17.00", []),
        (Side.SELL, MARKET, None, []),
        (Side.SELL, LIMIT, "17.00", []),
        (Side.BUY, MARKET, None, []),
    ],
)
def test_check_short_sale_when_restricted_with_nbb_1795_then_reasons(
    side: Side, order_type: OrderType, limit: str | None, expected: list[str]
) -> None:
    price = Decimal(limit) if limit is not None else None
    assert check_short_sale(side, order_type, price, NBB, True) == expected


@pytest.mark.parametrize(("order_type", "limit"), [(LIMIT, "17.00"), (MARKET, None), (PEG, None)])
def test_check_short_sale_when_not_restricted_then_nothing_applies(
    order_type: OrderType, limit: str | None
) -> None:
    price = Decimal(limit) if limit is not None else None
    assert check_short_sale(SS, order_type, price, None, False) == []


def test_check_short_sale_when_no_nbb_then_price_test_cannot_be_met() -> None:
    assert check_short_sale(SS, LIMIT, Decimal("18.00"), None, True) == [SHORT_SALE_NO_NBB]
    assert check_short_sale(SS, MARKET, None, None, True) == [
        SHORT_SALE_MARKET_ORDER,
        SHORT_SALE_NO_NBB,
    ]
    assert check_short_sale(SSE, MARKET, None, None, True) == []


def test_check_short_sale_when_settings_relaxed_then_market_and_no_nbb_allowed() -> None:
    relaxed = ShortSaleSettings(
        refuse_market_short_while_restricted=False, refuse_when_no_nbb=False
    )
    assert check_short_sale(SS, MARKET, None, NBB, True, relaxed) == []
    assert check_short_sale(SS, LIMIT, Decimal("18.00"), None, True, relaxed) == []
    assert check_short_sale(SS, LIMIT, NBB, NBB, True, relaxed) == [SHORT_SALE_PRICE_TEST]


@pytest.mark.parametrize(
    ("limit", "nbo", "expected"),
    [
        (None, "17.97", []),  # mid 17.96 is above the NBB
        ("17.00", "17.97", []),  # the cap cannot lower the price below the mid
        (None, None, []),  # no NBO known: the venue prices the peg at the mid
        (None, "17.95", [SHORT_SALE_PRICE_TEST]),  # locked: the mid is the NBB
        (None, "17.94", [SHORT_SALE_PRICE_TEST]),  # crossed
    ],
)
def test_check_short_sale_when_midpoint_peg_then_refused_only_in_locked_or_crossed_market(
    limit: str | None, nbo: str | None, expected: list[str]
) -> None:
    price = Decimal(limit) if limit is not None else None
    offer = Decimal(nbo) if nbo is not None else None
    assert check_short_sale(SS, PEG, price, NBB, True, national_best_offer=offer) == expected


def test_settings_when_trigger_fraction_out_of_range_then_value_error() -> None:
    with pytest.raises(ValueError, match="trigger_fraction"):
        ShortSaleSettings(trigger_fraction=Decimal("1.10"))


prices = st.decimals(min_value="0.01", max_value="200.00", places=2)
day_gaps = st.integers(min_value=1, max_value=4)  # weekends and holidays between trading days
trades = st.lists(
    st.tuples(st.integers(min_value=-3_600, max_value=27_000), prices), min_size=1, max_size=8
)


@given(prior_close=prices, days=st.lists(st.tuples(day_gaps, trades), min_size=1, max_size=6))
def test_any_trades_when_triggered_then_restriction_never_ends_before_next_trading_day(
    prior_close: Decimal, days: list[tuple[int, list[tuple[int, Decimal]]]]
) -> None:
    state = ShortSaleState()
    trade_date = date(2026, 11, 2)
    must_last_until: date | None = None
    for gap, day_trades in days:
        next_day = trade_date + timedelta(days=gap)
        today = session(trade_date)
        for offset, price in day_trades:
            moment = today.open_at + timedelta(seconds=offset)
            fired = state.on_trade(price, moment, prior_close, today, next_day)
            in_hours = today.open_at <= moment < today.close_at
            if in_hours and price <= prior_close * Decimal("0.90"):
                must_last_until = next_day
                assert state.is_restricted(trade_date)
            elif not in_hours:
                assert not fired
        if must_last_until is not None:
            assert state.restricted_until is not None
            assert state.restricted_until >= must_last_until
            assert state.is_restricted(must_last_until)
        trade_date = next_day
