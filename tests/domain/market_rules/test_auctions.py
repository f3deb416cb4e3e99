"""Auction phases and entry/cancel windows: NYSE vs Nasdaq cut-offs, early close, the cross."""

from __future__ import annotations

from datetime import time, timedelta

import pytest

from gateway.domain.auctions import (
    AUCTION_CANCEL_CUTOFF,
    AUCTION_CROSS_IN_PROGRESS,
    AUCTION_ENTRY_CUTOFF,
    AUCTION_NOT_AVAILABLE,
    DEFAULT_WINDOWS,
    NYSE_WINDOWS,
    SESSION_CLOSED,
    AuctionSettings,
    AuctionWindows,
    Phase,
    SessionTimes,
    cancel_refusal,
    entry_refusal,
    imbalance_expected,
    no_cancel_window,
    scheduled_phase,
)
from gateway.domain.orders import OrderType

from .sessions import DAY, EARLY_CLOSE_DAY, at, session

FULL_DAY = DAY

MOO, LOO = OrderType.MARKET_ON_OPEN, OrderType.LIMIT_ON_OPEN
MOC, LOC = OrderType.MARKET_ON_CLOSE, OrderType.LIMIT_ON_CLOSE
IO, CO = OrderType.IMBALANCE_ONLY, OrderType.CLOSING_OFFSET
LIMIT, MARKET, PEG = OrderType.LIMIT, OrderType.MARKET, OrderType.MIDPOINT_PEG


def test_fake_session_when_built_then_satisfies_the_protocol() -> None:
    times: SessionTimes = session(early=True)
    assert times.close_shift == timedelta(hours=-3)


# Section 5 table, both sides of every cut-off.
ENTRY_CASES = [
    # Nasdaq opening: MOO before 09:28, LOO until 09:29:30.
    ("NASDAQ", MOO, "09:27:59", None),
    ("NASDAQ", MOO, "09:27:59.999999", None),
    ("NASDAQ", MOO, "09:28:00", AUCTION_ENTRY_CUTOFF),
    ("NASDAQ", LOO, "09:29:29", None),
    ("NASDAQ", LOO, "09:29:30", AUCTION_ENTRY_CUTOFF),
    ("NASDAQ", MOO, "09:30:00", AUCTION_NOT_AVAILABLE),
    ("NASDAQ", LOO, "10:00:00", AUCTION_NOT_AVAILABLE),
    # Nasdaq closing: MOC until 15:55, LOC until 15:58, IO until 15:58, no closing offset.
    ("NASDAQ", MOC, "15:54:59", None),
    ("NASDAQ", MOC, "15:55:00", AUCTION_ENTRY_CUTOFF),
    ("NASDAQ", LOC, "15:57:59", None),
    ("NASDAQ", LOC, "15:58:00", AUCTION_ENTRY_CUTOFF),
    ("NASDAQ", IO, "15:57:59", None),
    ("NASDAQ", IO, "15:58:00", AUCTION_ENTRY_CUTOFF),
    ("NASDAQ", CO, "12:00:00", AUCTION_NOT_AVAILABLE),
    # NYSE opening: MOO/LOO until the open.
    ("NYSE", MOO, "09:29:59", None),
    ("NYSE", LOO, "09:29:59.999999", None),
    ("NYSE", MOO, "09:30:00", AUCTION_NOT_AVAILABLE),
    ("NYSE", LOO, "09:30:00", AUCTION_NOT_AVAILABLE),
    # NYSE closing: MOC/LOC until 15:50; closing offset until 15:59:50 like floor D orders.
    ("NYSE", MOC, "15:49:59", None),
    ("NYSE", MOC, "15:50:00", AUCTION_ENTRY_CUTOFF),
    ("NYSE", LOC, "15:49:59", None),
    ("NYSE", LOC, "15:50:00", AUCTION_ENTRY_CUTOFF),
    ("NYSE", CO, "15:59:49", None),
    ("NYSE", CO, "15:59:50", AUCTION_ENTRY_CUTOFF),
    ("NYSE", IO, "15:59:49", None),
    ("NYSE", IO, "15:59:50", AUCTION_ENTRY_CUTOFF),
    # Closing orders may be entered before the open; opening orders before dawn.
    ("NYSE", MOC, "07:00:00", None),
    ("NASDAQ", MOO, "04:00:00", None),
    # Continuous orders: regular hours only.
    ("NYSE", LIMIT, "09:29:59", SESSION_CLOSED),
    ("NYSE", LIMIT, "09:30:00", None),
    ("NASDAQ", MARKET, "15:59:59.999999", None),
    ("NASDAQ", PEG, "12:00:00", None),
    ("NASDAQ", MARKET, "08:00:00", SESSION_CLOSED),
    # Between the close and the closing print (10 s): no new orders of any type.
    ("NYSE", LIMIT, "16:00:00", AUCTION_CROSS_IN_PROGRESS),
    ("NASDAQ", MOC, "16:00:09.999999", AUCTION_CROSS_IN_PROGRESS),
    ("NASDAQ", MOO, "16:00:05", AUCTION_CROSS_IN_PROGRESS),
    ("NYSE", LIMIT, "16:00:10", SESSION_CLOSED),
    ("NYSE", MOC, "16:00:10", AUCTION_NOT_AVAILABLE),
]


