"""Working orders: idempotent registration, the state table, cancels on halts, check_cancel."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.domain.orders import OrderRequest, OrderType, Reason
from gateway.domain.pretrade import check_cancel
from gateway.domain.working_orders import (
    OrderEvent,
    OrderEventType,
    OrderState,
    WorkingOrder,
    WorkingOrders,
)
from gateway.errors import AlreadyExists, InvalidArgument, NotFound
from tests.domain.halts.feed import TUESDAY, et, halt, opened, order

T0 = et(TUESDAY, "10:00")
HALT = Reason("HALT", "AAPL halted (T1)")
ACK, REJECT = OrderEventType.ACKNOWLEDGED, OrderEventType.REJECTED
PARTIAL, FILL = OrderEventType.PARTIALLY_FILLED, OrderEventType.FILLED
CANCELED, CANCEL_REJECTED = OrderEventType.CANCELED, OrderEventType.CANCEL_REJECTED
DONE, TIMED_OUT = OrderEventType.DONE_FOR_DAY, OrderEventType.TIMED_OUT
S = OrderState


def _event(
    kind: OrderEventType, cumulative: int = 0, *, at: datetime = T0, client_order_id: str = "ord-1"
) -> OrderEvent:
    return OrderEvent(client_order_id, kind, at, cumulative_quantity=cumulative)


def _registered(**fields: object) -> tuple[WorkingOrders, WorkingOrder]:
    orders = WorkingOrders()
    working = orders.register(order(**fields), T0, venue="NASDAQ", decision_id="d-1")  # type: ignore[arg-type]
    return orders, working


def _cancel(orders: WorkingOrders) -> None:
    orders.mark_pending_cancel("AAPL", HALT, T0)


# --- registration -------------------------------------------------------------------------------


def test_register_then_pending_new_with_venue_and_decision() -> None:
    orders, working = _registered()
    assert (working.state, working.venue, working.decision_id) == (S.PENDING_NEW, "NASDAQ", "d-1")
    assert (working.filled_quantity, working.leaves_quantity) == (0, 100)
    assert orders.require("ord-1") is working and len(orders) == 1
    assert orders.open_orders("AAPL") == [working]


def test_register_same_order_again_then_same_order_returned_unchanged() -> None:
    orders, working = _registered()
    again = orders.register(order(), T0 + timedelta(seconds=1), venue="IEX", decision_id="d-2")
    assert again is working and len(orders) == 1


def test_register_same_id_with_different_content_then_already_exists() -> None:
    orders, working = _registered()
    with pytest.raises(AlreadyExists) as raised:
        orders.register(order(quantity=200), T0)
    assert raised.value.reason == "DUPLICATE_CLIENT_ORDER_ID"
    assert orders.require("ord-1") is working


def test_previous_then_none_same_order_or_already_exists() -> None:
    orders, working = _registered()
    assert orders.previous(order(client_order_id="ord-2")) is None
    assert orders.previous(order()) is working
    with pytest.raises(AlreadyExists) as raised:
        orders.previous(order(limit="100.01"))
    assert raised.value.reason == "DUPLICATE_CLIENT_ORDER_ID"


def test_refused_order_then_remembered_and_retry_gets_the_same_answer() -> None:
    orders = WorkingOrders()
    reasons = (Reason("SYMBOL_HALTED", "halted"),)
    refused = orders.refuse(order(), reasons, T0)
    assert refused.state is S.REFUSED and refused.reasons == reasons
    assert orders.previous(order()) is refused
    assert orders.refuse(order(), (), T0) is refused
    assert orders.register(order(), T0) is refused
    assert orders.open_orders("AAPL") == []
    with pytest.raises(InvalidArgument) as raised:
        orders.apply(_event(ACK))
    assert raised.value.reason == "ORDER_NOT_WORKING"


def test_unknown_order_then_not_found() -> None:
    orders = WorkingOrders()
    assert orders.get("nope") is None
    with pytest.raises(NotFound) as raised:
        orders.apply(_event(ACK, client_order_id="nope"))
    assert raised.value.reason == "ORDER_NOT_FOUND"


# --- the state table ----------------------------------------------------------------------------

# (events before, event, cumulative, expected state, expected filled)
TABLE = [
    ([], ACK, 0, S.WORKING, 0),
    ([], REJECT, 0, S.REJECTED, 0),
    ([], PARTIAL, 40, S.PARTIALLY_FILLED, 40),
    ([], FILL, 100, S.FILLED, 100),
    ([], TIMED_OUT, 0, S.PENDING_NEW, 0),
    ([], CANCELED, 0, S.CANCELED, 0),
    ([(ACK, 0)], PARTIAL, 40, S.PARTIALLY_FILLED, 40),
    ([(ACK, 0)], FILL, 100, S.FILLED, 100),
    ([(ACK, 0)], CANCELED, 0, S.CANCELED, 0),
    ([(ACK, 0)], DONE, 0, S.DONE_FOR_DAY, 0),
    ([(ACK, 0)], ACK, 0, S.WORKING, 0),
    ([(ACK, 0)], REJECT, 0, S.WORKING, 0),  # a reject of a modify: the order works on
    ([(ACK, 0)], CANCEL_REJECTED, 0, S.WORKING, 0),
    ([(ACK, 0), (PARTIAL, 40)], PARTIAL, 70, S.PARTIALLY_FILLED, 70),
    ([(ACK, 0), (PARTIAL, 40)], PARTIAL, 30, S.PARTIALLY_FILLED, 40),  # never goes down
    ([(ACK, 0), (PARTIAL, 40)], FILL, 100, S.FILLED, 100),
    ([(ACK, 0), (PARTIAL, 40)], CANCELED, 40, S.CANCELED, 40),
    ([(ACK, 0), (PARTIAL, 40)], ACK, 0, S.PARTIALLY_FILLED, 40),
    ([(ACK, 0), (PARTIAL, 40)], REJECT, 0, S.PARTIALLY_FILLED, 40),
    ([(ACK, 0), (CANCELED, 0)], PARTIAL, 30, S.CANCELED, 30),  # late fill after cancel
    ([(ACK, 0), (CANCELED, 0)], FILL, 100, S.FILLED, 100),
    ([(ACK, 0), (DONE, 0)], PARTIAL, 60, S.DONE_FOR_DAY, 60),
    ([(REJECT, 0)], ACK, 0, S.REJECTED, 0),
    ([(ACK, 0), (FILL, 100)], CANCELED, 0, S.FILLED, 100),
]


@pytest.mark.parametrize(("history", "kind", "cumulative", "state", "filled"), TABLE)
def test_state_table_then_event_moves_the_order_as_the_table_says(
    history: list[tuple[OrderEventType, int]],
    kind: OrderEventType,
    cumulative: int,
    state: OrderState,
    filled: int,
) -> None:
    orders, _ = _registered()
    for past, past_cumulative in history:
        orders.apply(_event(past, past_cumulative))
    updated = orders.apply(_event(kind, cumulative, at=T0 + timedelta(seconds=1)))
    assert (updated.state, updated.filled_quantity) == (state, filled)
    assert orders.require("ord-1") is updated
    assert (updated in orders.open_orders("AAPL")) is state.is_open
    if not state.is_open:
        assert updated.leaves_quantity == 0


def test_late_fill_after_cancel_then_filled_quantity_raised_and_nothing_left() -> None:
    orders, _ = _registered()
    orders.apply(_event(ACK))
    _cancel(orders)
    canceled = orders.apply(_event(CANCELED))
    assert canceled.state is S.CANCELED and orders.open_orders("AAPL") == []
    late = orders.apply(_event(PARTIAL, 25, at=T0 + timedelta(seconds=2)))
    assert (late.state, late.filled_quantity, late.leaves_quantity) == (S.CANCELED, 25, 0)
    assert late.updated_at == T0 + timedelta(seconds=2)


def test_cumulative_quantity_beyond_order_quantity_then_refused_and_order_unchanged() -> None:
    orders, _ = _registered()
    working = orders.apply(_event(PARTIAL, 40))
    with pytest.raises(InvalidArgument) as raised:
        orders.apply(_event(PARTIAL, 101))
    assert raised.value.reason == "FILL_EXCEEDS_QUANTITY"
    assert [v.field for v in raised.value.violations] == ["cumulative_quantity"]
    assert orders.require("ord-1") is working


def test_filled_event_without_a_quantity_then_the_whole_order_is_filled() -> None:
    orders, _ = _registered()
    filled = orders.apply(_event(FILL))
    assert (filled.state, filled.filled_quantity) == (S.FILLED, 100)


def test_filled_event_with_less_than_the_order_quantity_then_refused() -> None:
    orders, working = _registered()
    with pytest.raises(InvalidArgument) as raised:
        orders.apply(_event(FILL, 60))
    assert raised.value.reason == "FILL_INCOMPLETE"
    assert orders.require("ord-1") is working


def test_venue_event_then_venue_and_its_order_id_recorded() -> None:
    orders, _ = _registered()
    event = OrderEvent("ord-1", ACK, T0, venue="IEX", venue_order_id="v-9")
    acked = orders.apply(event)
    assert (acked.venue, acked.venue_order_id) == ("IEX", "v-9")
    assert orders.apply(_event(PARTIAL, 10)).venue_order_id == "v-9"


# --- cancels the gateway asks for ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("history", "before"),
    [
        ([], S.PENDING_NEW),
        ([(ACK, 0)], S.WORKING),
        ([(ACK, 0), (PARTIAL, 30)], S.PARTIALLY_FILLED),
    ],
)
def test_cancel_rejected_then_order_returns_to_its_state_before(
    history: list[tuple[OrderEventType, int]], before: OrderState
) -> None:
    orders, _ = _registered()
    for kind, cumulative in history:
        orders.apply(_event(kind, cumulative))
    _cancel(orders)
    pending = orders.require("ord-1")
    assert (pending.state, pending.state_before_cancel) == (S.PENDING_CANCEL, before)
    assert pending.reasons == (HALT,)
    back = orders.apply(_event(CANCEL_REJECTED))
    assert (back.state, back.state_before_cancel) == (before, None)
    # A stray second rejection changes nothing.
    assert orders.apply(_event(CANCEL_REJECTED)).state is before


@pytest.mark.parametrize(
    ("meanwhile", "cumulative", "after"),
    [(ACK, 0, S.WORKING), (PARTIAL, 30, S.PARTIALLY_FILLED)],
)
def test_venue_news_while_pending_cancel_then_cancel_rejected_returns_to_the_news(
    meanwhile: OrderEventType, cumulative: int, after: OrderState
) -> None:
    orders, _ = _registered()
    _cancel(orders)
    pending = orders.apply(_event(meanwhile, cumulative))
    assert pending.state is S.PENDING_CANCEL and pending.filled_quantity == cumulative
    back = orders.apply(_event(CANCEL_REJECTED))
    assert (back.state, back.filled_quantity) == (after, cumulative)


@pytest.mark.parametrize(
    ("kind", "cumulative", "state"),
    [(CANCELED, 0, S.CANCELED), (FILL, 100, S.FILLED), (DONE, 0, S.DONE_FOR_DAY)],
)
def test_pending_cancel_then_venue_answer_ends_the_order(
    kind: OrderEventType, cumulative: int, state: OrderState
) -> None:
    orders, _ = _registered()
    orders.apply(_event(ACK))
    _cancel(orders)
    ended = orders.apply(_event(kind, cumulative))
    assert (ended.state, ended.state_before_cancel) == (state, None)
    assert orders.open_orders("AAPL") == []


def test_reject_of_an_unacknowledged_order_pending_cancel_then_rejected() -> None:
    orders, _ = _registered()
    _cancel(orders)
    assert orders.apply(_event(REJECT)).state is S.REJECTED


def test_mark_pending_cancel_for_a_symbol_then_only_its_open_orders_marked_once() -> None:
    orders = WorkingOrders()
    orders.register(order(client_order_id="a"), T0, venue="NASDAQ")
    orders.register(order(client_order_id="b"), T0, venue="NYSE")
    orders.register(order(client_order_id="c", symbol="MSFT"), T0, venue="NASDAQ")
    orders.register(order(client_order_id="d"), T0, venue="IEX")
    orders.apply(_event(FILL, 100, client_order_id="d"))
    marked = orders.mark_pending_cancel("AAPL", HALT, T0 + timedelta(seconds=1))
    assert [w.order.client_order_id for w in marked] == ["a", "b"]
    assert all(w.state is S.PENDING_CANCEL and w.reasons == (HALT,) for w in marked)
    assert all(w.updated_at == T0 + timedelta(seconds=1) for w in marked)
    assert orders.require("c").state is S.PENDING_NEW
    assert orders.require("d").state is S.FILLED
    assert orders.mark_pending_cancel("AAPL", HALT, T0) == []  # already pending


def test_mark_pending_cancel_for_one_venue_then_other_venues_keep_working() -> None:
    orders = WorkingOrders()
    orders.register(order(client_order_id="a"), T0, venue="NASDAQ")
    orders.register(order(client_order_id="b"), T0, venue="NYSE")
    marked = orders.mark_pending_cancel("AAPL", HALT, T0, venue="NYSE")
    assert [w.order.client_order_id for w in marked] == ["b"]
    assert orders.require("a").state is S.PENDING_NEW


def test_mark_pending_cancel_without_auction_orders_then_moc_left_working() -> None:
    orders = WorkingOrders()
    orders.register(order(client_order_id="a"), T0, venue="NASDAQ")
    moc = order(client_order_id="b", order_type=OrderType.MARKET_ON_CLOSE, limit=None)
    orders.register(moc, T0, venue="NASDAQ")
    marked = orders.mark_pending_cancel("AAPL", HALT, T0, auction_orders=False)
    assert [w.order.client_order_id for w in marked] == ["a"]
    assert orders.require("b").state is S.PENDING_NEW


def test_mark_pending_cancel_for_one_order_then_only_that_one() -> None:
    orders = WorkingOrders()
    orders.register(order(client_order_id="a"), T0)
    orders.register(order(client_order_id="b"), T0)
    marked = orders.mark_pending_cancel("AAPL", HALT, T0, only="b")
    assert [w.order.client_order_id for w in marked] == ["b"]


# --- check_cancel -------------------------------------------------------------------------------


def _working(request: OrderRequest, state: OrderState = S.WORKING) -> WorkingOrder:
    return WorkingOrder(request, state, T0, T0, venue="NASDAQ")


@pytest.mark.parametrize(
    ("order_type", "clock", "code"),
    [
        (OrderType.MARKET_ON_CLOSE, "15:54:59", None),
        (OrderType.MARKET_ON_CLOSE, "15:55", "AUCTION_CANCEL_CUTOFF"),
        (OrderType.MARKET_ON_CLOSE, "15:59:59", "AUCTION_CANCEL_CUTOFF"),
        (OrderType.LIMIT_ON_CLOSE, "15:57:59", None),
        (OrderType.LIMIT_ON_CLOSE, "15:58", "AUCTION_CANCEL_CUTOFF"),
        (OrderType.LIMIT, "15:59", None),
        (OrderType.LIMIT, "16:00:05", "AUCTION_CROSS_IN_PROGRESS"),
    ],
)
def test_check_cancel_on_nasdaq_near_the_close_then_refused_after_the_cutoff(
    order_type: OrderType, clock: str, code: str | None
) -> None:
    limit = None if order_type is OrderType.MARKET_ON_CLOSE else "100.00"
    working = _working(order(order_type=order_type, limit=limit))
    reasons = check_cancel(opened(), working, et(TUESDAY, clock))
    assert [r.code for r in reasons] == ([code] if code else [])


def test_check_cancel_of_a_continuous_order_during_a_halt_then_allowed() -> None:
    target = opened()
    target.apply(halt(et(TUESDAY, "11:00"), "T1"))
    assert check_cancel(target, _working(order()), et(TUESDAY, "11:01")) == []


@pytest.mark.parametrize("state", [S.FILLED, S.CANCELED, S.REJECTED, S.DONE_FOR_DAY, S.REFUSED])
def test_check_cancel_of_a_finished_order_then_order_not_open(state: OrderState) -> None:
    reasons = check_cancel(opened(), _working(order(), state), et(TUESDAY, "11:00"))
    assert [(r.code, r.field) for r in reasons] == [("ORDER_NOT_OPEN", "client_order_id")]


def test_check_cancel_of_a_pending_cancel_order_then_allowed_again() -> None:
    reasons = check_cancel(opened(), _working(order(), S.PENDING_CANCEL), et(TUESDAY, "11:00"))
    assert reasons == []


# --- property -----------------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.sampled_from(OrderEventType), st.integers(0, 120)),
            st.just((None, 0)),  # the gateway asks to cancel
        ),
        max_size=25,
    )
)
def test_property_filled_quantity_never_falls_nor_exceeds_and_open_index_follows_state(
    steps: list[tuple[OrderEventType | None, int]],
) -> None:
    orders, working = _registered()
    for kind, cumulative in steps:
        before = working
        if kind is None:
            _cancel(orders)
        else:
            try:
                orders.apply(_event(kind, cumulative))
            except InvalidArgument:
                assert orders.require("ord-1") is before
        working = orders.require("ord-1")
        assert before.filled_quantity <= working.filled_quantity <= working.order.quantity
        assert (working in orders.open_orders("AAPL")) is working.state.is_open
        assert (working.state_before_cancel is not None) is (working.state is S.PENDING_CANCEL)
        if working.filled_quantity == working.order.quantity:
            assert working.state is S.FILLED
