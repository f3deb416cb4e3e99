"""Smart order routing through the API, the way an OMS and an operator use it.

The gateway runs with ``market_clock = "feed"``: exchange time is the latest published event time,
so the quotes of a scripted trading day (Tuesday 2026-11-24) are fresh whenever the tests run.
Quotes reach the router through MarketStateService.PublishMarketData, into the one shared
book per symbol.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from importlib import resources
from pathlib import Path

import asyncpg
import grpc
import pytest

from gateway._pb.execgw.v1 import market_state_pb2 as ms
from gateway._pb.execgw.v1 import pretrade_pb2 as pt
from gateway._pb.execgw.v1 import pretrade_pb2_grpc as pt_grpc
from gateway._pb.execgw.v1 import routing_pb2 as rt
from gateway._pb.execgw.v1 import routing_pb2_grpc as rt_grpc
from gateway.errors import ConfigurationError
from gateway.server import Gateway
from storage.journal import FillRow, JournalWriter
from tests.grpc_errors import decode
from tests.service import test_halt_safety as halt_safety
from tests.service.test_halt_safety import OPEN, VENUES, event, opening, order, publish, reference

# (venue, bid, bid size, ask, ask size): NASDAQ, NYSE and IEX at the best offer.
BOOK = (
    ("NASDAQ", "99.99", 300, "100.01", 300),
    ("NYSE", "99.99", 200, "100.01", 200),
    ("NYSE_ARCA", "99.98", 500, "100.02", 500),
    ("IEX", "99.99", 100, "100.01", 100),
    ("BATS_BZX", "99.98", 400, "100.02", 400),
    ("EDGX", "99.97", 600, "100.03", 600),
)


def quote_events(
    at: datetime, rows: tuple[tuple[str, str, int, str, int], ...] = BOOK, symbol: str = "AAPL"
) -> list[ms.MarketDataEvent]:
    return [
        event(
            at,
            symbol,
            quote=ms.Quote(venue=v, bid_price=b, bid_size=bs, ask_price=a, ask_size=az),
        )
        for v, b, bs, a, az in rows
    ]


# A function-scoped gateway whose clock follows the feed, and a channel to it.
gateway = halt_safety.gateway
channel = halt_safety.channel


def market(symbol: str = "AAPL") -> list[ms.MarketDataEvent]:
    return [reference(OPEN, symbol), opening(OPEN, "100.00", symbol), *quote_events(OPEN)]


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> rt_grpc.RoutingServiceStub:
    return rt_grpc.RoutingServiceStub(channel)


async def route(stub: rt_grpc.RoutingServiceStub, **fields: object) -> rt.RoutingDecision:
    response: rt.RouteOrderResponse = await stub.RouteOrder(
        rt.RouteOrderRequest(order=order(**fields))
    )
    return response.decision


async def set_status(
    stub: rt_grpc.RoutingServiceStub, venue: str, status: int, reason: str = ""
) -> rt.Venue:
    answer: rt.Venue = await stub.SetVenueStatus(
        rt.SetVenueStatusRequest(venue=venue, status=status, reason=reason)  # type: ignore[arg-type]
    )
    return answer


async def test_route_order_on_the_shared_book_then_explained_decision(
    channel: grpc.aio.Channel, stub: rt_grpc.RoutingServiceStub
) -> None:
    await publish(channel, market())
    decision = await route(stub, quantity=100, limit_price="100.01")

    assert decision.decision_id and decision.symbol == "AAPL"
    assert decision.decided_at.ToDatetime(tzinfo=UTC) == OPEN
    assert decision.decision_latency_ns > 0
    assert (decision.national_best_bid, decision.national_best_offer) == ("99.99", "100.01")
    assert Decimal(decision.arrival_mid) == Decimal("100.00")
    assert decision.size_tier == rt.SIZE_TIER_SMALL
    assert [v.rank for v in decision.ranked_venues] == [1, 2, 3, 4, 5, 6]
    assert {v.venue for v in decision.ranked_venues} == set(VENUES)
    best = decision.ranked_venues[0]
    assert best.eligible and best.venue in ("NASDAQ", "NYSE", "IEX")
    assert [f.factor for f in best.factors] == [
        rt.ROUTING_FACTOR_SPREAD,
        rt.ROUTING_FACTOR_LATENCY,
        rt.ROUTING_FACTOR_FEES,
        rt.ROUTING_FACTOR_FILL_PROBABILITY,
    ]
    assert sum(f.weight for f in best.factors) == pytest.approx(1.0)
    assert best.score == pytest.approx(sum(f.contribution for f in best.factors))
    assert all(f.raw_value and 0 <= f.normalized <= 1 for f in best.factors)
    # A venue quoting a worse offer would trade through the protected 100.01 (Rule 611).
    edgx = next(v for v in decision.ranked_venues if v.venue == "EDGX")
    assert not edgx.eligible and "TRADE_THROUGH" in {r.code for r in edgx.exclusions}
    assert (edgx.ask_price, edgx.ask_size) == ("100.03", 600)
    [child] = decision.child_orders
    assert (child.venue, child.quantity, child.limit_price) == (best.venue, 100, "100.01")
    assert child.role == rt.CHILD_ROLE_TAKE
    expected = Decimal(decision.expected_cost_per_share)
    assert expected == Decimal(child.expected_cost_per_share) > Decimal("0.01")


async def test_route_large_marketable_order_then_swept_best_prices_first_with_iso(
    channel: grpc.aio.Channel, stub: rt_grpc.RoutingServiceStub
) -> None:
    await publish(channel, market())
    decision = await route(stub, quantity=1500, limit_price="100.02")

    children = decision.child_orders
    assert sum(c.quantity for c in children) == 1500
    takes = [c for c in children if c.role == rt.CHILD_ROLE_TAKE]
    prices = [Decimal(c.limit_price) for c in takes]
    assert prices == sorted(prices) and prices[0] == Decimal("100.01")
    # Everything displayed at 100.01 (300 + 200 + 100) is taken before anything at 100.02.
    assert sum(c.quantity for c in takes if c.limit_price == "100.01") == 600
    assert all(c.intermarket_sweep for c in takes)
    assert "EDGX" not in {c.venue for c in children}


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unknown_symbol", "UNKNOWN_SYMBOL"),
        ("no_quotes", "NO_QUOTES"),
        ("stale_quotes", "STALE_QUOTES"),
        ("crossed_book", "CROSSED_BOOK"),
        ("off_tick", "OFF_TICK"),
        ("every_venue_down", "NO_VENUE_AVAILABLE"),
    ],
)
async def test_route_order_on_bad_data_then_refused_with_reason(
    channel: grpc.aio.Channel, stub: rt_grpc.RoutingServiceStub, case: str, reason: str
) -> None:
    fields: dict[str, object] = {}
    if case == "unknown_symbol":
        await publish(channel, market())
        fields["symbol"] = "ZZZZ"
    elif case == "no_quotes":
        await publish(channel, [reference(OPEN)])
    elif case == "stale_quotes":
        # Another symbol's quote moves exchange time 5 s on; AAPL's are older than 2 s.
        later = OPEN + timedelta(seconds=5)
        await publish(channel, [*market(), reference(later, "MSFT")])
    elif case == "crossed_book":
        crossed = (("NASDAQ", "100.05", 100, "100.06", 100), ("NYSE", "99.99", 100, "100.01", 100))
        await publish(channel, [reference(OPEN), *quote_events(OPEN, crossed)])
    elif case == "off_tick":
        await publish(channel, market())
        fields["limit_price"] = "100.015"
    else:
        await publish(channel, market())
        for venue in VENUES:
            await set_status(stub, venue, rt.VENUE_STATUS_DOWN, "maintenance")
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await route(stub, **fields)
    decoded = decode(raised.value)
    assert decoded.code == grpc.StatusCode.FAILED_PRECONDITION
    assert decoded.reason == reason


async def test_route_order_with_zero_quantity_then_invalid_argument_naming_the_field(
    channel: grpc.aio.Channel, stub: rt_grpc.RoutingServiceStub
) -> None:
    await publish(channel, market())
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await route(stub, quantity=0)
    decoded = decode(raised.value)
    assert decoded.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(decoded.fields) == {"order.quantity"}


async def test_list_venues_then_six_profiles_with_fees_capabilities_and_status(
    stub: rt_grpc.RoutingServiceStub,
) -> None:
    answer: rt.ListVenuesResponse = await stub.ListVenues(rt.ListVenuesRequest())
    venues = {v.venue: v for v in answer.venues}
    assert set(venues) == set(VENUES)
    assert all(v.status == rt.VENUE_STATUS_UP for v in venues.values())
    assert venues["IEX"].access_delay_us == 350
    assert Decimal(venues["NASDAQ"].fees.take_fee_per_share) <= Decimal("0.003")
    assert venues["NASDAQ"].capabilities.listing_auctions
    assert set(venues["NASDAQ"].fill_probability) == {"SMALL", "MEDIUM", "LARGE", "BLOCK"}


async def test_set_venue_down_then_never_routed_there_and_back_up_then_eligible(
    channel: grpc.aio.Channel, stub: rt_grpc.RoutingServiceStub
) -> None:
    await publish(channel, market())
    first = await route(stub)
    chosen = first.child_orders[0].venue

    down = await set_status(stub, chosen, rt.VENUE_STATUS_DOWN, "FIX session lost")
    assert (down.status, down.status_reason) == (rt.VENUE_STATUS_DOWN, "FIX session lost")
    assert down.status_changed_at.ToDatetime(tzinfo=UTC) == OPEN
    listed: rt.ListVenuesResponse = await stub.ListVenues(rt.ListVenuesRequest())
    assert {v.venue for v in listed.venues if v.status == rt.VENUE_STATUS_DOWN} == {chosen}
    for quantity in (100, 500, 1500):
        decision = await route(stub, quantity=quantity, limit_price="100.02")
        assert chosen not in {c.venue for c in decision.child_orders}
        excluded = next(v for v in decision.ranked_venues if v.venue == chosen)
        assert not excluded.eligible
        assert "VENUE_DOWN" in {r.code for r in excluded.exclusions}
    # The decision names the venue it would have used and why it did not.
    again = await route(stub)
    assert again.fallback_from == chosen and "VENUE_DOWN" in again.fallback_reason

    up = await set_status(stub, chosen, rt.VENUE_STATUS_UP)
    assert up.status == rt.VENUE_STATUS_UP
    back = await route(stub)
    assert back.child_orders[0].venue == chosen and not back.fallback_from


@pytest.mark.parametrize(
    ("venue", "status", "code", "reason"),
    [
        ("NOWHERE", rt.VENUE_STATUS_DOWN, grpc.StatusCode.NOT_FOUND, "UNKNOWN_VENUE"),
        ("NASDAQ", rt.VENUE_STATUS_TRIPPED, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
        ("", rt.VENUE_STATUS_DOWN, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"),
    ],
)
async def test_set_venue_status_with_bad_request_then_refused(
    stub: rt_grpc.RoutingServiceStub,
    venue: str,
    status: int,
    code: grpc.StatusCode,
    reason: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await set_status(stub, venue, status)
    decoded = decode(raised.value)
    assert (decoded.code, decoded.reason) == (code, reason)


async def test_decisions_then_stored_in_batches_with_their_snapshot_and_counted(
    gateway: Gateway, channel: grpc.aio.Channel, stub: rt_grpc.RoutingServiceStub
) -> None:
    await publish(channel, market())
    decisions = await asyncio.gather(*(route(stub, client_order_id=f"o{i}") for i in range(20)))
    with pytest.raises(grpc.aio.AioRpcError):
        await route(stub, limit_price="100.015")
    recorder = gateway.routing.recorder
    assert recorder is not None
    await recorder.flush(10)

    connection = await asyncpg.connect(gateway.database.url)  # type: ignore[union-attr]
    try:
        rows = await connection.fetch("SELECT * FROM routing_decisions ORDER BY id")
    finally:
        await connection.close()
    assert {r["decision_id"] for r in rows} == {d.decision_id for d in decisions}
    row = rows[0]
    assert (row["trade_date"], row["symbol"], row["side"]) == (date(2026, 11, 24), "AAPL", "BUY")
    assert row["listing_venue"] == "NASDAQ" and row["arrival_mid"] == Decimal("100.00")
    assert '"100.03"' in row["snapshot"] and row["snapshot"].count("NYSE_ARCA") == 1
    assert row["latency_ns"] > 0

    sample = gateway.metrics.registry.get_sample_value
    assert sample("sor_routing_decisions_total", {"outcome": "routed"}) == 20
    assert sample("sor_routing_decisions_total", {"outcome": "OFF_TICK"}) == 1
    assert sample("sor_routing_latency_seconds_count") == 20
    selected = {v: sample("sor_venue_selections_total", {"venue": v}) or 0 for v in VENUES}
    assert sum(selected.values()) == 20


async def test_submit_order_then_routed_and_decision_stored_under_its_id(
    gateway: Gateway, channel: grpc.aio.Channel
) -> None:
    await publish(channel, market())
    answer: pt.SubmitOrderResponse = await pt_grpc.PreTradeServiceStub(channel).SubmitOrder(
        pt.SubmitOrderRequest(order=order())
    )
    assert answer.accepted and answer.order.decision_id
    recorder = gateway.routing.recorder
    assert recorder is not None
    await recorder.flush(10)
    connection = await asyncpg.connect(gateway.database.url)  # type: ignore[union-attr]
    try:
        venue = await connection.fetchval(
            "SELECT venue FROM routing_decisions WHERE decision_id = $1", answer.order.decision_id
        )
    finally:
        await connection.close()
    assert venue == answer.order.venue


async def test_routing_report_then_fills_linked_by_decision_id_analysed(
    gateway: Gateway, channel: grpc.aio.Channel, stub: rt_grpc.RoutingServiceStub
) -> None:
    await publish(channel, market())
    decision = await route(stub, quantity=100, limit_price="100.01")
    await route(stub, client_order_id="unfilled")
    child = decision.child_orders[0]
    writer = JournalWriter(gateway.database.url)  # type: ignore[union-attr]
    task = asyncio.create_task(writer.run(), name="journal-writer")
    try:
        await writer.wait_available(10)
        await writer.record(
            FillRow(
                trade_date=date(2026, 11, 24),
                venue=child.venue,
                exec_id="E1",
                account="ACC-1",
                symbol="AAPL",
                side="BUY",
                quantity=100,
                price=Decimal("100.01"),
                liquidity="REMOVED",
                transaction_time=OPEN + timedelta(milliseconds=1),
                received_at=OPEN + timedelta(milliseconds=2),
                client_order_id="ord-1",
                decision_id=decision.decision_id,
                venue_fee=Decimal("0.30"),
            )
        )
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    report: rt.RoutingReport = await stub.GetRoutingReport(
        rt.GetRoutingReportRequest(start_date="2026-11-24", end_date="2026-11-24")
    )
    assert (report.decisions, report.decisions_with_fills) == (2, 1)
    # 100.01 against the 100.00 mid, plus the 0.003 take fee.
    assert Decimal(report.realized_cost_per_share) == Decimal("0.013")
    assert 0 <= report.accuracy <= 1 and report.tolerance_per_share
    assert Decimal(report.baseline_listing_cost_per_share) >= Decimal("0.01")
    [venue] = report.venues
    assert (venue.venue, venue.decisions, venue.filled_shares) == (child.venue, 1, 100)
    sample = gateway.metrics.registry.get_sample_value
    assert sample("sor_routing_accuracy") == report.accuracy

    other: rt.RoutingReport = await stub.GetRoutingReport(
        rt.GetRoutingReportRequest(start_date="2026-11-24", end_date="2026-11-24", symbols=["MSFT"])
    )
    assert (other.decisions, other.decisions_with_fills) == (0, 0)

    # The same report from the command line, against the running gateway.
    result = await asyncio.to_thread(
        subprocess.run,
        [
            *(sys.executable, "-m", "gateway", "report", "routing"),
            *("--grpc-port", str(gateway.port), "--start-date", "2026-11-24"),
            *("--log-format", "text"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "decisions 2, with fills 1" in result.stdout
    assert f"{child.venue:<10} {1:>9} {100:>10}" in result.stdout


async def test_venue_rejects_orders_then_breaker_trips_and_decisions_name_the_fallback(
    gateway: Gateway, channel: grpc.aio.Channel, stub: rt_grpc.RoutingServiceStub
) -> None:
    await publish(channel, market())
    pretrade = pt_grpc.PreTradeServiceStub(channel)
    venue = ""
    for n in range(5):
        answer: pt.SubmitOrderResponse = await pretrade.SubmitOrder(
            pt.SubmitOrderRequest(order=order(client_order_id=f"r{n}", venue=venue))
        )
        if not answer.accepted:
            break  # the venue's breaker is open: orders directed there are refused
        venue = answer.order.venue
        # The OMS reports the venue's reject; the desk hears it through ReportOrderEvent.
        report = pt.ReportOrderEventRequest(
            client_order_id=f"r{n}", event_type=pt.ORDER_EVENT_TYPE_REJECTED, venue=venue
        )
        report.event_time.FromDatetime(OPEN)
        await pretrade.ReportOrderEvent(report)
    listed_now: rt.ListVenuesResponse = await stub.ListVenues(rt.ListVenuesRequest())
    assert next(v for v in listed_now.venues if v.venue == venue).status == rt.VENUE_STATUS_TRIPPED

    decision = await route(stub)
    assert venue not in {c.venue for c in decision.child_orders}
    assert decision.fallback_from == venue and "VENUE_TRIPPED" in decision.fallback_reason
    listed: rt.ListVenuesResponse = await stub.ListVenues(rt.ListVenuesRequest())
    state = next(v for v in listed.venues if v.venue == venue)
    assert state.status == rt.VENUE_STATUS_TRIPPED and state.status_reason.startswith("REJECTS")


async def test_orders_filled_at_a_venue_then_its_learned_fill_probability_rises(
    gateway: Gateway, channel: grpc.aio.Channel, stub: rt_grpc.RoutingServiceStub
) -> None:
    await publish(channel, market())
    listed: rt.ListVenuesResponse = await stub.ListVenues(rt.ListVenuesRequest())
    prior = {v.venue: v.fill_probability["SMALL"] for v in listed.venues}
    pretrade = pt_grpc.PreTradeServiceStub(channel)
    answer: pt.SubmitOrderResponse = await pretrade.SubmitOrder(
        pt.SubmitOrderRequest(order=order(quantity=200))
    )
    venue = answer.order.venue
    filled = pt.ReportOrderEventRequest(
        client_order_id="ord-1",
        event_type=pt.ORDER_EVENT_TYPE_FILLED,
        venue=venue,
        cumulative_quantity=200,
    )
    filled.event_time.FromDatetime(OPEN)
    await pretrade.ReportOrderEvent(filled)

    listed = await stub.ListVenues(rt.ListVenuesRequest())
    learned = next(v.fill_probability["SMALL"] for v in listed.venues if v.venue == venue)
    assert learned > prior[venue]


async def test_reload_venue_profiles_then_new_fees_served_and_operator_status_kept(
    gateway: Gateway, stub: rt_grpc.RoutingServiceStub, tmp_path: Path
) -> None:
    shipped = resources.files("gateway").joinpath("data/venues.toml").read_text("utf-8")
    await set_status(stub, "EDGX", rt.VENUE_STATUS_DOWN, "maintenance")
    version = gateway.routing.venues.version

    too_dear = tmp_path / "too-dear.toml"
    too_dear.write_text(
        shipped.replace('take_fee_per_share = "0.0030"', 'take_fee_per_share = "0.0031"')
    )
    with pytest.raises(ConfigurationError, match=r"Rule 610\(c\) access fee cap"):
        gateway.routing.reload(too_dear)
    assert gateway.routing.venues.version == version

    cheaper = tmp_path / "cheaper.toml"
    cheaper.write_text(
        shipped.replace('take_fee_per_share = "0.0030"', 'take_fee_per_share = "0.0029"')
    )
    gateway.routing.reload(cheaper)
    listed: rt.ListVenuesResponse = await stub.ListVenues(rt.ListVenuesRequest())
    venues = {v.venue: v for v in listed.venues}
    assert venues["NASDAQ"].fees.take_fee_per_share == "0.0029"
    assert (venues["EDGX"].status, venues["EDGX"].status_reason) == (
        rt.VENUE_STATUS_DOWN,
        "maintenance",
    )


async def test_report_routing_command_with_bad_dates_then_exit_1_naming_the_field(
    gateway: Gateway,
) -> None:
    command = [sys.executable, "-m", "gateway", "report", "routing"]
    command += ["--grpc-port", str(gateway.port), "--start-date", "2026-11-25"]
    command += ["--end-date", "2026-11-24", "--log-format", "text"]
    result = await asyncio.to_thread(
        subprocess.run, command, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 1
    assert "INVALID_ARGUMENT" in result.stderr and "end_date" in result.stderr
