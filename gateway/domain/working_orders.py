"""Working orders: what the gateway let out, where each stands, which to cancel on a halt.

The OMS registers an order through ``SubmitOrder`` (idempotent on ``client_order_id``) and
reports what the venue did with it through ``ReportOrderEvent``. When a halt, pause or circuit
breaker hits a symbol, every open order in it is marked PENDING_CANCEL and the OMS is told to
cancel it.

State table (event -> new state; anything else keeps the state and is answered as it stands):

    PENDING_NEW       ack -> WORKING, reject -> REJECTED, partial -> PARTIALLY_FILLED,
                      fill -> FILLED, cancel -> CANCELED, done -> DONE_FOR_DAY
    WORKING           partial -> PARTIALLY_FILLED, fill -> FILLED, cancel -> CANCELED, done -> DONE
    PARTIALLY_FILLED  partial (more) -> PARTIALLY_FILLED, fill -> FILLED, cancel -> CANCELED,
                      done -> DONE_FOR_DAY
    PENDING_CANCEL    cancel -> CANCELED, fill -> FILLED, done -> DONE_FOR_DAY, cancel rejected ->
                      the state before (an ack or partial fill meanwhile updates that state;
                      reject -> REJECTED only if the venue never acknowledged the order)
    CANCELED / DONE   a late fill raises the filled quantity (fills may arrive after "done"); a
                      fill of the whole quantity makes it FILLED
    REFUSED           never sent: venue events are refused (ORDER_NOT_WORKING)

A FILLED event that carries no cumulative quantity (0) fills the whole order. Cumulative quantity
never goes down and never exceeds the order quantity (FILL_EXCEEDS_QUANTITY); a FILLED event with
less than the order quantity is inconsistent (FILL_INCOMPLETE).

``register`` and ``refuse`` are idempotent on ``client_order_id``: the same content returns the
order recorded first, different content raises AlreadyExists (DUPLICATE_CLIENT_ORDER_ID).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime

from gateway.domain.orders import OrderRequest, Reason
from gateway.domain.vocabulary import Vocabulary
from gateway.errors import AlreadyExists, InvalidArgument, NotFound


class OrderState(Vocabulary):
    PENDING_NEW = "PENDING_NEW"
    WORKING = "WORKING"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    DONE_FOR_DAY = "DONE_FOR_DAY"
    REFUSED = "REFUSED"

    @property
    def is_open(self) -> bool:
        """Whether the order may still execute at a venue."""
        return self in _OPEN


_OPEN = frozenset(
    {
        OrderState.PENDING_NEW,
        OrderState.WORKING,
        OrderState.PARTIALLY_FILLED,
        OrderState.PENDING_CANCEL,
    }
)


class OrderEventType(Vocabulary):
    ACKNOWLEDGED = "ACKNOWLEDGED"
    REJECTED = "REJECTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    CANCEL_REJECTED = "CANCEL_REJECTED"
    DONE_FOR_DAY = "DONE_FOR_DAY"
    TIMED_OUT = "TIMED_OUT"


@dataclass(frozen=True, slots=True)
class WorkingOrder:
    """One order as the gateway tracks it (immutable; the registry replaces it on every change)."""

    order: OrderRequest
    state: OrderState
    created_at: datetime
    updated_at: datetime
    filled_quantity: int = 0
    venue: str = ""
    venue_order_id: str = ""
    decision_id: str = ""
    reasons: tuple[Reason, ...] = ()
    # State to return to when a cancel the gateway asked for is rejected by the venue.
    state_before_cancel: OrderState | None = None

    @property
    def leaves_quantity(self) -> int:
        return 0 if not self.state.is_open else self.order.quantity - self.filled_quantity


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """What a venue did with a working order, as the OMS reports it."""

    client_order_id: str
    event_type: OrderEventType
    at: datetime
    venue: str = ""
    venue_order_id: str = ""
    # Cumulative filled quantity after this event (0 when the event carries none).
    cumulative_quantity: int = 0
    text: str = ""


_AFTER_EVENT = {
    OrderEventType.CANCELED: OrderState.CANCELED,
    OrderEventType.DONE_FOR_DAY: OrderState.DONE_FOR_DAY,
}


class WorkingOrders:
    """Every order registered today, by client order id, with an index of open orders by symbol."""

    def __init__(self) -> None:
        self._orders: dict[str, WorkingOrder] = {}
        self._open_by_symbol: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._orders)

    def __iter__(self) -> Iterator[WorkingOrder]:
        return iter(self._orders.values())

    def get(self, client_order_id: str) -> WorkingOrder | None:
        return self._orders.get(client_order_id)

    def require(self, client_order_id: str) -> WorkingOrder:
        found = self._orders.get(client_order_id)
        if found is None:
            raise NotFound(
                f"no order with client_order_id {client_order_id!r} was submitted to the gateway",
                reason="ORDER_NOT_FOUND",
            )
        return found

    def previous(self, order: OrderRequest) -> WorkingOrder | None:
        """The order registered before under this id; AlreadyExists when its content differs."""
        existing = self._orders.get(order.client_order_id)
        if existing is not None and existing.order != order:
            raise AlreadyExists(
                f"client_order_id {order.client_order_id!r} was already submitted with different "
                "content; the original order is unchanged",
                reason="DUPLICATE_CLIENT_ORDER_ID",
            )
        return existing

    def register(
        self, order: OrderRequest, at: datetime, *, venue: str = "", decision_id: str = ""
    ) -> WorkingOrder:
        """Register an order the checks allowed (PENDING_NEW until the venue acknowledges).

        Idempotent: the same order again returns the one registered first.

        Raises:
            AlreadyExists: the id was registered with different content.
        """
        existing = self.previous(order)
        if existing is not None:
            return existing
        working = WorkingOrder(order, OrderState.PENDING_NEW, at, at, 0, venue, "", decision_id)
        self._store(working)
        return working

    def refuse(
        self, order: OrderRequest, reasons: tuple[Reason, ...], at: datetime
    ) -> WorkingOrder:
        """Remember a refused order, so a retry of the same id gets the same answer.

        Raises:
            AlreadyExists: the id was registered with different content.
        """
        existing = self.previous(order)
        if existing is not None:
            return existing
        refused = WorkingOrder(order, OrderState.REFUSED, at, at, reasons=reasons)
        self._store(refused)
        return refused

    def apply(self, event: OrderEvent) -> WorkingOrder:
        """Apply a venue event to the order it names and return the updated order."""
        current = self.require(event.client_order_id)
        if current.state is OrderState.REFUSED:
            raise InvalidArgument.field(
                "client_order_id",
                "the order was refused by the pre-trade checks and never sent",
                reason="ORDER_NOT_WORKING",
            )
        quantity = current.order.quantity
        cumulative = event.cumulative_quantity
        if event.event_type is OrderEventType.FILLED and cumulative == 0:
            cumulative = quantity  # the event carries no quantity: the whole order is filled
        if cumulative > quantity:
            raise InvalidArgument.field(
                "cumulative_quantity",
                f"{cumulative} exceeds the order quantity {quantity}",
                reason="FILL_EXCEEDS_QUANTITY",
            )
        if event.event_type is OrderEventType.FILLED and cumulative < quantity:
            raise InvalidArgument.field(
                "cumulative_quantity",
                f"a FILLED event must carry the order quantity {quantity}, not {cumulative}",
                reason="FILL_INCOMPLETE",
            )
        filled = max(current.filled_quantity, cumulative)
        state = self._next_state(current, event, filled)
        before = None
        if state is OrderState.PENDING_CANCEL:
            before = self._state_behind_cancel(current, event, filled)
        updated = replace(
            current,
            state=state,
            filled_quantity=filled,
            updated_at=max(current.updated_at, event.at),
            venue=event.venue or current.venue,
            venue_order_id=event.venue_order_id or current.venue_order_id,
            state_before_cancel=before,
        )
        self._store(updated)
        return updated

    @staticmethod
    def _next_state(current: WorkingOrder, event: OrderEvent, filled: int) -> OrderState:
        kind = event.event_type
        if filled == current.order.quantity and filled > 0:
            return OrderState.FILLED
        if not current.state.is_open:
            return current.state  # late events on a finished order only raise the fill
        pending_cancel = current.state is OrderState.PENDING_CANCEL
        if kind is OrderEventType.CANCEL_REJECTED:
            if not pending_cancel:
                return current.state
            return WorkingOrders._state_behind_cancel(current, event, filled)
        if kind is OrderEventType.REJECTED:
            # Only an order the venue never acknowledged can be rejected; a reject of anything
            # else (a cancel or modify) leaves the order as it stands.
            never_acked = (current.state_before_cancel if pending_cancel else current.state) is (
                OrderState.PENDING_NEW
            )
            return OrderState.REJECTED if never_acked and filled == 0 else current.state
        if kind in _AFTER_EVENT:
            return _AFTER_EVENT[kind]
        if pending_cancel:
            return current.state  # acks and partial fills wait behind the cancel
        if filled > 0:
            return OrderState.PARTIALLY_FILLED
        if kind is OrderEventType.ACKNOWLEDGED:
            return OrderState.WORKING
        return current.state

    @staticmethod
    def _state_behind_cancel(current: WorkingOrder, event: OrderEvent, filled: int) -> OrderState:
        """The state a cancel rejected now would return to, counting what happened meanwhile."""
        before = current.state_before_cancel or OrderState.WORKING
        if filled > 0:
            return OrderState.PARTIALLY_FILLED
        if before is OrderState.PENDING_NEW and event.event_type is OrderEventType.ACKNOWLEDGED:
            return OrderState.WORKING
        return before

    def open_orders(self, symbol: str) -> list[WorkingOrder]:
        return [self._orders[i] for i in sorted(self._open_by_symbol.get(symbol, ()))]

    def mark_pending_cancel(
        self,
        symbol: str,
        reason: Reason,
        at: datetime,
        *,
        venue: str | None = None,
        only: str | None = None,
        auction_orders: bool = True,
    ) -> list[WorkingOrder]:
        """Mark every open order of ``symbol`` (at ``venue`` only, when given) PENDING_CANCEL.

        ``only`` restricts it to one client order id; ``auction_orders=False`` leaves auction-only
        orders (MOO, MOC, ...) working, since they wait for the auction anyway. Returns the
        orders newly marked; orders already pending cancel are left as they are.
        """
        marked = []
        for working in self.open_orders(symbol):
            if working.state is OrderState.PENDING_CANCEL:
                continue
            if venue is not None and working.venue != venue:
                continue
            if only is not None and working.order.client_order_id != only:
                continue
            if not auction_orders and working.order.order_type.is_auction_only:
                continue
            updated = replace(
                working,
                state=OrderState.PENDING_CANCEL,
                updated_at=at,
                reasons=(*working.reasons, reason),
                state_before_cancel=working.state,
            )
            self._store(updated)
            marked.append(updated)
        return marked

    def _store(self, working: WorkingOrder) -> None:
        order_id = working.order.client_order_id
        self._orders[order_id] = working
        ids = self._open_by_symbol.setdefault(working.order.symbol, set())
        if working.state.is_open:
            ids.add(order_id)
        else:
            ids.discard(order_id)