@pytest.mark.parametrize(("exchange", "order_type", "clock", "expected"), ENTRY_CASES)
def test_entry_refusal_when_full_day_then_section_5_windows(
    exchange: str, order_type: OrderType, clock: str, expected: str | None
) -> None:
    assert entry_refusal(order_type, exchange, at(clock), session()) == expected


EARLY_CLOSE_ENTRY_CASES = [
    # Close-relative cut-offs shift by -3 h: NYSE MOC/LOC 12:50, Nasdaq MOC 12:55, LOC 12:58.
    ("NYSE", MOC, "12:49:59", None),
    ("NYSE", MOC, "12:50:00", AUCTION_ENTRY_CUTOFF),
    ("NYSE", LOC, "12:50:00", AUCTION_ENTRY_CUTOFF),
    ("NYSE", CO, "12:59:49", None),
    ("NYSE", CO, "12:59:50", AUCTION_ENTRY_CUTOFF),
    ("NASDAQ", MOC, "12:54:59", None),
    ("NASDAQ", MOC, "12:55:00", AUCTION_ENTRY_CUTOFF),
    ("NASDAQ", LOC, "12:58:00", AUCTION_ENTRY_CUTOFF),
    ("NASDAQ", LIMIT, "12:59:59", None),
    ("NASDAQ", LIMIT, "13:00:00", AUCTION_CROSS_IN_PROGRESS),
    ("NASDAQ", LIMIT, "13:00:10", SESSION_CLOSED),
    ("NYSE", MOC, "13:30:00", AUCTION_NOT_AVAILABLE),
    # Opening times never shift.
    ("NASDAQ", MOO, "09:27:59", None),
    ("NASDAQ", MOO, "09:28:00", AUCTION_ENTRY_CUTOFF),
    ("NASDAQ", LOO, "09:29:30", AUCTION_ENTRY_CUTOFF),
]


@pytest.mark.parametrize(("exchange", "order_type", "clock", "expected"), EARLY_CLOSE_ENTRY_CASES)
def test_entry_refusal_when_early_close_then_closing_cutoffs_shift_by_three_hours(
    exchange: str, order_type: OrderType, clock: str, expected: str | None
) -> None:
    day = EARLY_CLOSE_DAY
    assert entry_refusal(order_type, exchange, at(clock, day), session(day, early=True)) == expected


@pytest.mark.parametrize("exchange", ["nasdaq", " Nasdaq "])
def test_entry_refusal_when_exchange_name_in_other_case_then_same_windows(exchange: str) -> None:
    assert entry_refusal(MOO, exchange, at("09:28:00"), session()) == AUCTION_ENTRY_CUTOFF


@pytest.mark.parametrize("exchange", ["OTC_MARKETS", "", "LTSE"])
def test_entry_refusal_when_unknown_listing_exchange_then_nyse_rules(exchange: str) -> None:
    assert entry_refusal(MOC, exchange, at("15:49:59"), session()) is None
    assert entry_refusal(MOC, exchange, at("15:50:00"), session()) == AUCTION_ENTRY_CUTOFF


@pytest.mark.parametrize("exchange", ["NYSE_AMERICAN", "BATS_BZX", "IEX"])
def test_default_windows_when_unverified_exchange_then_nyse_windows(exchange: str) -> None:
    assert DEFAULT_WINDOWS[exchange] == NYSE_WINDOWS


