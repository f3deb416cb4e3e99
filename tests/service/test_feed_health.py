"""A feed that disconnects or goes quiet: orders refused until fresh data, over real gRPC."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from gateway._pb.execgw.v1 import common_pb2 as common
from gateway._pb.execgw.v1 import market_state_pb2 as ms
from gateway._pb.execgw.v1 import market_state_pb2_grpc as ms_grpc
from gateway.feed_health import MARKET_DATA_STALE, FeedHealth
from gateway.server import Gateway
from tests.conftest import gateway_settings, serving
from tests.service.test_halt_safety import OPEN, check, codes, open_market, publish, quotes

QUIET = 0.5  # feed_stale_seconds of the gateway under test


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = gateway_settings(
        database_url, tmp_path, market_clock="feed", feed_stale_seconds=QUIET
    )
    async with serving(settings) as running:
        yield running


@pytest.fixture
async def channel(gateway: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as opened:
        yield opened


class _Feed:
    """A publisher that keeps its PublishMarketData stream open, like a feed handler."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._queue: asyncio.Queue[ms.MarketDataEvent | None] = asyncio.Queue()
        self.call = ms_grpc.MarketStateServiceStub(channel).PublishMarketData(self._events())

    async def _events(self) -> AsyncIterator[ms.MarketDataEvent]:
        while (item := await self._queue.get()) is not None:
            yield item

    def send(self, *events: ms.MarketDataEvent) -> None:
        for item in events:
            self._queue.put_nowait(item)

    async def close(self) -> ms.PublishMarketDataSummary:
        self._queue.put_nowait(None)
        summary: ms.PublishMarketDataSummary = await self.call
        return summary


async def _until(channel: grpc.aio.Channel, allowed: bool) -> set[str]:
    """Check until the answer is ``allowed`` (events are applied as the stream is read)."""
    for _ in range(100):
        answer = await check(channel)
        if answer.allowed is allowed:
            return codes(answer)
        await asyncio.sleep(0.02)
    raise AssertionError(f"CheckOrder never answered allowed={allowed}")


async def test_feed_quiet_longer_than_setting_then_orders_refused_until_next_event(
    gateway: Gateway, channel: grpc.aio.Channel
) -> None:
    feed = _Feed(channel)
    feed.send(*open_market())
    await _until(channel, allowed=True)
    assert gateway.metrics.registry.get_sample_value("execgw_market_data_stale") == 0

    await asyncio.sleep(QUIET * 1.5)  # connected, silent
    refused = await check(channel)
    assert not refused.allowed and MARKET_DATA_STALE in codes(refused)
    assert refused.restrictions[0] == common.RESTRICTION_NO_NEW_ORDERS
    assert gateway.metrics.registry.get_sample_value("execgw_market_data_stale") == 1

    feed.send(*quotes(OPEN + timedelta(seconds=1), "99.99", "100.01"))
    await _until(channel, allowed=True)
    summary = await feed.close()
    assert summary.rejected == 0
    assert (await check(channel)).allowed  # a closed stream leaves the data fresh


async def test_feed_disconnects_without_closing_then_orders_refused_until_fresh_data(
    channel: grpc.aio.Channel,
) -> None:
    feed = _Feed(channel)
    feed.send(*open_market())
    await _until(channel, allowed=True)

    feed.call.cancel()  # the connection drops: the stream ends without a close
    reasons = await _until(channel, allowed=False)
    assert MARKET_DATA_STALE in reasons

    # Waiting does not help; fresh data does (here from a batch publisher).
    await asyncio.sleep(0.1)
    assert MARKET_DATA_STALE in codes(await check(channel))
    summary = await publish(channel, quotes(OPEN + timedelta(seconds=2), "99.99", "100.01"))
    assert summary.accepted == len(quotes(OPEN, "1", "2"))
    assert (await check(channel)).allowed


async def test_batch_publisher_closing_its_stream_never_makes_data_stale(
    channel: grpc.aio.Channel,
) -> None:
    await publish(channel, open_market())
    await asyncio.sleep(QUIET * 1.5)  # no stream open: nothing to be quiet
    assert (await check(channel)).allowed


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_feed_health_states() -> None:
    clock = _Clock()
    health = FeedHealth(5.0, clock)
    assert health.reason() is None  # never connected
    health.opened()
    assert health.reason() is None  # connected, nothing received yet
    health.received()
    clock.now += 5.0
    assert health.reason() is None  # exactly the limit
    clock.now += 0.1
    reason = health.reason()
    assert reason is not None and reason.code == MARKET_DATA_STALE and "5.1 s" in reason.message
    health.received()
    assert health.reason() is None
    health.opened()  # a second publisher
    health.closed(cleanly=False)
    assert health.reason() is None  # the other one is still connected
    health.closed(cleanly=False)
    assert health.stale and "disconnected" in (health.reason() or health).message  # type: ignore[union-attr]
    clock.now += 3600
    assert health.stale  # until data arrives
    health.received()
    assert not health.stale
    quiet_off = FeedHealth(0.0, clock)
    quiet_off.opened()
    quiet_off.received()
    clock.now += 3600
    assert quiet_off.reason() is None  # 0: only a disconnect makes data stale
