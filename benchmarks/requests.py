"""Requests the load benchmarks send, one per RPC, and what each target needs first.

RecordFill needs no market data: its fill is reported as executed before the primed instant.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
from google.protobuf.message import Message

from gateway._pb.execgw.v1 import (
    common_pb2,
    journal_pb2,
    market_state_pb2,
    market_state_pb2_grpc,
    pretrade_pb2,
    routing_pb2,
)

# The trading-day instant the primed market data carries; a gateway with market_clock=feed takes
# it as "now" (Tuesday 2026-11-24, 10:00 ET: continuous trading).
MARKET_TIME = datetime(2026, 11, 24, 10, 0, tzinfo=ZoneInfo("America/New_York"))
# Fills are reported as executed a few minutes before that instant.
FILL_TIME = MARKET_TIME - timedelta(minutes=5)
VENUES = ("NASDAQ", "NYSE", "NYSE_ARCA", "IEX", "BATS_BZX", "EDGX")
LISTINGS = ("NASDAQ", "NYSE", "NYSE_ARCA")


@dataclass(frozen=True)
class RequestSpec:
    method: str
    request: Message
    response: type[Message]
    # Called with the target's port and a universe size before the load (publish reference data,
    # quotes, ...); the gateway then runs with market_clock=feed.
    prepare: Callable[[int, int], None] | None = None
    # The RPC is idempotent on a key the request carries: repeating one body (as h2load does)
    # measures the duplicate answer after the first request.
    duplicate_after_first: bool = False
    # The same request with a distinct key for each ``n`` (the first-time path), when there is one.
    unique: Callable[[int], Message] | None = None


ORDER = common_pb2.Order(
    client_order_id="bench-1",
    account="ACC-1",
    symbol="AAPL",
    side=common_pb2.SIDE_BUY,
    order_type=common_pb2.ORDER_TYPE_LIMIT,
    quantity=100,
    limit_price="187.25",
)


def _symbol_events(
    symbol: str, prior_cents: int, listing: str, tier: int
) -> Iterator[market_state_pb2.MarketDataEvent]:
    ms = market_state_pb2
    price = f"{prior_cents / 100:.2f}"
    payloads: list[dict[str, Message]] = [
        {
            "reference_data": ms.ReferenceData(
                tier=tier,  # type: ignore[arg-type]  # enum value
                listing_exchange=listing,
                prior_close=price,
                trade_date=MARKET_TIME.date().isoformat(),
            )
        },
        {
            "trade": ms.Trade(
                venue=listing,
                price=price,
                quantity=5_000,
                eligible=True,
                trade_type=ms.TRADE_TYPE_OPENING,
            )
        },
    ]
    for venue in VENUES:
        payloads.append(
            {
                "quote": ms.Quote(
                    venue=venue,
                    bid_price=f"{(prior_cents - 1) / 100:.2f}",
                    bid_size=300,
                    ask_price=price if symbol == ORDER.symbol else f"{(prior_cents + 1) / 100:.2f}",
                    ask_size=300,
                )
            }
        )
    for payload in payloads:
        # One event time for everything: a feed clock that does not advance does not tick.
        message = ms.MarketDataEvent(symbol=symbol, **payload)  # type: ignore[arg-type]  # oneof
        message.event_time.FromDatetime(MARKET_TIME)
        yield message


def _ticker(n: int) -> str:
    letters = ""
    for _ in range(4):
        n, digit = divmod(n, 26)
        letters = chr(ord("A") + digit) + letters
    return "X" + letters  # never AAPL


def prime_market(port: int, universe: int) -> None:
    """Publish a trading day for ``universe`` symbols, AAPL among them: reference data, an
    opening print and quotes on six venues each, so ``ORDER`` takes the allowed path (inside the
    bands, on tick, continuous trading) at ``MARKET_TIME``."""

    def events() -> Iterator[market_state_pb2.MarketDataEvent]:
        # AAPL opens at 187.25 (bands 177.89-196.61) with the ask at 187.25: ORDER buys at the ask.
        yield from _symbol_events(ORDER.symbol, 18_725, "NASDAQ", common_pb2.TIER_1)
        for i in range(max(0, universe - 1)):
            cents = 500 + (i * 7_919) % 49_500
            tier = common_pb2.TIER_1 if i % 3 == 0 else common_pb2.TIER_2
            yield from _symbol_events(_ticker(i), cents, LISTINGS[i % 3], tier)

    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = market_state_pb2_grpc.MarketStateServiceStub(channel)
        summary = stub.PublishMarketData(events(), timeout=600)
    if summary.rejected:
        reasons = [f"{r.symbol}: {r.reason.code}" for r in summary.rejections[:3]]
        raise SystemExit(f"priming: {summary.rejected} events rejected: {reasons}")


def bench_fill(exec_id: str, n: int = 0) -> journal_pb2.Fill:
    message = journal_pb2.Fill(
        venue="NASDAQ",
        exec_id=exec_id,
        account="ACC-1",
        symbol="AAPL",
        side=common_pb2.SIDE_BUY,
        quantity=100,
        price="187.25",
        liquidity=common_pb2.LIQUIDITY_REMOVED,
        client_order_id="bench-1",
    )
    message.transaction_time.FromDatetime(FILL_TIME + timedelta(microseconds=n))
    return message


def _unique_order(n: int) -> common_pb2.Order:
    order = common_pb2.Order()
    order.CopyFrom(ORDER)
    order.client_order_id = f"bench-u{n}"
    return order


REQUESTS: dict[str, RequestSpec] = {
    "CheckOrder": RequestSpec(
        "/execgw.v1.PreTradeService/CheckOrder",
        pretrade_pb2.CheckOrderRequest(order=ORDER),
        pretrade_pb2.CheckOrderResponse,
        prime_market,
    ),
    "SubmitOrder": RequestSpec(
        "/execgw.v1.PreTradeService/SubmitOrder",
        pretrade_pb2.SubmitOrderRequest(order=ORDER),
        pretrade_pb2.SubmitOrderResponse,
        prime_market,
        duplicate_after_first=True,
        unique=lambda n: pretrade_pb2.SubmitOrderRequest(order=_unique_order(n)),
    ),
    "RouteOrder": RequestSpec(
        "/execgw.v1.RoutingService/RouteOrder",
        routing_pb2.RouteOrderRequest(order=ORDER),
        routing_pb2.RouteOrderResponse,
        prime_market,
    ),
    "RecordFill": RequestSpec(
        "/execgw.v1.JournalService/RecordFill",
        journal_pb2.RecordFillRequest(fill=bench_fill("H2LOAD-1")),
        journal_pb2.RecordFillResponse,
        duplicate_after_first=True,
        unique=lambda n: journal_pb2.RecordFillRequest(fill=bench_fill(f"UNIQUE-{n}", n)),
    ),
}
