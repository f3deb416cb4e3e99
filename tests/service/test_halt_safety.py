"""Halt safety through the API, the way an OMS and a feed handler use it.

The gateway runs with ``market_clock = "feed"``: exchange time is the latest published event time,
so a scripted trading day (Tuesday 2026-11-24) decides the same way whenever the tests run.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator, Iterable
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg
import grpc
import pytest

from gateway._pb.execgw.v1 import common_pb2 as common
from gateway._pb.execgw.v1 import market_state_pb2 as ms
from gateway._pb.execgw.v1 import market_state_pb2_grpc as ms_grpc
from gateway._pb.execgw.v1 import pretrade_pb2 as pt
from gateway._pb.execgw.v1 import pretrade_pb2_grpc as pt_grpc
from gateway.server import Gateway
from tests.conftest import gateway_settings, serving

ET = ZoneInfo("America/New_York")
OPEN = datetime(2026, 11, 24, 10, 0, tzinfo=ET)
VENUES = ("NASDAQ", "NYSE", "NYSE_ARCA", "IEX", "BATS_BZX", "EDGX")


def event(at: datetime, symbol: str = "AAPL", **payload: object) -> ms.MarketDataEvent:
    message = ms.MarketDataEvent(symbol=symbol, **payload)  # type: ignore[arg-type]  # oneof kw
    message.event_time.FromDatetime(at)
    return message


def reference(at: datetime, symbol: str = "AAPL", prior: str = "100.20", **extra: object):  # type: ignore[no-untyped-def]
    data = ms.ReferenceData(
        tier=common.TIER_1,
        listing_exchange="NASDAQ",
        prior_close=prior,
        trade_date="2026-11-24",
        **extra,  # type: ignore[arg-type]
    )
    return event(at, symbol, reference_data=data)


def quotes(at: datetime, bid: str, ask: str, symbol: str = "AAPL") -> list[ms.MarketDataEvent]:
    return [
        event(
            at,
            symbol,
            quote=ms.Quote(venue=v, bid_price=bid, bid_size=300, ask_price=ask, ask_size=300),
        )
        for v in VENUES
    ]


def opening(at: datetime, price: str, symbol: str = "AAPL") -> ms.MarketDataEvent:
    trade = ms.Trade(
        venue="NASDAQ", price=price, quantity=500, eligible=True, trade_type=ms.TRADE_TYPE_OPENING
    )
    return event(at, symbol, trade=trade)


def open_market(symbol: str = "AAPL") -> list[ms.MarketDataEvent]:
    return [
        reference(OPEN, symbol),
        opening(OPEN, "100.00", symbol),
        *quotes(OPEN, "99.99", "100.01", symbol),
    ]


def order(**fields: object) -> common.Order:
    values: dict[str, object] = {
        "client_order_id": "ord-1",
        "account": "ACC-1",
        "symbol": "AAPL",
        "side": common.SIDE_BUY,
        "order_type": common.ORDER_TYPE_LIMIT,
        "quantity": 100,
        "limit_price": "100.01",
    }
    values.update(fields)
    return common.Order(**values)  # type: ignore[arg-type]  # test-only keyword bag


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    settings = gateway_settings(
        database_url, tmp_path, market_clock="feed", stream_heartbeat_seconds=0.3
    )
    async with serving(settings) as running:
        yield running


@pytest.fixture
async def channel(gateway: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as opened:
        yield opened


async def publish(
    channel: grpc.aio.Channel, events: Iterable[ms.MarketDataEvent]
) -> ms.PublishMarketDataSummary:
    stub = ms_grpc.MarketStateServiceStub(channel)
    summary: ms.PublishMarketDataSummary = await stub.PublishMarketData(iter(list(events)))
    return summary


async def check(channel: grpc.aio.Channel, **fields: object) -> pt.CheckOrderResponse:
    stub = pt_grpc.PreTradeServiceStub(channel)
    response: pt.CheckOrderResponse = await stub.CheckOrder(
        pt.CheckOrderRequest(order=order(**fields))
    )
    return response


def codes(response: pt.CheckOrderResponse) -> set[str]:
    return {r.code for r in response.reasons}


async def test_check_order_within_bands_then_allowed_with_band_and_phase(
    channel: grpc.aio.Channel,
) -> None:
    summary = await publish(channel, open_market())
    assert (summary.accepted, summary.rejected) == (8, 0)
    answer = await check(channel)
    assert answer.allowed and not answer.reasons
    assert answer.phase == ms.TRADING_PHASE_CONTINUOUS
    assert (answer.band.lower, answer.band.upper, answer.band.parameter) == (
        "95.00",
        "105.00",
        "0.05",
    )
    assert answer.decision_latency_ns > 0


async def test_check_order_above_upper_band_then_refused_naming_the_field(
    channel: grpc.aio.Channel,
) -> None:
    await publish(channel, open_market())
    answer = await check(channel, limit_price="105.01")
    assert not answer.allowed
    (reason,) = answer.reasons
    assert (reason.code, reason.field) == ("LIMIT_PRICE_ABOVE_UPPER_BAND", "order.limit_price")


async def test_check_order_for_unknown_symbol_then_no_reference_data(
    channel: grpc.aio.Channel,
) -> None:
    answer = await check(channel, symbol="ZZZZ")
    assert not answer.allowed and codes(answer) == {"NO_REFERENCE_DATA"}
    assert common.RESTRICTION_NO_NEW_ORDERS in answer.restrictions


async def test_halt_then_working_order_gets_cancel_instruction_and_new_orders_refused(
    channel: grpc.aio.Channel, database_url: str
) -> None:
    await publish(channel, open_market())
    pretrade = pt_grpc.PreTradeServiceStub(channel)
    submitted = await pretrade.SubmitOrder(pt.SubmitOrderRequest(order=order()))
    assert submitted.accepted and submitted.order.state == pt.ORDER_STATE_PENDING_NEW
    assert submitted.order.venue in VENUES and submitted.order.decision_id
    # The routing decision comes with it, explained.
    assert submitted.routing.decision_id == submitted.order.decision_id
    assert submitted.routing.ranked_venues[0].venue == submitted.order.venue
    assert sum(c.quantity for c in submitted.routing.child_orders) == 100
    instructions = pretrade.StreamOrderInstructions(
        pt.StreamOrderInstructionsRequest(accounts=["ACC-1"])
    )
    await asyncio.sleep(0.1)  # the stream is registered before the halt
    halt_at = OPEN + timedelta(seconds=5)
    await publish(channel, [event(halt_at, halt=ms.HaltMessage(reason_code="T1"))])
    async with asyncio.timeout(5):
        async for instruction in instructions:
            if not instruction.heartbeat:
                break
    instructions.cancel()
    assert instruction.instruction == pt.INSTRUCTION_TYPE_CANCEL
    assert (instruction.client_order_id, instruction.symbol) == ("ord-1", "AAPL")
    answer = await check(channel, client_order_id="ord-2")
    assert not answer.allowed and "SYMBOL_HALTED" in codes(answer)
    assert answer.phase == ms.TRADING_PHASE_HALTED
    # The OMS learns the order's state from the cancel request.
    cancel = await pretrade.CancelOrder(pt.CancelOrderRequest(client_order_id="ord-1"))
    assert cancel.order.state == pt.ORDER_STATE_PENDING_CANCEL
    # Compliance can show the halt and the refusal afterwards.
    connection = await asyncpg.connect(database_url)
    try:
        for _ in range(50):
            halts = await connection.fetch(
                "SELECT symbol, reason_code FROM market_state_events WHERE kind = 'HALT'"
            )
            refusals = await connection.fetch(
                "SELECT client_order_id, reason_codes FROM pretrade_refusals"
            )
            if halts and refusals:
                break
            await asyncio.sleep(0.1)
    finally:
        await connection.close()
    assert [tuple(r) for r in halts] == [("AAPL", "T1")]
    assert [(r["client_order_id"], list(r["reason_codes"])) for r in refusals] == [
        ("ord-2", ["SYMBOL_HALTED"])
    ]


async def test_submit_order_twice_then_same_answer_marked_duplicate(
    channel: grpc.aio.Channel,
) -> None:
    await publish(channel, open_market())
    pretrade = pt_grpc.PreTradeServiceStub(channel)
    first = await pretrade.SubmitOrder(pt.SubmitOrderRequest(order=order()))
    again = await pretrade.SubmitOrder(pt.SubmitOrderRequest(order=order()))
    assert again.duplicate and not first.duplicate
    assert again.order.decision_id == first.order.decision_id
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await pretrade.SubmitOrder(pt.SubmitOrderRequest(order=order(quantity=200)))
    assert raised.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_bad_events_then_each_refused_with_reason_and_state_intact(
    channel: grpc.aio.Channel,
) -> None:
    await publish(channel, open_market())
    later = OPEN + timedelta(seconds=10)
    bad = [
        event(
            OPEN - timedelta(seconds=1),
            quote=ms.Quote(venue="IEX", bid_price="90", bid_size=1, ask_price="91", ask_size=1),
        ),
        event(
            later,
            quote=ms.Quote(
                venue="IEX", bid_price="100.05", bid_size=1, ask_price="100.00", ask_size=1
            ),
        ),
        event(later, halt=ms.HaltMessage(reason_code="ZZ9")),
        event(later, trade=ms.Trade(venue="IEX", price="abc", quantity=1, eligible=True)),
        event(
            later,
            quote=ms.Quote(venue="IEX", bid_price="-1", bid_size=1, ask_price="100.00", ask_size=1),
        ),
    ]
    summary = await publish(channel, bad)
    assert (summary.accepted, summary.rejected) == (0, 5)
    assert [r.reason.code for r in summary.rejections] == [
        "EVENT_OUT_OF_ORDER",
        "QUOTE_CROSSED",
        "UNKNOWN_HALT_CODE",
        "INVALID_EVENT",
        "INVALID_EVENT",
    ]
    assert [r.index for r in summary.rejections] == [0, 1, 2, 3, 4]
    assert summary.rejections[3].reason.field == "trade.price"
    state = await ms_grpc.MarketStateServiceStub(channel).GetMarketState(
        ms.GetMarketStateRequest(symbols=["AAPL"])
    )
    (aapl,) = state.symbols
    assert (aapl.national_best_bid, aapl.national_best_offer) == ("99.99", "100.01")
    assert aapl.phase == ms.TRADING_PHASE_CONTINUOUS and not aapl.HasField("halt")


async def test_limit_down_for_15s_then_pause_inferred_and_orders_refused(
    channel: grpc.aio.Channel,
) -> None:
    await publish(channel, open_market())
    start = OPEN + timedelta(seconds=1)
    await publish(channel, quotes(start, "94.99", "95.00"))
    first = await check(channel, side=common.SIDE_SELL, limit_price="95.00")
    assert first.allowed
    assert common.RESTRICTION_LIMIT_ONLY in first.restrictions
    # Feed time moves on: 15 s in a limit state is a pause, before any pause message.
    await publish(
        channel,
        [
            event(
                start + timedelta(seconds=15),
                "MSFT",
                quote=ms.Quote(venue="IEX", bid_price="1", bid_size=1, ask_price="2", ask_size=1),
            )
        ],
    )
    answer = await check(channel, side=common.SIDE_SELL, limit_price="95.00")
    assert not answer.allowed and codes(answer) == {"PAUSE_INFERRED"}
    assert answer.phase == ms.TRADING_PHASE_PAUSED


async def test_subscribe_then_snapshot_updates_and_resume_without_gaps(
    channel: grpc.aio.Channel,
) -> None:
    await publish(channel, open_market())
    stub = ms_grpc.MarketStateServiceStub(channel)
    stream = stub.SubscribeMarketState(ms.SubscribeMarketStateRequest(symbols=["AAPL"]))
    snapshot = await stream.read()
    assert snapshot.WhichOneof("update") == "snapshot" and not snapshot.snapshot.resync
    assert [s.symbol for s in snapshot.snapshot.symbols] == ["AAPL"]
    halt_at = OPEN + timedelta(seconds=5)
    await publish(channel, [event(halt_at, halt=ms.HaltMessage(reason_code="T1"))])
    update = await _next_change(stream)
    assert update.sequence > snapshot.sequence
    assert ms.STATE_CHANGE_HALT in update.symbol.changes
    assert update.symbol.state.halt.reason_code == "T1"
    stream.cancel()
    # Changes while disconnected arrive on resume, in order, without gaps.
    resume = ms.ResumeMessage(reason_code="T2", phase=ms.RESUMPTION_PHASE_TRADING)
    await publish(channel, [event(halt_at + timedelta(minutes=1), resume=resume)])
    resumed = stub.SubscribeMarketState(
        ms.SubscribeMarketStateRequest(symbols=["AAPL"], resume_after_sequence=update.sequence)
    )
    after = await _next_change(resumed)
    resumed.cancel()
    assert after.sequence > update.sequence
    assert ms.STATE_CHANGE_RESUME in after.symbol.changes
    assert after.symbol.state.phase == ms.TRADING_PHASE_CONTINUOUS
    # A resume point the gateway never issued gets a fresh snapshot marked as a resync.
    stale = stub.SubscribeMarketState(ms.SubscribeMarketStateRequest(resume_after_sequence=1))
    first = await stale.read()
    stale.cancel()
    assert first.WhichOneof("update") == "snapshot" and first.snapshot.resync


async def _next_change(stream: object) -> ms.MarketStateUpdate:
    async with asyncio.timeout(5):
        while True:
            message: ms.MarketStateUpdate = await stream.read()  # type: ignore[attr-defined]
            if message.WhichOneof("update") == "symbol":
                return message


async def test_circuit_breaker_level1_then_market_halted_for_15_minutes(
    channel: grpc.aio.Channel,
) -> None:
    await publish(channel, open_market())
    index = ms.IndexLevel(index="SPX", level="5000.00", prior_close="5000.00")
    drop = ms.IndexLevel(index="SPX", level="4650.00")
    await publish(
        channel,
        [
            event(OPEN, "", index_level=index),
            event(OPEN + timedelta(minutes=1), "", index_level=drop),
        ],
    )
    answer = await check(channel)
    assert not answer.allowed and "MARKET_WIDE_HALT" in codes(answer)
    state = await ms_grpc.MarketStateServiceStub(channel).GetMarketState(ms.GetMarketStateRequest())
    assert state.market.level == ms.CIRCUIT_BREAKER_LEVEL_1
    later = event(
        OPEN + timedelta(minutes=17),
        "MSFT",
        quote=ms.Quote(venue="IEX", bid_price="1", bid_size=1, ask_price="2", ask_size=1),
    )
    await publish(channel, [later])
    assert (await check(channel)).allowed


async def test_short_sale_restriction_then_survives_a_restart(
    database_url: str, tmp_path: Path
) -> None:
    settings = gateway_settings(database_url, tmp_path, market_clock="feed")
    first = Gateway(settings)
    await first.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as channel:
            await publish(channel, open_market())
            drop = ms.Trade(venue="NYSE", price="90.10", quantity=100, eligible=True)
            await publish(channel, [event(OPEN + timedelta(minutes=1), trade=drop)])
            answer = await check(channel, side=common.SIDE_SELL_SHORT, limit_price="99.99")
            assert answer.short_sale_restricted and "SHORT_SALE_PRICE_TEST" in codes(answer)
    finally:
        await first.stop()
    second = Gateway(settings)
    await second.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as channel:
            await publish(channel, open_market())
            answer = await check(channel, side=common.SIDE_SELL_SHORT, limit_price="99.99")
            assert answer.short_sale_restricted and "SHORT_SALE_PRICE_TEST" in codes(answer)
            above = await check(channel, side=common.SIDE_SELL_SHORT, limit_price="100.00")
            assert above.allowed
    finally:
        await second.stop()


async def test_halt_and_refusal_then_counted_in_metrics(
    gateway: Gateway, channel: grpc.aio.Channel
) -> None:
    await publish(channel, open_market())
    await pt_grpc.PreTradeServiceStub(channel).SubmitOrder(pt.SubmitOrderRequest(order=order()))
    await publish(
        channel, [event(OPEN + timedelta(seconds=5), halt=ms.HaltMessage(reason_code="T1"))]
    )
    await check(channel, client_order_id="ord-2")
    url = f"http://127.0.0.1:{gateway.metrics_port}/metrics"
    text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=5).read().decode())
    assert 'halt_detector_halts_detected_total{halt_type="halt"} 1.0' in text
    assert "halt_detector_orders_cancelled_total 1.0" in text
    assert 'execgw_pretrade_decisions_total{outcome="refused",rpc="CheckOrder"} 1.0' in text
    assert 'execgw_pretrade_decisions_total{outcome="allowed",rpc="SubmitOrder"} 1.0' in text
    assert "halt_detector_latency_seconds_count 1.0" in text


async def test_venue_rejects_reported_then_its_breaker_opens_and_orders_go_elsewhere(
    channel: grpc.aio.Channel,
) -> None:
    await publish(channel, open_market())
    pretrade = pt_grpc.PreTradeServiceStub(channel)
    first = await pretrade.SubmitOrder(pt.SubmitOrderRequest(order=order(client_order_id="r-0")))
    rejected_venue = first.order.venue
    directed = first
    for n in range(1, 20):
        report = pt.ReportOrderEventRequest(
            client_order_id=directed.order.order.client_order_id,
            event_type=pt.ORDER_EVENT_TYPE_REJECTED,
            venue=rejected_venue,
            text="venue busy",
        )
        report.event_time.FromDatetime(OPEN + timedelta(milliseconds=n))
        answer = await pretrade.ReportOrderEvent(report)
        assert answer.order.state == pt.ORDER_STATE_REJECTED
        directed = await pretrade.SubmitOrder(
            pt.SubmitOrderRequest(order=order(client_order_id=f"r-{n}", venue=rejected_venue))
        )
        if not directed.accepted:
            break
    # The venue's breaker is open: orders directed there are refused, others go elsewhere.
    assert not directed.accepted
    assert directed.check.allowed  # the halt-safety checks passed; no venue can take it
    assert [r.code for r in directed.order.reasons] == ["NO_VENUE_AVAILABLE"]
    again = await pretrade.SubmitOrder(pt.SubmitOrderRequest(order=order(client_order_id="r-x")))
    assert again.accepted and again.order.venue != rejected_venue