def test_entry_refusal_when_arca_listed_moo_at_0929_then_cutoff() -> None:
    assert entry_refusal(MOO, "NYSE_ARCA", at("09:28:59"), session()) is None
    assert entry_refusal(MOO, "NYSE_ARCA", at("09:29:00"), session()) == AUCTION_ENTRY_CUTOFF
    assert entry_refusal(MOC, "NYSE_ARCA", at("15:50:00"), session()) == AUCTION_ENTRY_CUTOFF


CANCEL_CASES = [
    # NYSE: no closing cancels from 15:50 (the 15:50-15:58 error cancels go to the exchange).
    ("NYSE", MOC, "15:49:59", None),
    ("NYSE", MOC, "15:50:00", AUCTION_CANCEL_CUTOFF),
    ("NYSE", LOC, "15:55:00", AUCTION_CANCEL_CUTOFF),
    ("NYSE", LOC, "15:58:00", AUCTION_CANCEL_CUTOFF),
    ("NYSE", CO, "15:52:00", AUCTION_CANCEL_CUTOFF),
    ("NYSE", IO, "15:49:59", None),
    # NYSE opening orders: cancellable until the open.
    ("NYSE", MOO, "09:29:59", None),
    ("NYSE", LOO, "09:29:59.999999", None),
    # Nasdaq: no cancel or modify of MOC/LOC after their entry cut-offs; same at the open.
    ("NASDAQ", MOC, "15:54:59", None),
    ("NASDAQ", MOC, "15:55:00", AUCTION_CANCEL_CUTOFF),
    ("NASDAQ", LOC, "15:57:59", None),
    ("NASDAQ", LOC, "15:58:00", AUCTION_CANCEL_CUTOFF),
    ("NASDAQ", IO, "15:58:00", AUCTION_CANCEL_CUTOFF),
    ("NASDAQ", MOO, "09:27:59", None),
    ("NASDAQ", MOO, "09:28:00", AUCTION_CANCEL_CUTOFF),
    ("NASDAQ", LOO, "09:29:29", None),
    ("NASDAQ", LOO, "09:29:30", AUCTION_CANCEL_CUTOFF),
    # After its auction an auction order no longer works: nothing to refuse.
    ("NASDAQ", MOO, "09:30:00", None),
    # Continuous orders may be cancelled any time except during the closing cross.
    ("NASDAQ", LIMIT, "15:59:00", None),
    ("NYSE", LIMIT, "16:00:00", AUCTION_CROSS_IN_PROGRESS),
    ("NYSE", MOC, "16:00:09", AUCTION_CROSS_IN_PROGRESS),
    ("NYSE", MOC, "16:00:10", None),
]


@pytest.mark.parametrize(("exchange", "order_type", "clock", "expected"), CANCEL_CASES)
def test_cancel_refusal_when_full_day_then_section_5_windows(
    exchange: str, order_type: OrderType, clock: str, expected: str | None
) -> None:
    assert cancel_refusal(order_type, exchange, at(clock), session()) == expected


def test_cancel_refusal_when_nyse_early_close_then_no_closing_cancel_from_1250() -> None:
    day = EARLY_CLOSE_DAY
    early = session(day, early=True)
    assert cancel_refusal(LOC, "NYSE", at("12:49:59", day), early) is None
    assert cancel_refusal(LOC, "NYSE", at("12:50:00", day), early) == AUCTION_CANCEL_CUTOFF


def test_cancel_refusal_when_error_cancels_allowed_to_1558_then_refused_only_from_1558() -> None:
    windows = AuctionWindows(closing_error_cancel_until=time(15, 58))
    settings = AuctionSettings(windows={"NYSE": windows})
    assert cancel_refusal(MOC, "NYSE", at("15:55:00"), session(), settings) is None
    assert cancel_refusal(CO, "NYSE", at("15:57:59"), session(), settings) is None
    refusal = cancel_refusal(MOC, "NYSE", at("15:58:00"), session(), settings)
    assert refusal == AUCTION_CANCEL_CUTOFF
    # Entry is unaffected: MOC still closes at 15:50.
    assert entry_refusal(MOC, "NYSE", at("15:55:00"), session(), settings) == AUCTION_ENTRY_CUTOFF


