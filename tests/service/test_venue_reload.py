"""Reloading the venue profile file without a restart: SIGHUP, or a changed file when polling.

A real gateway in the test process (``serve``, which installs the signal handlers), a real venue
file in a temporary folder, and the signal sent to this process, the way an operator's
``kill -HUP`` reaches a running gateway.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from gateway._pb.execgw.v1 import routing_pb2 as rt
from gateway._pb.execgw.v1 import routing_pb2_grpc as rt_grpc
from gateway.server import Gateway, serve
from gateway.settings import shipped_venue_profiles
from tests.conftest import gateway_settings
from tests.service.test_halt_safety import publish
from tests.service.test_routing import market, route, set_status

SHIPPED = shipped_venue_profiles().read_text("utf-8")
NASDAQ_TAKE_FEE = 'take_fee_per_share = "0.0030", make_rebate_per_share = "0.0020"'


def with_nasdaq_take_fee(fee: str) -> str:
    """The shipped profiles with NASDAQ's take fee changed (NASDAQ's fee line is the first)."""
    assert SHIPPED.count(NASDAQ_TAKE_FEE) >= 1
    return SHIPPED.replace(NASDAQ_TAKE_FEE, NASDAQ_TAKE_FEE.replace("0.0030", fee), 1)


def write(path: Path, text: str, stamp: int) -> None:
    path.write_text(text)
    os.utime(path, ns=(stamp, stamp))  # a distinct modification time, whatever the clock's grain


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Poll ``condition``: a signal handler or the file watch changes state with no event to
    await."""
    async with asyncio.timeout(timeout):
        while not condition():  # noqa: ASYNC110 - nothing to wait on but the state itself
            await asyncio.sleep(0.01)


async def wait_for_version(gateway: Gateway, version: int) -> None:
    await wait_until(lambda: gateway.routing.venues.version >= version)


def refused_reloads(gateway: Gateway) -> float:
    value = gateway.metrics.registry.get_sample_value(
        "sor_venue_profile_reloads_total", {"result": "refused"}
    )
    return value or 0.0


async def nasdaq_fee_in_route_order(stub: rt_grpc.RoutingServiceStub) -> str:
    decision = await route(stub, quantity=100, limit_price="100.01")
    nasdaq = next(v for v in decision.ranked_venues if v.venue == "NASDAQ")
    [fee] = [f.raw_value for f in nasdaq.factors if f.factor == rt.ROUTING_FACTOR_FEES]
    return fee


@pytest.fixture
async def served(database_url: str, tmp_path: Path) -> AsyncIterator[tuple[Gateway, Path]]:
    """A gateway run by ``serve`` (SIGHUP installed) on a venue file of its own."""
    venue_file = tmp_path / "venues.toml"
    write(venue_file, SHIPPED, 1_000_000_000_000_000_000)
    settings = gateway_settings(
        database_url, tmp_path, market_clock="feed", venue_profiles_file=venue_file
    )
    ready: asyncio.Future[Gateway] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(settings, on_ready=ready.set_result))
    try:
        gateway = await asyncio.wait_for(asyncio.shield(ready), 60)
        yield gateway, venue_file
    finally:
        if ready.done():
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            task.cancel()
        await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), 30)


async def test_sighup_then_route_order_uses_the_changed_file_and_operator_status_survives(
    served: tuple[Gateway, Path], caplog: pytest.LogCaptureFixture
) -> None:
    gateway, venue_file = served
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        stub = rt_grpc.RoutingServiceStub(channel)
        await publish(channel, market())
        assert await nasdaq_fee_in_route_order(stub) == "0.0030"
        await set_status(stub, "EDGX", rt.VENUE_STATUS_DOWN, "maintenance")
        version = gateway.routing.venues.version

        write(venue_file, with_nasdaq_take_fee("0.0025"), 1_000_000_001_000_000_000)
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for_version(gateway, version + 1)

        assert await nasdaq_fee_in_route_order(stub) == "0.0025"
        listed: rt.ListVenuesResponse = await stub.ListVenues(rt.ListVenuesRequest())
        edgx = next(v for v in listed.venues if v.venue == "EDGX")
        assert (edgx.status, edgx.status_reason) == (rt.VENUE_STATUS_DOWN, "maintenance")

        # A take fee above the Rule 610(c) cap: refused, logged with the reason, counted; the
        # profiles in force stay.
        version = gateway.routing.venues.version
        write(venue_file, with_nasdaq_take_fee("0.0031"), 1_000_000_002_000_000_000)
        with caplog.at_level(logging.ERROR, logger="gateway.routing_desk"):
            os.kill(os.getpid(), signal.SIGHUP)
            await wait_until(lambda: refused_reloads(gateway) >= 1)
        assert gateway.routing.venues.version == version
        assert await nasdaq_fee_in_route_order(stub) == "0.0025"
        [record] = [r for r in caplog.records if "reload refused" in r.getMessage()]
        assert any("Rule 610(c) access fee cap" in p for p in getattr(record, "problems", ()))


async def test_bad_file_then_reload_entry_refuses_and_keeps_the_profiles_in_force(
    served: tuple[Gateway, Path],
) -> None:
    gateway, venue_file = served
    before = gateway.routing.venues
    write(venue_file, with_nasdaq_take_fee("0.0031"), 1_000_000_003_000_000_000)
    assert gateway.reload_venues() is False
    assert gateway.routing.venues is before
    assert refused_reloads(gateway) == 1

    venue_file.unlink()
    assert gateway.reload_venues() is False
    assert gateway.routing.venues is before
    assert refused_reloads(gateway) == 2


async def test_poll_interval_set_then_changed_file_reloaded_without_a_signal(
    database_url: str, tmp_path: Path
) -> None:
    venue_file = tmp_path / "venues.toml"
    write(venue_file, SHIPPED, 1_000_000_000_000_000_000)
    settings = gateway_settings(
        database_url,
        tmp_path,
        market_clock="feed",
        venue_profiles_file=venue_file,
        venue_reload_poll_seconds=0.05,
    )
    gateway = Gateway(settings)
    await gateway.start()
    try:
        version = gateway.routing.venues.version
        write(venue_file, with_nasdaq_take_fee("0.0026"), 1_000_000_001_000_000_000)
        await wait_for_version(gateway, version + 1)
        assert gateway.routing.venues["NASDAQ"].fees.take_fee_per_share == Decimal("0.0026")

        # A bad file is refused once, not every interval, and the profiles in force stay.
        write(venue_file, with_nasdaq_take_fee("0.0031"), 1_000_000_002_000_000_000)
        await wait_until(lambda: refused_reloads(gateway) >= 1)
        await asyncio.sleep(0.3)
        assert refused_reloads(gateway) == 1
        assert gateway.routing.venues.version == version + 1
    finally:
        await gateway.stop()
