"""A burst past the concurrency limit is shed with RESOURCE_EXHAUSTED, not queued to time out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from gateway._pb.execgw.v1 import market_state_pb2 as ms
from gateway._pb.execgw.v1 import market_state_pb2_grpc as ms_grpc
from gateway._pb.execgw.v1 import pretrade_pb2 as pt
from gateway._pb.execgw.v1 import pretrade_pb2_grpc as pt_grpc
from gateway.server import Gateway
from tests.conftest import gateway_settings, serving
from tests.service.test_halt_safety import open_market, order, publish

LIMIT = 8


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = gateway_settings(
        database_url, tmp_path, market_clock="feed", max_concurrent_rpcs=LIMIT
    )
    async with serving(settings) as running:
        yield running


async def test_rpcs_past_the_limit_refused_at_once_then_served_when_below_again(
    gateway: Gateway,
) -> None:
    target = f"127.0.0.1:{gateway.port}"
    async with grpc.aio.insecure_channel(target) as channel:
        await publish(channel, open_market())
        stub = pt_grpc.PreTradeServiceStub(channel)
        request = pt.CheckOrderRequest(order=order())
        assert (await stub.CheckOrder(request)).allowed

        # Open streams hold the server at its limit (each is an RPC in progress).
        subscriber = ms_grpc.MarketStateServiceStub(channel)
        streams = [
            subscriber.SubscribeMarketState(ms.SubscribeMarketStateRequest(symbols=["AAPL"]))
            for _ in range(LIMIT)
        ]
        for stream in streams:
            await stream.read()  # the snapshot: the stream is open on the server
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(grpc.aio.AioRpcError) as shed:
            await stub.CheckOrder(request, timeout=10)
        assert shed.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        assert loop.time() - started < 2  # refused at once, not after queueing

        for stream in streams:
            stream.cancel()
        for _ in range(100):
            try:
                assert (await stub.CheckOrder(request, timeout=10)).allowed
                break
            except grpc.aio.AioRpcError as error:
                assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                await asyncio.sleep(0.05)
        else:
            raise AssertionError("the gateway never served again after the streams closed")


async def test_burst_of_many_times_the_limit_every_call_answered_quickly_ok_or_shed(
    gateway: Gateway,
) -> None:
    target = f"127.0.0.1:{gateway.port}"
    channels = [grpc.aio.insecure_channel(target) for _ in range(4)]
    try:
        await publish(channels[0], open_market())
        # Open streams take all but two of the slots: the burst competes for those two.
        subscriber = ms_grpc.MarketStateServiceStub(channels[0])
        streams = [
            subscriber.SubscribeMarketState(ms.SubscribeMarketStateRequest(symbols=["AAPL"]))
            for _ in range(LIMIT - 2)
        ]
        for stream in streams:
            await stream.read()
        request = pt.CheckOrderRequest(order=order())

        async def one(channel: grpc.aio.Channel) -> grpc.StatusCode:
            try:
                await pt_grpc.PreTradeServiceStub(channel).CheckOrder(request, timeout=10)
            except grpc.aio.AioRpcError as error:
                return error.code()
            return grpc.StatusCode.OK

        loop = asyncio.get_running_loop()
        started = loop.time()
        outcomes = await asyncio.gather(*(one(c) for _ in range(LIMIT * 10) for c in channels))
        elapsed = loop.time() - started
        for stream in streams:
            stream.cancel()
    finally:
        for channel in channels:
            await channel.close()
    assert set(outcomes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert grpc.StatusCode.OK in outcomes
    assert grpc.StatusCode.RESOURCE_EXHAUSTED in outcomes
    assert elapsed < 10  # nobody waited for a deadline


async def test_streams_per_connection_limit_then_a_further_call_waits_for_a_free_stream(
    database_url: str, tmp_path: Path
) -> None:
    settings = gateway_settings(
        database_url, tmp_path, market_clock="feed", max_streams_per_connection=2
    )
    async with serving(settings) as running:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        try:
            await publish(channel, open_market())
            subscriber = ms_grpc.MarketStateServiceStub(channel)
            streams = [
                subscriber.SubscribeMarketState(ms.SubscribeMarketStateRequest(symbols=["AAPL"]))
                for _ in range(2)
            ]
            for stream in streams:
                await stream.read()
            stub = pt_grpc.PreTradeServiceStub(channel)
            request = pt.CheckOrderRequest(order=order())
            # Both streams of the connection are taken: the call waits on the client's side.
            with pytest.raises(grpc.aio.AioRpcError) as waited:
                await stub.CheckOrder(request, timeout=0.5)
            assert waited.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
            # Another connection is not held back (its own, not the shared subchannel), and a
            # freed stream lets the first one go on.
            async with grpc.aio.insecure_channel(
                f"127.0.0.1:{running.port}", options=[("grpc.use_local_subchannel_pool", 1)]
            ) as other:
                other_stub = pt_grpc.PreTradeServiceStub(other)
                assert (await other_stub.CheckOrder(request, timeout=5)).allowed
            streams[0].cancel()
            assert (await stub.CheckOrder(request, timeout=5)).allowed
            streams[1].cancel()
        finally:
            await channel.close()
