"""``execgw watch`` against a real in-process gateway: snapshot first, then every change.

The gateway runs with ``market_clock = "feed"``: exchange time is the latest published event
time (Tuesday 2026-11-24), so the printed times and phases are the same whenever the tests run.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import grpc
import pytest

from gateway._pb.execgw.v1 import common_pb2 as common
from gateway._pb.execgw.v1 import market_state_pb2 as ms
from gateway._pb.execgw.v1 import market_state_pb2_grpc as ms_grpc
from gateway.server import Gateway
from gateway.watch import watch
from tests.conftest import gateway_settings, serving

ET = ZoneInfo("America/New_York")
OPEN = datetime(2026, 11, 24, 10, 0, tzinfo=ET)
SYMBOL = "WTCH"
VENUES = ("NASDAQ", "NYSE", "NYSE_ARCA", "IEX", "BATS_BZX", "EDGX")


def _event(at: datetime, **payload: object) -> ms.MarketDataEvent:
    message = ms.MarketDataEvent(symbol=SYMBOL, **payload)  # type: ignore[arg-type]  # oneof kw
    message.event_time.FromDatetime(at)
    return message


def _open_market() -> list[ms.MarketDataEvent]:
    reference = ms.ReferenceData(
        tier=common.TIER_1, listing_exchange="NASDAQ", prior_close="100.20", trade_date="2026-11-24"
    )
    opening = ms.Trade(
        venue="NASDAQ",
        price="100.00",
        quantity=500,
        eligible=True,
        trade_type=ms.TRADE_TYPE_OPENING,
    )
    quotes = [
        _event(
            OPEN,
            quote=ms.Quote(
                venue=v, bid_price="99.99", bid_size=300, ask_price="100.01", ask_size=300
            ),
        )
        for v in VENUES
    ]
    return [_event(OPEN, reference_data=reference), _event(OPEN, trade=opening), *quotes]


def _halt(at: datetime) -> ms.MarketDataEvent:
    return _event(at, halt=ms.HaltMessage(reason_code="T1", venue="NASDAQ"))


async def _publish(target: str, events: Iterable[ms.MarketDataEvent]) -> None:
    async with grpc.aio.insecure_channel(target) as channel:
        stub = ms_grpc.MarketStateServiceStub(channel)
        summary = await stub.PublishMarketData(iter(list(events)), timeout=10)
    assert summary.rejected == 0, summary.rejections


class _Screen(io.StringIO):
    """What watch prints, with an event set on every write."""

    def __init__(self) -> None:
        super().__init__()
        self.written = asyncio.Event()

    def write(self, text: str) -> int:
        self.written.set()
        return super().write(text)


async def _wait_for(out: _Screen, text: str, count: int = 1, timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while out.getvalue().count(text) < count:
            out.written.clear()
            await out.written.wait()


def _settings(database_url: str, tmp_path: Path, port: int = 0) -> object:
    return gateway_settings(database_url, tmp_path, grpc_port=port, market_clock="feed")


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    running = Gateway(_settings(database_url, tmp_path))  # type: ignore[arg-type]
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_watch_then_snapshot_first_and_a_published_halt_printed(gateway: Gateway) -> None:
    target = f"127.0.0.1:{gateway.port}"
    await _publish(target, _open_market())
    out, stop = _Screen(), asyncio.Event()
    task = asyncio.create_task(watch(target, out=out, stop=stop, symbols=[SYMBOL]))
    try:
        await _wait_for(out, "MARKET")
        await _publish(target, [_halt(OPEN + timedelta(seconds=5))])
        await _wait_for(out, "halt=T1")
    finally:
        stop.set()
        last = await asyncio.wait_for(task, 10)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("10:00:00.000 ET  #")
    assert lines[0].endswith("snapshot of 1 symbols")
    assert f"{SYMBOL}     CONTINUOUS" in lines[1]
    assert "halt=-  bands=95.00-105.00  limit=NONE  ssr=no  changes=SNAPSHOT" in lines[1]
    assert lines[2].split()[3:5] == ["MARKET", "breaker=NONE"]
    halted = lines[-1]
    assert halted.startswith("10:00:05.000 ET  #")
    assert f"{SYMBOL}     HALTED" in halted
    assert "halt=T1" in halted and halted.endswith("changes=HALT")
    assert halted.split()[2] == f"#{last}"


async def test_watch_when_the_gateway_restarts_then_resubscribes_and_gets_a_fresh_snapshot(
    database_url: str, tmp_path: Path
) -> None:
    port = _free_port()
    target = f"127.0.0.1:{port}"
    settings = _settings(database_url, tmp_path, port)
    first = Gateway(settings)  # type: ignore[arg-type]
    await first.start()
    out, stop = _Screen(), asyncio.Event()
    task = asyncio.create_task(watch(target, out=out, stop=stop, symbols=[SYMBOL]))
    second: Gateway | None = None
    try:
        await _publish(target, _open_market())
        await _wait_for(out, "MARKET")
        await first.stop()
        second = Gateway(settings)  # type: ignore[arg-type]
        await second.start()
        # A new process numbers on from a higher sequence: the old resume point is not retained.
        await _wait_for(out, "(resync)")
        await _publish(target, [*_open_market(), _halt(OPEN + timedelta(seconds=9))])
        await _wait_for(out, "halt=T1")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        if second is not None:
            await second.stop()
    assert out.getvalue().count("snapshot of") == 2
    assert "10:00:09.000 ET" in out.getvalue().splitlines()[-1]


async def test_watch_command_then_prints_the_snapshot_and_exits_0_on_ctrl_c(
    gateway: Gateway,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECGW_")}
    command = [sys.executable, "-m", "gateway", "watch", "--target", f"127.0.0.1:{gateway.port}"]
    process = subprocess.Popen(
        [*command, "--symbols", SYMBOL.lower(), "--log-format", "text"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        # Off the event loop: the gateway under test runs on it.
        first = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30)
        assert "snapshot of" in first
        process.send_signal(signal.SIGINT)
        _, stderr = await asyncio.to_thread(process.communicate, timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "resume with --resume-after" in stderr


async def test_watch_when_refused_for_load_then_retries_until_served(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = gateway_settings(database_url, tmp_path, market_clock="feed", max_concurrent_rpcs=1)
    async with serving(settings) as running:
        target = f"127.0.0.1:{running.port}"
        await _publish(target, _open_market())
        async with grpc.aio.insecure_channel(target) as channel:
            # Another subscription holds the only RPC slot: the watch is refused while it lasts.
            holder = ms_grpc.MarketStateServiceStub(channel).SubscribeMarketState(
                ms.SubscribeMarketStateRequest(symbols=[SYMBOL])
            )
            await holder.read()
            out, stop = _Screen(), asyncio.Event()
            task = asyncio.create_task(watch(target, out=out, stop=stop, symbols=[SYMBOL]))
            try:
                with caplog.at_level(logging.WARNING, logger="gateway.watch"):
                    for _ in range(300):
                        if "RESOURCE_EXHAUSTED" in caplog.text:
                            break
                        await asyncio.sleep(0.05)
                    else:
                        raise AssertionError("the watch was never refused")
                assert not task.done()  # refused, and still trying
                assert out.getvalue() == ""
                holder.cancel()
                await _wait_for(out, "MARKET")
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
