"""Bad input is refused with INVALID_ARGUMENT naming each field; surprises never leak."""

from __future__ import annotations

import logging

import grpc
import pytest

from gateway._pb.execgw.v1 import common_pb2 as common
from gateway._pb.execgw.v1 import (
    journal_pb2,
    journal_pb2_grpc,
    pretrade_pb2,
    pretrade_pb2_grpc,
    routing_pb2,
    routing_pb2_grpc,
)
from gateway.api.pretrade import PreTradeServicer
from gateway.domain.calendar import TradingCalendar
from gateway.domain.market_state import MarketStateEngine
from gateway.domain.orders import OrderRequest
from gateway.domain.router import RoutingDecision
from gateway.errors import NotImplementedYet
from gateway.halt_guard import HaltGuard
from gateway.metrics import Metrics
from tests.grpc_errors import decode


def valid_order(**changes: object) -> common.Order:
    order = common.Order(
        client_order_id="ord-1",
        account="ACC-1",
        symbol="AAPL",
        side=common.SIDE_BUY,
        order_type=common.ORDER_TYPE_LIMIT,
        quantity=100,
        limit_price="187.25",
    )
    for name, value in changes.items():
        setattr(order, name, value)
    return order


@pytest.mark.parametrize(
    ("changes", "field", "fragment"),
    [
        ({"symbol": ""}, "order.symbol", "required"),
        ({"client_order_id": "x" * 65}, "order.client_order_id", "longer than 64"),
        ({"quantity": 0}, "order.quantity", "greater than zero"),
        ({"quantity": -5}, "order.quantity", "greater than zero"),
        ({"limit_price": "abc"}, "order.limit_price", "not a decimal"),
        ({"limit_price": "NaN"}, "order.limit_price", "finite"),
        ({"limit_price": "Infinity"}, "order.limit_price", "finite"),
        ({"limit_price": "-1.00"}, "order.limit_price", "greater than zero"),
        ({"limit_price": "0"}, "order.limit_price", "greater than zero"),
        ({"limit_price": "1.0000001"}, "order.limit_price", "decimal places"),
        ({"limit_price": ""}, "order.limit_price", "required"),
        ({"side": 42}, "order.side", "unknown value 42"),
        ({"side": common.SIDE_UNSPECIFIED}, "order.side", "required"),
        ({"order_type": 99}, "order.order_type", "unknown value 99"),
        ({"time_in_force": 77}, "order.time_in_force", "unknown value 77"),
        ({"symbol": "aapl"}, "order.symbol", "upper-case"),
        ({"venue": "not a venue"}, "order.venue", "venue code"),
        ({"order_type": common.ORDER_TYPE_MARKET}, "order.limit_price", "must be empty"),
    ],
)
async def test_check_order_with_bad_field_then_invalid_argument_names_it(
    channel: grpc.aio.Channel, changes: dict[str, object], field: str, fragment: str
) -> None:
    stub = pretrade_pb2_grpc.PreTradeServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.CheckOrder(pretrade_pb2.CheckOrderRequest(order=valid_order(**changes)))
    decoded = decode(raised.value)
    assert decoded.code == grpc.StatusCode.INVALID_ARGUMENT
    assert decoded.reason == "INVALID_ARGUMENT"
    assert fragment in decoded.fields[field]


async def test_order_with_many_problems_then_every_field_is_named(
    channel: grpc.aio.Channel,
) -> None:
    stub = routing_pb2_grpc.RoutingServiceStub(channel)
    order = common.Order(symbol="aapl", quantity=-1, side=9, limit_price="NaN")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.RouteOrder(routing_pb2.RouteOrderRequest(order=order))
    decoded = decode(raised.value)
    assert decoded.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {
        "order.client_order_id",
        "order.account",
        "order.symbol",
        "order.side",
        "order.order_type",
        "order.quantity",
    } <= set(decoded.fields)


async def test_missing_order_then_invalid_argument(channel: grpc.aio.Channel) -> None:
    stub = pretrade_pb2_grpc.PreTradeServiceStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.SubmitOrder(pretrade_pb2.SubmitOrderRequest())
    assert decode(raised.value).fields == {"order": "is required"}


async def test_fill_with_bad_fields_then_each_is_named(channel: grpc.aio.Channel) -> None:
    stub = journal_pb2_grpc.JournalServiceStub(channel)
    fill = journal_pb2.Fill(
        venue="NASDAQ",
        exec_id="",
        account="ACC-1",
        symbol="AAPL",
        side=common.SIDE_SELL,
        quantity=0,
        price="1e400",
        kind=journal_pb2.FILL_KIND_BUST,
    )
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.RecordFill(journal_pb2.RecordFillRequest(fill=fill))
    decoded = decode(raised.value)
    assert decoded.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(decoded.fields) == {
        "fill.exec_id",
        "fill.quantity",
        "fill.price",
        "fill.transaction_time",
        "fill.corrects_exec_id",
    }


async def test_oversized_message_then_resource_exhausted(channel: grpc.aio.Channel) -> None:
    stub = pretrade_pb2_grpc.PreTradeServiceStub(channel)
    order = valid_order(account="A" * (5 * 1024 * 1024))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.CheckOrder(pretrade_pb2.CheckOrderRequest(order=order))
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def _guard(metrics: Metrics) -> HaltGuard:
    return HaltGuard(MarketStateEngine(TradingCalendar.default()), metrics)


def _no_venue(order: OrderRequest) -> tuple[RoutingDecision, int]:
    raise AssertionError("not routed in this test")


class _Faulty(PreTradeServicer):
    async def CheckOrder(
        self,
        request: pretrade_pb2.CheckOrderRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> pretrade_pb2.CheckOrderResponse:
        raise RuntimeError("connection string postgresql://admin:hunter2@db")


class _Unbuilt(PreTradeServicer):
    async def CheckOrder(
        self,
        request: pretrade_pb2.CheckOrderRequest,
        context: grpc.aio.ServicerContext[object, object],
    ) -> pretrade_pb2.CheckOrderResponse:
        raise NotImplementedYet("CheckOrder: the frobnication check is not implemented yet")


async def _call_check_order(servicer: PreTradeServicer) -> grpc.aio.AioRpcError:
    server = grpc.aio.server()
    pretrade_pb2_grpc.add_PreTradeServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pretrade_pb2_grpc.PreTradeServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.CheckOrder(pretrade_pb2.CheckOrderRequest())
    finally:
        await server.stop(0)
    return raised.value


async def test_rpc_not_built_yet_then_unimplemented_names_what_is_missing() -> None:
    metrics = Metrics()
    error = await _call_check_order(_Unbuilt(metrics, _guard(metrics), _no_venue))
    decoded = decode(error)
    assert decoded.code == grpc.StatusCode.UNIMPLEMENTED
    assert decoded.reason == "NOT_IMPLEMENTED"
    assert "frobnication check" in decoded.message


async def test_unexpected_exception_then_internal_without_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = Metrics()
    with caplog.at_level(logging.ERROR):
        error = await _call_check_order(_Faulty(metrics, _guard(metrics), _no_venue))
    decoded = decode(error)
    assert decoded.code == grpc.StatusCode.INTERNAL
    assert decoded.reason == "INTERNAL"
    assert "hunter2" not in decoded.message
    assert any("hunter2" in (r.exc_text or "") or r.exc_info for r in caplog.records)
    sample = metrics.registry.get_sample_value(
        "execgw_rpc_errors_total",
        {"method": "execgw.v1.PreTradeService.CheckOrder", "code": "INTERNAL"},
    )
    assert sample == 1.0
