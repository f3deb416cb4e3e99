"""PreTradeService: halt-safety checks, working orders and cancel instructions."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from gateway import tracing
from gateway._pb.execgw.v1 import pretrade_pb2 as pb
from gateway._pb.execgw.v1 import pretrade_pb2_grpc as pb_grpc
from gateway.api import convert, market_convert, routing_convert
from gateway.api.base import Context, Servicer
from gateway.domain.working_orders import OrderEvent, OrderState, WorkingOrder
from gateway.halt_guard import HaltGuard, Router
from gateway.metrics import Metrics

_EVENT_TYPES = frozenset(pb.OrderEventType.values()) - {pb.ORDER_EVENT_TYPE_UNSPECIFIED}

# Told of every venue event with the order before and after it (venue health, fill learning).
OrderEventListener = Callable[[WorkingOrder, WorkingOrder, OrderEvent], object]


class PreTradeServicer(Servicer, pb_grpc.PreTradeServiceServicer):
    SERVICE = pb.DESCRIPTOR.services_by_name["PreTradeService"]

    def __init__(
        self,
        metrics: Metrics,
        guard: HaltGuard,
        route: Router,
        heartbeat_seconds: float = 5.0,
        on_order_event: OrderEventListener | None = None,
    ) -> None:
        super().__init__(metrics)
        self.guard = guard
        self.route = route
        self.heartbeat_seconds = heartbeat_seconds
        self.on_order_event = on_order_event

    async def CheckOrder(
        self, request: pb.CheckOrderRequest, context: Context
    ) -> pb.CheckOrderResponse:
        order = convert.require_order(request.order, request.HasField("order"))
        decision, elapsed = self.guard.check(order, "CheckOrder")
        tracing.annotate_decision(decision.allowed, decision.reasons)
        response = pb.CheckOrderResponse()
        market_convert.decision(decision, response, elapsed)
        return response

    async def SubmitOrder(
        self, request: pb.SubmitOrderRequest, context: Context
    ) -> pb.SubmitOrderResponse:
        order = convert.require_order(request.order, request.HasField("order"))
        outcome = self.guard.submit(order, self.route)
        working = outcome.order
        tracing.annotate_decision(working.state is not OrderState.REFUSED, working.reasons)
        response = pb.SubmitOrderResponse(
            accepted=working.state is not OrderState.REFUSED, duplicate=outcome.duplicate
        )
        if outcome.check is not None:
            market_convert.decision(outcome.check, response.check, outcome.check_ns)
        else:
            response.check.allowed = response.accepted
            for reason in working.reasons:
                market_convert.reason(reason, response.check.reasons.add())
        if outcome.routing is not None:
            routing_convert.decision(outcome.routing, response.routing, outcome.routing_ns)
        market_convert.working_order(working, response.order)
        return response

    async def CancelOrder(
        self, request: pb.CancelOrderRequest, context: Context
    ) -> pb.CancelOrderResponse:
        problems: convert.Problems = []
        convert.identifier(request.client_order_id, "client_order_id", problems)
        convert.raise_if(problems)
        working, reasons = self.guard.cancel(request.client_order_id)
        response = pb.CancelOrderResponse(allowed=not reasons)
        for reason in reasons:
            market_convert.reason(reason, response.reasons.add())
        market_convert.working_order(working, response.order)
        return response

    async def ReportOrderEvent(
        self, request: pb.ReportOrderEventRequest, context: Context
    ) -> pb.ReportOrderEventResponse:
        problems: convert.Problems = []
        convert.identifier(request.client_order_id, "client_order_id", problems)
        if request.event_type == pb.ORDER_EVENT_TYPE_UNSPECIFIED:
            problems.append(convert.FieldViolation("event_type", "is required"))
        elif request.event_type not in _EVENT_TYPES:
            problems.append(
                convert.FieldViolation("event_type", f"unknown value {request.event_type}")
            )
        convert.venue(request.venue, "venue", problems)
        if request.cumulative_quantity < 0:
            problems.append(convert.FieldViolation("cumulative_quantity", "must be >= 0"))
        if len(request.text) > 256:
            problems.append(convert.FieldViolation("text", "is longer than 256 characters"))
        at = convert.timestamp(
            request.event_time,
            request.HasField("event_time"),
            "event_time",
            problems,
            required=False,
        )
        convert.identifier(request.venue_order_id, "venue_order_id", problems, required=False)
        convert.raise_if(problems)
        event = OrderEvent(
            request.client_order_id,
            market_convert.ORDER_EVENT_TYPES[request.event_type],
            at or self.guard.now(),
            request.venue,
            request.venue_order_id,
            request.cumulative_quantity,
            request.text,
        )
        before, after = self.guard.report(event)
        if self.on_order_event is not None:
            self.on_order_event(before, after, event)
        response = pb.ReportOrderEventResponse()
        market_convert.working_order(after, response.order)
        return response

    async def StreamOrderInstructions(
        self, request: pb.StreamOrderInstructionsRequest, context: Context
    ) -> AsyncIterator[pb.OrderInstruction]:
        problems: convert.Problems = []
        for i, account in enumerate(request.accounts):
            convert.identifier(account, f"accounts[{i}]", problems)
        convert.raise_if(problems)
        stream = self.guard.instructions
        subscription, start = stream.subscribe(request.accounts or None)
        last = start.sequence
        try:
            # Instructions still in force (their order is pending cancel) come first.
            for update in start.snapshot or ():
                working = self.guard.orders.get(update.value.client_order_id)
                if working is not None and working.state.is_open:
                    yield update.value
            while True:
                updates = await subscription.wait_updates(self.heartbeat_seconds)
                if updates is None:
                    beat = pb.OrderInstruction(sequence=last, heartbeat=True)
                    beat.issued_at.FromDatetime(self.guard.now())
                    yield beat
                    continue
                if not updates:
                    return
                for update in updates:
                    last = update.sequence
                    yield update.value
        finally:
            subscription.close()
