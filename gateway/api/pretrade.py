"""PreTradeService: halt-safety checks, working orders and cancel instructions."""

from __future__ import annotations

from collections.abc import AsyncIterator

from gateway._pb.execgw.v1 import pretrade_pb2 as pb
from gateway._pb.execgw.v1 import pretrade_pb2_grpc as pb_grpc
from gateway.api import convert
from gateway.api.base import Context, Servicer
from gateway.errors import NotImplementedYet

_EVENT_TYPES = frozenset(pb.OrderEventType.values()) - {pb.ORDER_EVENT_TYPE_UNSPECIFIED}


class PreTradeServicer(Servicer, pb_grpc.PreTradeServiceServicer):
    SERVICE = pb.DESCRIPTOR.services_by_name["PreTradeService"]

    async def CheckOrder(
        self, request: pb.CheckOrderRequest, context: Context
    ) -> pb.CheckOrderResponse:
        convert.require_order(request.order, request.HasField("order"))
        raise NotImplementedYet("CheckOrder: the halt-safety checks are not implemented yet")

    async def SubmitOrder(
        self, request: pb.SubmitOrderRequest, context: Context
    ) -> pb.SubmitOrderResponse:
        convert.require_order(request.order, request.HasField("order"))
        raise NotImplementedYet(
            "SubmitOrder: halt-safety checks, venue decision and working-order tracking are not "
            "implemented yet"
        )

    async def CancelOrder(
        self, request: pb.CancelOrderRequest, context: Context
    ) -> pb.CancelOrderResponse:
        problems: convert.Problems = []
        convert.identifier(request.client_order_id, "client_order_id", problems)
        convert.raise_if(problems)
        raise NotImplementedYet("CancelOrder: working-order tracking is not implemented yet")

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
        convert.raise_if(problems)
        raise NotImplementedYet("ReportOrderEvent: working-order tracking is not implemented yet")

    async def StreamOrderInstructions(
        self, request: pb.StreamOrderInstructionsRequest, context: Context
    ) -> AsyncIterator[pb.OrderInstruction]:
        problems: convert.Problems = []
        for i, account in enumerate(request.accounts):
            convert.identifier(account, f"accounts[{i}]", problems)
        convert.raise_if(problems)
        raise NotImplementedYet(
            "StreamOrderInstructions: cancel instructions on halts are not implemented yet"
        )
        yield pb.OrderInstruction()  # pragma: no cover  # makes this an async generator