@pytest.mark.parametrize(
    ("exchange", "clock", "expected"),
    [
        ("NASDAQ", "09:27:59", False),
        ("NASDAQ", "09:28:00", True),
        ("NASDAQ", "09:30:00", False),
        ("NASDAQ", "15:54:59", False),
        ("NASDAQ", "15:55:00", True),
        ("NYSE", "09:29:59", False),
        ("NYSE", "15:49:59", False),
        ("NYSE", "15:50:00", True),
        ("NYSE", "16:00:05", True),
        ("NYSE", "16:00:10", False),
    ],
)
def test_no_cancel_window_when_some_auction_cancel_refused_then_true(
    exchange: str, clock: str, expected: bool
) -> None:
    assert no_cancel_window(exchange, at(clock), session()) is expected


PHASE_CASES = [
    ("NASDAQ", "04:00:00", Phase.PRE_OPEN),
    ("NASDAQ", "09:29:29", Phase.PRE_OPEN),
    ("NASDAQ", "09:29:30", Phase.OPENING_AUCTION),
    ("NASDAQ", "09:30:00", Phase.CONTINUOUS),
    ("NASDAQ", "15:54:59", Phase.CONTINUOUS),
    ("NASDAQ", "15:55:00", Phase.CLOSING_AUCTION),
    ("NASDAQ", "16:00:09", Phase.CLOSING_AUCTION),
    ("NASDAQ", "16:00:10", Phase.CLOSED),
    # NYSE: the last opening cut-off is the open itself, so no OPENING_AUCTION phase.
    ("NYSE", "09:29:59.999999", Phase.PRE_OPEN),
    ("NYSE", "09:30:00", Phase.CONTINUOUS),
    ("NYSE", "15:49:59", Phase.CONTINUOUS),
    ("NYSE", "15:50:00", Phase.CLOSING_AUCTION),
    ("NYSE", "20:00:00", Phase.CLOSED),
]


@pytest.mark.parametrize(("exchange", "clock", "expected"), PHASE_CASES)
def test_scheduled_phase_when_full_day_then_phase_of_the_clock(
    exchange: str, clock: str, expected: Phase
) -> None:
    assert scheduled_phase(at(clock), session(), exchange) is expected


@pytest.mark.parametrize(
    ("clock", "expected"),
    [
        ("12:49:59", Phase.CONTINUOUS),
        ("12:50:00", Phase.CLOSING_AUCTION),
        ("13:00:09", Phase.CLOSING_AUCTION),
        ("13:00:10", Phase.CLOSED),
    ],
)
def test_scheduled_phase_when_nyse_early_close_then_closing_auction_from_1250(
    clock: str, expected: Phase
) -> None:
    day = EARLY_CLOSE_DAY
    assert scheduled_phase(at(clock, day), session(day, early=True), "NYSE") is expected


def test_scheduled_phase_when_start_overridden_then_setting_wins() -> None:
    windows = AuctionWindows(opening_auction_start=time(9, 25), closing_auction_start=time(15, 45))
    settings = AuctionSettings(windows={"NYSE": windows})
    assert scheduled_phase(at("09:25:00"), session(), "NYSE", settings) is Phase.OPENING_AUCTION
    assert scheduled_phase(at("15:45:00"), session(), "NYSE", settings) is Phase.CLOSING_AUCTION


@pytest.mark.parametrize(
    ("exchange", "clock", "expected"),
    [
        ("NASDAQ", "09:24:59", False),
        ("NASDAQ", "09:25:00", True),
        ("NASDAQ", "09:30:00", False),
        ("NASDAQ", "15:49:59", False),
        ("NASDAQ", "15:50:00", True),
        ("NASDAQ", "16:00:00", False),
        ("NYSE", "08:00:00", True),
        ("NYSE", "07:59:59", False),
    ],
)
def test_imbalance_expected_when_clock_then_exchange_publication_windows(
    exchange: str, clock: str, expected: bool
) -> None:
    assert imbalance_expected(exchange, at(clock), session()) is expected


def test_auction_settings_when_cross_grace_negative_then_value_error() -> None:
    with pytest.raises(ValueError, match="cross_grace"):
        AuctionSettings(cross_grace=timedelta(seconds=-1))


def test_entry_refusal_when_cross_grace_zero_then_close_is_simply_closed() -> None:
    settings = AuctionSettings(cross_grace=timedelta(0))
    assert entry_refusal(LIMIT, "NYSE", at("16:00:00"), session(), settings) == SESSION_CLOSED
