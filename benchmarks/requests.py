"""Requests the load benchmarks send, one per RPC, and what each target needs first."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import Message

from gateway._pb.execgw.v1 import common_pb2, pretrade_pb2, routing_pb2


@dataclass(frozen=True)
class RequestSpec:
    method: str
    request: Message
    response: type[Message]
    # Called with the target's port before the load (publish reference data, quotes, ...).
    prepare: Callable[[int], None] | None = None


ORDER = common_pb2.Order(
    client_order_id="bench-1",
    account="ACC-1",
    symbol="AAPL",
    side=common_pb2.SIDE_BUY,
    order_type=common_pb2.ORDER_TYPE_LIMIT,
    quantity=100,
    limit_price="187.25",
)

REQUESTS: dict[str, RequestSpec] = {
    "CheckOrder": RequestSpec(
        "/execgw.v1.PreTradeService/CheckOrder",
        pretrade_pb2.CheckOrderRequest(order=ORDER),
        pretrade_pb2.CheckOrderResponse,
    ),
    "SubmitOrder": RequestSpec(
        "/execgw.v1.PreTradeService/SubmitOrder",
        pretrade_pb2.SubmitOrderRequest(order=ORDER),
        pretrade_pb2.SubmitOrderResponse,
    ),
    "RouteOrder": RequestSpec(
        "/execgw.v1.RoutingService/RouteOrder",
        routing_pb2.RouteOrderRequest(order=ORDER),
        routing_pb2.RouteOrderResponse,
    ),
}
