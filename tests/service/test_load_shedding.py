"""A burst is shed at once, not queued until the calls time out: past the gateway's concurrency
limit with RESOURCE_EXHAUSTED, past gRPC's queue bound (``max_queued_calls``) with CANCELLED."""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from gateway._pb.execgw.v1 import journal_pb2 as jn
from gateway._pb.execgw.v1 import journal_pb2_grpc as jn_grpc
from gateway._pb.execgw.v1 import market_state_pb2 as ms
from gateway._pb.execgw.v1 import market_state_pb2_grpc as ms_grpc
from gateway._pb.execgw.v1 import pretrade_pb2 as pt
from gateway._pb.execgw.v1 import pretrade_pb2_grpc as pt_grpc
from gateway.server import Gateway
from tests.conftest import gateway_settings, serving
from tests.service.test_halt_safety import open_market, order, publish
from tests.service.test_journal_service import fill

LIMIT = 8


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    # gRPC's own queue bound at its default: these tests are about the gateway's limit.
    settings = gateway_settings(
        database_url, tmp_path, market_clock="feed", max_concurrent_rpcs=LIMIT, max_queued_calls=0
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

        # Fills: each call waits for its commit, so a burst has many in progress at once.
        async def one(n: int, channel: grpc.aio.Channel) -> grpc.StatusCode:
            request = jn.RecordFillRequest(fill=fill(n))
            try:
                await jn_grpc.JournalServiceStub(channel).RecordFill(request, timeout=10)
            except grpc.aio.AioRpcError as error:
                return error.code()
            return grpc.StatusCode.OK

        loop = asyncio.get_running_loop()
        started = loop.time()
        calls = [(n, channels[n % len(channels)]) for n in range(LIMIT * 40)]
        outcomes = await asyncio.gather(*(one(n, channel) for n, channel in calls))
        elapsed = loop.time() - started
        for stream in streams:
            stream.cancel()

        assert set(outcomes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
        assert grpc.StatusCode.OK in outcomes
        assert grpc.StatusCode.RESOURCE_EXHAUSTED in outcomes
        assert elapsed < 10  # nobody waited for a deadline

        # Every acknowledged fill is journaled and no refused one is: sent again, the first
        # come back as duplicates and the others are recorded now.
        journal = jn_grpc.JournalServiceStub(channels[0])
        for n, code in enumerate(outcomes):
            for _ in range(100):
                try:
                    again = await journal.RecordFill(jn.RecordFillRequest(fill=fill(n)), timeout=10)
                    break
                except grpc.aio.AioRpcError as error:  # the streams may still be closing
                    assert error.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"fill {n} was never answered again")
            assert again.ack.duplicate is (code is grpc.StatusCode.OK)
    finally:
        for channel in channels:
            await channel.close()


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


async def test_calls_queued_while_the_gateway_is_busy_past_the_limit_are_refused_at_once(
    database_url: str, tmp_path: Path
) -> None:
    queued = 8
    settings = gateway_settings(
        database_url, tmp_path, market_clock="feed", max_queued_calls=queued
    )
    async with serving(settings) as running:
        target = f"127.0.0.1:{running.port}"
        async with grpc.aio.insecure_channel(target) as channel:
            await publish(channel, open_market())
        request = pt.CheckOrderRequest(order=order())
        calls = queued * 5
        # At most `queued` calls wait in gRPC's queue (and one more may already be matched to
        # the gateway's standing request for the next call): the others must be refused.
        refusals = calls - queued - 1
        refused = threading.Event()

        def burst() -> list[grpc.StatusCode]:
            """Calls sent at once from another thread while the gateway's event loop is busy."""
            with grpc.insecure_channel(target) as sync_channel:
                stub = pt_grpc.PreTradeServiceStub(sync_channel)
                answers: queue.Queue[grpc.StatusCode] = queue.Queue()
                codes: list[grpc.StatusCode] = []
                for _ in range(calls):
                    stub.CheckOrder.future(request, timeout=30).add_done_callback(
                        lambda done: answers.put(done.code())
                    )
                for _ in range(calls):
                    codes.append(answers.get(timeout=60))
                    if codes.count(grpc.StatusCode.CANCELLED) >= refusals:
                        refused.set()
                return codes

        with ThreadPoolExecutor(1) as pool:
            sent = pool.submit(burst)
            # The event loop is kept busy (blocked on purpose), so no handler takes up a call,
            # until the refusals have arrived or 20 s have passed.
            refused_while_busy = refused.wait(20)
            codes = await asyncio.wrap_future(sent)

    # gRPC refuses a call past its queue bound with CANCELLED (its code for a call it drops
    # before any handler saw it), at once: never a deadline, never an error of the gateway.
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.CANCELLED}
    assert refused_while_busy, f"refusals while the gateway was busy: {codes}"
    # The first quarter of the bound is never refused, and is answered once the loop is free.
    assert codes.count(grpc.StatusCode.OK) >= queued // 4
