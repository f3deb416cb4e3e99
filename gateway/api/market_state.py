"""MarketStateService: market data in, halt/pause/auction state out."""

from __future__ import annotations

from collections.abc import AsyncIterator

from gateway._pb.execgw.v1 import market_state_pb2 as pb
from gateway._pb.execgw.v1 import market_state_pb2_grpc as pb_grpc
from gateway.api import convert
from gateway.api.base import Context, Servicer
from gateway.errors import NotImplementedYet


class MarketStateServicer(Servicer, pb_grpc.MarketStateServiceServicer):
    SERVICE = pb.DESCRIPTOR.services_by_name["MarketStateService"]

    async def PublishMarketData(
        self, request_iterator: AsyncIterator[pb.MarketDataEvent], context: Context
    ) -> pb.PublishMarketDataSummary:
        raise NotImplementedYet("PublishMarketData: the market-state engine is not implemented yet")

    async def SubscribeMarketState(
        self, request: pb.SubscribeMarketStateRequest, context: Context
    ) -> AsyncIterator[pb.MarketStateUpdate]:
        problems: convert.Problems = []
        for i, symbol in enumerate(request.symbols):
            convert.symbol(symbol, f"symbols[{i}]", problems)
        convert.raise_if(problems)
        raise NotImplementedYet(
            "SubscribeMarketState: the market-state stream is not implemented yet"
        )
        yield pb.MarketStateUpdate()  # pragma: no cover  # makes this an async generator

    async def GetMarketState(
        self, request: pb.GetMarketStateRequest, context: Context
    ) -> pb.GetMarketStateResponse:
        problems: convert.Problems = []
        for i, symbol in enumerate(request.symbols):
            convert.symbol(symbol, f"symbols[{i}]", problems)
        convert.raise_if(problems)
        raise NotImplementedYet("GetMarketState: the market-state engine is not implemented yet")
