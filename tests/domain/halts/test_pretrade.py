"""Pre-trade decisions: every applicable reason at once, and the restrictions in force."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain.feed import ResumptionPhase
from gateway.domain.market_state import MarketStateEngine, Phase
from gateway.domain.orders import OrderType, Side, TimeInForce
from gateway.domain.pretrade import (
    Decision,
    OutsideBandPolicy,
    PretradeSettings,
    Restriction,
    check_order,
    restrictions,
)
from tests.domain.halts.feed import (
    EARLY_CLOSE,
    SYMBOL,
    THANKSGIVING,
    TUESDAY,
    VENUES,
    WEDNESDAY,
    D,
    engine,
    et,
    halt,
    index,
    move,
    opened,
    order,
    pre_open,
    quote,
    reference,
    resume,
    trade,
)

NOON = et(TUESDAY, "12:00")
MOO, LOO = OrderType.MARKET_ON_OPEN, OrderType.LIMIT_ON_OPEN
MOC, LOC = OrderType.MARKET_ON_CLOSE, OrderType.LIMIT_ON_CLOSE


def _check(target: MarketStateEngine, now: datetime, **fields: object) -> Decision:
    return check_order(target, order(**fields), now)  # type: ignore[arg-type]


def _codes(target: MarketStateEngine, now: datetime, **fields: object) -> list[str]:
    return [r.code for r in _check(target, now, **fields).reasons]


def _restrictions(target: MarketStateEngine, now: datetime) -> list[Restriction]:
    state = target.get(SYMBOL)
    assert state is not None
    return restrictions(target, state, now)


def _restricted(day: date = TUESDAY) -> MarketStateEngine:
    """Reg SHO 201 in force: traded at 90.00 (prior close 100.00), NBB 89.95 / NBO 90.05."""
    target = opened(day)
    target.apply(trade(et(day, "10:00"), "90.00"))
    move(target, et(day, "10:00:01"), "89.95", "90.05")
    return target


# --- allowed ------------------------------------------------------------------------------------


def test_limit_order_within_bands_in_continuous_trading_then_allowed_with_context() -> None:
    decision = _check(opened(), NOON, limit="100.01")
    assert decision.allowed and decision.reasons == ()
    assert decision.phase is Phase.CONTINUOUS and decision.restrictions == ()
    assert decision.bands is not None and decision.bands.upper == D("105.00")
    assert not decision.short_sale_restricted and decision.decided_at == NOON


# --- reference data and the calendar ------------------------------------------------------------


def test_symbol_never_seen_then_no_reference_data() -> None:
    decision = _check(opened(), NOON, symbol="MSFT")
    assert not decision.allowed
    assert [(r.code, r.field) for r in decision.reasons] == [("NO_REFERENCE_DATA", "order.symbol")]
    assert decision.restrictions == (Restriction.NO_NEW_ORDERS,) and decision.phase is None


def test_symbol_known_from_quotes_only_then_no_reference_data() -> None:
    target = engine()
    target.apply(quote(et(TUESDAY, "10:00"), "10.00", "10.01"))
    assert _codes(target, NOON) == ["NO_REFERENCE_DATA"]


def test_no_reference_data_on_a_holiday_then_market_closed_too() -> None:
    assert _codes(engine(), et(THANKSGIVING, "11:00")) == ["NO_REFERENCE_DATA", "MARKET_CLOSED"]


def test_reference_data_of_yesterday_then_stale() -> None:
    decision = _check(opened(), et(WEDNESDAY, "10:00"))
    assert [(r.code, r.field) for r in decision.reasons] == [
        ("REFERENCE_DATA_STALE", "order.symbol")
    ]


def test_order_on_thanksgiving_then_market_closed() -> None:
    decision = _check(opened(), et(THANKSGIVING, "11:00"))
    assert [r.code for r in decision.reasons] == ["MARKET_CLOSED"]
    assert decision.phase is Phase.CLOSED
    assert decision.restrictions == (Restriction.NO_NEW_ORDERS,)


def test_utc_instant_on_thanksgiving_evening_then_market_closed_names_the_exchange_date() -> None:
    now = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)  # 22:00 ET on Thanksgiving
    (reason,) = _check(opened(), now).reasons
    assert reason.code == "MARKET_CLOSED" and str(THANKSGIVING) in reason.message


@pytest.mark.parametrize(
    ("day", "clock"),
    [
        (TUESDAY, "16:00:30"),
        (TUESDAY, "18:00"),
        (EARLY_CLOSE, "13:00:30"),
        (EARLY_CLOSE, "14:00"),
    ],
)
def test_continuous_order_after_the_close_then_session_closed(day: date, clock: str) -> None:
    decision = _check(opened(day), et(day, clock))
    assert [(r.code, r.field) for r in decision.reasons] == [("SESSION_CLOSED", "order.order_type")]
    assert decision.phase is Phase.CLOSED


def test_continuous_order_during_the_closing_cross_then_session_closed_and_cross() -> None:
    decision = _check(opened(), et(TUESDAY, "16:00:05"))
    assert [r.code for r in decision.reasons] == ["SESSION_CLOSED", "AUCTION_CROSS_IN_PROGRESS"]
    assert set(decision.restrictions) == {Restriction.NO_NEW_ORDERS, Restriction.NO_CANCEL}


def test_continuous_order_before_the_open_then_session_closed_but_moo_allowed() -> None:
    target = pre_open()
    now = et(TUESDAY, "08:00")
    assert _codes(target, now) == ["SESSION_CLOSED"]
    assert _check(target, now, order_type=MOO, limit=None).allowed
    assert _check(target, now, order_type=LOO, limit="100.00").allowed


def test_last_second_of_the_early_close_session_then_continuous_order_allowed() -> None:
    assert _check(opened(EARLY_CLOSE), et(EARLY_CLOSE, "12:59:59")).allowed


# --- halts and pauses ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "reason", "phase"),
    [
        ("T1", "SYMBOL_HALTED", Phase.HALTED),
        ("H10", "SYMBOL_HALTED", Phase.HALTED),
        ("LUDP", "SYMBOL_PAUSED", Phase.PAUSED),
        ("LUDS", "SYMBOL_PAUSED", Phase.PAUSED),
        ("M", "SYMBOL_PAUSED", Phase.PAUSED),
    ],
)
def test_declared_halt_or_pause_then_refused_with_its_reason(
    code: str, reason: str, phase: Phase
) -> None:
    target = opened()
    target.apply(halt(et(TUESDAY, "11:00"), code))
    decision = _check(target, NOON)
    assert [r.code for r in decision.reasons] == [reason]
    assert decision.phase is phase and decision.restrictions == (Restriction.NO_NEW_ORDERS,)


def test_short_market_order_under_restriction_on_halted_symbol_then_both_reasons() -> None:
    target = _restricted()
    target.apply(halt(et(TUESDAY, "11:00"), "T1"))
    decision = _check(target, NOON, side=Side.SELL_SHORT, order_type=OrderType.MARKET, limit=None)
    assert [r.code for r in decision.reasons] == ["SYMBOL_HALTED", "SHORT_SALE_MARKET_ORDER"]
    assert decision.short_sale_restricted


def test_halted_symbol_after_the_close_then_halted_and_session_closed() -> None:
    target = opened()
    target.apply(halt(et(TUESDAY, "15:00"), "T1"))
    assert _codes(target, et(TUESDAY, "16:30")) == ["SYMBOL_HALTED", "SESSION_CLOSED"]


def test_symbol_halt_during_market_wide_halt_then_both_reasons() -> None:
    target = opened()
    target.apply(index(et(TUESDAY, "09:30"), "5000.00", "5000.00"))
    target.apply(index(et(TUESDAY, "10:00"), "4650.00"))
    target.apply(halt(et(TUESDAY, "10:01"), "T1"))
    assert _codes(target, et(TUESDAY, "10:05")) == ["MARKET_WIDE_HALT", "SYMBOL_HALTED"]


def test_many_problems_at_once_then_every_reason_listed_once() -> None:
    target = _restricted()
    target.apply(halt(et(TUESDAY, "11:00"), "LUDP"))
    target.apply(halt(et(TUESDAY, "11:00"), "O1", venue="NYSE"))
    decision = _check(target, NOON, side=Side.SELL_SHORT, limit="89.955", venue="NYSE")
    assert [r.code for r in decision.reasons] == [
        "SYMBOL_PAUSED",
        "VENUE_OPERATIONAL_HALT",
        "LIMIT_PRICE_OFF_TICK",
    ]
    # Priced above the NBB, the price test passes: only applicable reasons are listed.
    at_bid = _check(target, NOON, side=Side.SELL_SHORT, limit="89.95", venue="NYSE")
    assert [r.code for r in at_bid.reasons] == [
        "SYMBOL_PAUSED",
        "VENUE_OPERATIONAL_HALT",
        "SHORT_SALE_PRICE_TEST",
    ]


# --- LULD bands and limit states ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "limit", "code"),
    [
        (Side.BUY, "105.01", "LIMIT_PRICE_ABOVE_UPPER_BAND"),
        (Side.SELL, "94.99", "LIMIT_PRICE_BELOW_LOWER_BAND"),
        (Side.SELL_SHORT_EXEMPT, "94.99", "LIMIT_PRICE_BELOW_LOWER_BAND"),
    ],
)
def test_limit_outside_the_bands_then_refused_on_the_limit_price(
    side: Side, limit: str, code: str
) -> None:
    decision = _check(opened(), NOON, side=side, limit=limit)
    assert [(r.code, r.field) for r in decision.reasons] == [(code, "order.limit_price")]


@pytest.mark.parametrize(
    ("side", "limit"),
    [(Side.BUY, "105.00"), (Side.SELL, "95.00"), (Side.BUY, "94.00"), (Side.SELL, "106.00")],
)
def test_limit_on_the_band_or_passive_beyond_it_then_allowed(side: Side, limit: str) -> None:
    assert _check(opened(), NOON, side=side, limit=limit).allowed


def test_limit_outside_the_bands_with_accept_resting_policy_then_allowed() -> None:
    lenient = PretradeSettings(outside_band_policy=OutsideBandPolicy.ACCEPT_RESTING)
    assert check_order(opened(), order(limit="105.01"), NOON, lenient).allowed


@pytest.mark.parametrize(
    ("bid", "ask", "side", "refused"),
    [
        ("94.95", "95.00", Side.SELL, True),  # limit down: selling pushes into the band
        ("94.95", "95.00", Side.SELL_SHORT_EXEMPT, True),
        ("94.95", "95.00", Side.BUY, False),
        ("105.00", "105.05", Side.BUY, True),  # limit up
        ("105.00", "105.05", Side.SELL, False),
    ],
)
def test_market_order_in_limit_state_then_refused_on_the_pushing_side(
    bid: str, ask: str, side: Side, refused: bool
) -> None:
    target = opened()
    move(target, et(TUESDAY, "11:59:55"), bid, ask)
    decision = _check(target, NOON, side=side, order_type=OrderType.MARKET, limit=None)
    assert Restriction.LIMIT_ONLY in decision.restrictions
    if refused:
        assert [(r.code, r.field) for r in decision.reasons] == [
            ("LIMIT_STATE_MARKET_ORDER", "order.order_type")
        ]
    else:
        assert decision.allowed


@pytest.mark.parametrize(
    ("prior", "tick", "limit", "off"),
    [
        ("100.00", None, "100.005", True),
        ("100.00", None, "100.01", False),
        ("0.50", None, "0.5001", False),  # Rule 612: $0.0001 below $1.00
        ("0.50", None, "0.50001", True),
        ("100.00", "0.05", "100.01", True),  # a per-symbol tick from reference data
        ("100.00", "0.05", "100.05", False),
    ],
)
def test_limit_price_against_the_tick_then_off_tick_refused(
    prior: str, tick: str | None, limit: str, off: bool
) -> None:
    target = engine()
    target.apply(reference(et(TUESDAY, "07:00"), prior=prior, tick=tick))
    target.apply(quote(et(TUESDAY, "09:30"), prior, prior))
    decision = _check(target, NOON, limit=limit)
    assert ("LIMIT_PRICE_OFF_TICK" in [r.code for r in decision.reasons]) is off
    if off:
        assert decision.reasons[-1].field == "order.limit_price"


# --- operational halts --------------------------------------------------------------------------


def test_operational_halt_at_one_venue_then_only_that_venue_refused() -> None:
    target = opened()
    target.apply(halt(et(TUESDAY, "11:00"), "O1", venue="NYSE"))
    decision = _check(target, NOON, venue="NYSE")
    assert [(r.code, r.field) for r in decision.reasons] == [
        ("VENUE_OPERATIONAL_HALT", "order.venue")
    ]
    for venue in ("NASDAQ", "IEX", ""):
        assert _check(target, NOON, venue=venue).allowed
    assert _restrictions(target, NOON) == []


# --- auction orders -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "order_type", "limit", "code"),
    [
        ("09:27:59", MOO, None, None),
        ("09:28", MOO, None, "AUCTION_ENTRY_CUTOFF"),
        ("09:29:29", LOO, "100.00", None),
        ("09:29:30", LOO, "100.00", "AUCTION_ENTRY_CUTOFF"),
    ],
)
def test_nasdaq_opening_auction_order_then_refused_from_its_cutoff(
    clock: str, order_type: OrderType, limit: str | None, code: str | None
) -> None:
    codes = _codes(pre_open(), et(TUESDAY, clock), order_type=order_type, limit=limit)
    assert codes == ([code] if code else [])


@pytest.mark.parametrize(
    ("listing", "clock", "order_type", "code"),
    [
        ("NASDAQ", "15:54:59", MOC, None),
        ("NASDAQ", "15:55", MOC, "AUCTION_ENTRY_CUTOFF"),
        ("NASDAQ", "15:57:59", LOC, None),
        ("NYSE", "15:49:59", MOC, None),
        ("NYSE", "15:50", LOC, "AUCTION_ENTRY_CUTOFF"),
    ],
)
def test_closing_auction_order_then_refused_from_its_listing_exchange_cutoff(
    listing: str, clock: str, order_type: OrderType, code: str | None
) -> None:
    target = opened(listing=listing)
    limit = "100.00" if order_type is LOC else None
    codes = _codes(target, et(TUESDAY, clock), order_type=order_type, limit=limit)
    assert codes == ([code] if code else [])


def test_early_close_day_then_closing_cutoffs_move_with_the_close() -> None:
    target = opened(EARLY_CLOSE, listing="NYSE")
    assert _check(target, et(EARLY_CLOSE, "12:49:59"), order_type=MOC, limit=None).allowed
    late = _codes(target, et(EARLY_CLOSE, "12:50"), order_type=MOC, limit=None)
    assert late == ["AUCTION_ENTRY_CUTOFF"]


def test_moc_to_a_non_listing_venue_then_refused_on_the_venue() -> None:
    decision = _check(opened(), NOON, order_type=MOC, limit=None, venue="NYSE")
    assert [(r.code, r.field) for r in decision.reasons] == [
        ("AUCTION_NOT_ON_LISTING_EXCHANGE", "order.venue")
    ]
    assert _check(opened(), NOON, order_type=MOC, limit=None, venue="NASDAQ").allowed


def test_limit_on_close_beyond_the_bands_then_not_a_band_matter() -> None:
    assert _check(opened(), NOON, order_type=LOC, limit="120.00").allowed


# --- quotation-only periods ---------------------------------------------------------------------


def _quotation_only() -> MarketStateEngine:
    target = opened()
    target.apply(halt(et(TUESDAY, "11:00"), "T1"))
    target.apply(resume(et(TUESDAY, "11:55"), "T3", ResumptionPhase.QUOTES))
    return target


def test_quotation_only_period_then_day_order_to_listing_exchange_allowed() -> None:
    target = _quotation_only()
    decision = _check(target, NOON, venue="NASDAQ")
    assert decision.allowed and decision.phase is Phase.QUOTATION_ONLY
    assert decision.restrictions == (Restriction.AUCTION_ONLY,)


def test_quotation_only_period_then_order_for_another_venue_refused() -> None:
    decision = _check(_quotation_only(), NOON, venue="NYSE")
    assert [(r.code, r.field) for r in decision.reasons] == [
        ("REOPENING_ORDER_NOT_ON_LISTING_EXCHANGE", "order.venue")
    ]


@pytest.mark.parametrize("tif", [TimeInForce.IOC, TimeInForce.FOK])
def test_quotation_only_period_then_order_that_cannot_rest_refused(tif: TimeInForce) -> None:
    decision = _check(_quotation_only(), NOON, venue="NASDAQ", tif=tif)
    assert [(r.code, r.field) for r in decision.reasons] == [
        ("REOPENING_ORDER_NOT_RESTING", "order.time_in_force")
    ]


def test_quotation_only_period_then_reopening_order_not_bound_by_the_old_bands() -> None:
    assert _check(_quotation_only(), NOON, venue="NASDAQ", limit="110.00").allowed


# --- Reg SHO Rule 201 ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("side", "order_type", "limit", "codes"),
    [
        (Side.SELL_SHORT, OrderType.LIMIT, "89.95", ["SHORT_SALE_PRICE_TEST"]),
        (Side.SELL_SHORT, OrderType.LIMIT, "89.90", ["SHORT_SALE_PRICE_TEST"]),
        (Side.SELL_SHORT, OrderType.LIMIT, "89.96", []),
        (Side.SELL_SHORT_EXEMPT, OrderType.LIMIT, "89.95", []),
        (Side.SELL, OrderType.LIMIT, "89.95", []),
        (Side.SELL, OrderType.MARKET, None, []),
        (Side.SELL_SHORT, OrderType.MARKET, None, ["SHORT_SALE_MARKET_ORDER"]),
        (Side.SELL_SHORT, OrderType.MIDPOINT_PEG, None, []),
    ],
)
def test_short_sale_restriction_then_priced_above_the_nbb_or_exempt_only(
    side: Side, order_type: OrderType, limit: str | None, codes: list[str]
) -> None:
    decision = _check(_restricted(), NOON, side=side, order_type=order_type, limit=limit)
    assert [r.code for r in decision.reasons] == codes
    assert decision.short_sale_restricted


def test_short_sale_price_test_then_about_the_limit_price() -> None:
    decision = _check(_restricted(), NOON, side=Side.SELL_SHORT, limit="89.95")
    assert [r.field for r in decision.reasons] == ["order.limit_price"]


def test_short_midpoint_peg_in_locked_market_under_restriction_then_price_test() -> None:
    target = _restricted()
    move(target, et(TUESDAY, "11:00"), "90.00", "90.00")
    codes = _codes(
        target, NOON, side=Side.SELL_SHORT, order_type=OrderType.MIDPOINT_PEG, limit=None
    )
    assert codes == ["SHORT_SALE_PRICE_TEST"]


def test_restriction_triggered_yesterday_then_still_in_force_today() -> None:
    target = _restricted()
    opened(WEDNESDAY, into=target)
    move(target, et(WEDNESDAY, "10:00:01"), "99.95", "100.05")
    now = et(WEDNESDAY, "11:00")
    assert _codes(target, now, side=Side.SELL_SHORT, limit="99.95") == ["SHORT_SALE_PRICE_TEST"]
    assert _check(target, now, side=Side.SELL_SHORT, limit="99.96").allowed


def test_restriction_from_reference_data_next_day_then_price_test_applies() -> None:
    target = engine()
    target.apply(reference(et(WEDNESDAY, "07:00"), restricted=True))
    target.apply(trade(et(WEDNESDAY, "09:30"), "100.00", venue="NASDAQ"))
    move(target, et(WEDNESDAY, "09:30"), "99.99", "100.01")
    now = et(WEDNESDAY, "10:00")
    decision = _check(target, now, side=Side.SELL_SHORT, limit="99.99")
    assert decision.short_sale_restricted
    assert [r.code for r in decision.reasons] == ["SHORT_SALE_PRICE_TEST"]


def test_restriction_carried_over_by_the_engine_then_price_test_applies() -> None:
    target = engine()
    target.carry_over_short_sale(SYMBOL, WEDNESDAY)
    opened(WEDNESDAY, into=target)
    now = et(WEDNESDAY, "10:00")
    assert _codes(target, now, side=Side.SELL_SHORT, limit="99.99") == ["SHORT_SALE_PRICE_TEST"]
    assert _check(target, now, side=Side.SELL_SHORT, limit="100.00").allowed


def test_restriction_ended_then_short_at_the_bid_allowed_on_the_third_day() -> None:
    target = _restricted()
    opened(EARLY_CLOSE, into=target)
    now = et(EARLY_CLOSE, "10:00")
    decision = _check(target, now, side=Side.SELL_SHORT, limit="99.99")
    assert decision.allowed and not decision.short_sale_restricted


def test_restricted_without_a_national_best_bid_then_refused() -> None:
    target = _restricted()
    move(target, et(TUESDAY, "11:00"), None, "90.05")
    codes = _codes(target, NOON, side=Side.SELL_SHORT, limit="90.00")
    assert codes == ["SHORT_SALE_NO_NBB"]


# --- restrictions vocabulary --------------------------------------------------------------------


def test_restrictions_when_halted_paused_or_closed_then_no_new_orders() -> None:
    target = opened()
    assert _restrictions(target, et(THANKSGIVING, "11:00")) == [Restriction.NO_NEW_ORDERS]
    assert _restrictions(target, et(TUESDAY, "17:00")) == [Restriction.NO_NEW_ORDERS]
    target.apply(halt(et(TUESDAY, "11:00"), "LUDP"))
    assert _restrictions(target, NOON) == [Restriction.NO_NEW_ORDERS]
    target.apply(halt(et(TUESDAY, "12:30"), "H10"))
    assert _restrictions(target, et(TUESDAY, "13:00")) == [Restriction.NO_NEW_ORDERS]


def test_restrictions_before_the_open_and_in_quotation_only_then_auction_only() -> None:
    assert _restrictions(pre_open(), et(TUESDAY, "08:00")) == [Restriction.AUCTION_ONLY]
    assert _restrictions(_quotation_only(), NOON) == [Restriction.AUCTION_ONLY]


@pytest.mark.parametrize(
    ("clock", "expected"),
    [
        ("09:27:59", [Restriction.AUCTION_ONLY]),
        ("09:28", [Restriction.AUCTION_ONLY, Restriction.LIMIT_ONLY, Restriction.NO_CANCEL]),
        ("09:29:29", [Restriction.AUCTION_ONLY, Restriction.LIMIT_ONLY, Restriction.NO_CANCEL]),
        ("09:29:30", [Restriction.AUCTION_ONLY, Restriction.NO_CANCEL]),
    ],
)
def test_restrictions_nasdaq_before_the_open_then_limit_only_between_0928_and_092930(
    clock: str, expected: list[Restriction]
) -> None:
    assert _restrictions(pre_open(), et(TUESDAY, clock)) == expected


def test_restrictions_in_a_limit_state_then_limit_only() -> None:
    target = opened()
    move(target, et(TUESDAY, "11:59:55"), "94.95", "95.00")
    assert _restrictions(target, NOON) == [Restriction.LIMIT_ONLY]


@pytest.mark.parametrize(
    ("listing", "clock", "no_cancel"),
    [
        ("NASDAQ", "15:54:59", False),
        ("NASDAQ", "15:55", True),
        ("NYSE", "15:49:59", False),
        ("NYSE", "15:50", True),
    ],
)
def test_restrictions_in_closing_cancel_window_then_no_cancel(
    listing: str, clock: str, no_cancel: bool
) -> None:
    found = _restrictions(opened(listing=listing), et(TUESDAY, clock))
    assert (Restriction.NO_CANCEL in found) is no_cancel
    assert Restriction.NO_NEW_ORDERS not in found


def test_restrictions_during_the_closing_cross_then_no_new_orders_and_no_cancel() -> None:
    found = _restrictions(opened(), et(TUESDAY, "16:00:05"))
    assert found == [Restriction.NO_NEW_ORDERS, Restriction.NO_CANCEL]


# --- property: nothing gets out of a halted or paused symbol --------------------------------------

_HALTS = ["inferred", "LUDP", "LUDS", "T1", "H10", "MWC1-index", "MWC3-index", "MWC1-message"]
_SESSION_SECONDS = 6 * 3600 + 30 * 60


@st.composite
def _any_order(draw: st.DrawFn) -> dict[str, object]:
    order_type = draw(st.sampled_from(OrderType))
    needs_limit = order_type.has_limit or (
        order_type is OrderType.MIDPOINT_PEG and draw(st.booleans())
    )
    limit = str(D(draw(st.integers(1, 20000))) / 100) if needs_limit else None
    return {
        "side": draw(st.sampled_from(Side)),
        "order_type": order_type,
        "limit": limit,
        "tif": draw(st.sampled_from(TimeInForce)),
        "venue": draw(st.sampled_from(("", *VENUES))),
    }


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(_HALTS),
    day=st.sampled_from([TUESDAY, EARLY_CLOSE]),
    start=st.integers(0, _SESSION_SECONDS - 60),
    later=st.integers(0, 10 * 3600),
    fields=_any_order(),
)
def test_property_no_order_allowed_while_paused_or_halted(
    kind: str, day: date, start: int, later: int, fields: dict[str, object]
) -> None:
    target = opened(day)
    target.apply(index(et(day, "09:30"), "5000.00", "5000.00"))
    session = target.session(et(day, "12:00"))
    assert session is not None
    at = min(et(day, "09:30") + timedelta(seconds=start), session.close_at - timedelta(seconds=20))
    until = session.close_at + timedelta(hours=4)
    if kind == "inferred":
        move(target, at, "94.95", "95.00")
        at += timedelta(seconds=15)
        target.tick(at)
    elif kind == "MWC1-index":
        cutoff = session.close_at - timedelta(minutes=35)
        at = min(at, cutoff)
        target.apply(index(at, "4650.00"))
        until = at + timedelta(minutes=15)
    elif kind == "MWC3-index":
        target.apply(index(at, "4000.00"))
    elif kind == "MWC1-message":
        target.apply(halt(at, "MWC1"))
    else:
        target.apply(halt(at, kind))
    now = min(at + timedelta(seconds=later), until - timedelta(microseconds=1))
    state = target.get(SYMBOL)
    assert state is not None
    assert target.phase(state, now) in (Phase.HALTED, Phase.PAUSED)
    decision = _check(target, now, **fields)
    assert not decision.allowed
    assert Restriction.NO_NEW_ORDERS in decision.restrictions
