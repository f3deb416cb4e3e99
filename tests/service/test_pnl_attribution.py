"""P&L attribution through the API, end to end: routed orders, fills, later quotes, GetPnl.

The gateway's clock follows the feed (a scripted Tuesday 2026-11-24). NBBO mids are sampled by the
gateway's own sampler: its timer is set long (an hour) and each test asks it to sample right
after publishing a book, the same code the timer runs, so which mids are recorded does not depend
on scheduling. Every expected value is worked out by hand in the comments.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from gateway._pb.execgw.v1 import common_pb2 as common
from gateway._pb.execgw.v1 import journal_pb2 as pb
from gateway._pb.execgw.v1 import journal_pb2_grpc as pb_grpc
from gateway._pb.execgw.v1 import pretrade_pb2 as pt
from gateway._pb.execgw.v1 import pretrade_pb2_grpc as pt_grpc
from gateway.errors import ConfigurationError
from gateway.server import Gateway
from tests.conftest import gateway_settings
from tests.service.test_halt_safety import OPEN, order, publish, quotes
from tests.service.test_routing import market

PARTS = (
    "gross_realized",
    "gross_unrealized",
    "commission",
    "exchange_fees",
    "regulatory_fees",
    "borrow",
)
COMMISSIONS = """
[default]
per_share = 0.01
minimum = 0.50
maximum = 1.50

[accounts.ACC-1]
per_share = "0.005"
minimum = "1.00"
maximum = "4.00"

[accounts.ACC-F]
bps = 1
"""


async def _start(database_url: str, tmp_path: Path, **overrides: object) -> Gateway:
    commissions = tmp_path / "commissions.toml"
    commissions.write_text(COMMISSIONS)
    values: dict[str, object] = {
        "market_clock": "feed",
        "mid_sample_seconds": 3600.0,
        "markout_horizon_seconds": 60.0,
        "commission_file": commissions,
    }
    values.update(overrides)
    running = Gateway(gateway_settings(database_url, tmp_path, **values))
    await running.start()
    return running


@pytest.fixture
async def gateway(database_url: str, tmp_path: Path) -> AsyncIterator[Gateway]:
    running = await _start(database_url, tmp_path)
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def channel(gateway: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as opened:
        yield opened


def fill(exec_id: str, at: datetime, **changes: object) -> pb.Fill:
    values: dict[str, object] = {
        "venue": "NASDAQ",
        "exec_id": exec_id,
        "account": "ACC-1",
        "symbol": "AAPL",
        "side": common.SIDE_BUY,
        "quantity": 100,
        "price": "100.00",
        "liquidity": common.LIQUIDITY_REMOVED,
    }
    values.update(changes)
    message = pb.Fill(**values)  # type: ignore[arg-type]  # test-only keyword bag
    message.transaction_time.FromDatetime(at)
    return message


async def record(stub: pb_grpc.JournalServiceStub, message: pb.Fill) -> pb.FillAck:
    answer: pb.RecordFillResponse = await stub.RecordFill(pb.RecordFillRequest(fill=message))
    return answer.ack


async def publish_and_sample(
    gateway: Gateway, channel: grpc.aio.Channel, at: datetime, bid: str, ask: str
) -> None:
    await publish(channel, quotes(at, bid, ask))
    gateway.mid_sampler.sample()


def assert_adds_up(answer: pb.GetPnlResponse) -> None:
    """Every row's parts add up to its net, and the rows to the total, part by part."""
    for row in answer.rows:
        assert sum(Decimal(getattr(row.pnl, p)) for p in PARTS) == Decimal(row.pnl.net)
    for name in (*PARTS, "net", "slippage", "market_impact", "timing_cost"):
        rows = sum(Decimal(getattr(r.pnl, name)) for r in answer.rows)
        assert rows == Decimal(getattr(answer.total, name)), name
    assert sum(Decimal(getattr(answer.total, p)) for p in PARTS) == Decimal(answer.total.net)


def parts(breakdown: object, *names: str) -> tuple[Decimal, ...]:
    return tuple(Decimal(getattr(breakdown, name)) for name in names)


async def test_routed_order_filled_then_quotes_move_then_every_attribution_part_by_hand(
    database_url: str, tmp_path: Path
) -> None:
    gateway = await _start(database_url, tmp_path)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
            first = await _trade_and_report(gateway, channel)
    finally:
        await gateway.stop()
    # Decisions and mids are in PostgreSQL: a restarted gateway attributes exactly the same.
    again = await _start(database_url, tmp_path)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{again.port}") as channel:
            second = await _pnl(pb_grpc.JournalServiceStub(channel))
    finally:
        await again.stop()
    assert second == first


async def _pnl(stub: pb_grpc.JournalServiceStub) -> pb.GetPnlResponse:
    answer: pb.GetPnlResponse = await stub.GetPnl(
        pb.GetPnlRequest(
            start_date="2026-11-24",
            end_date="2026-11-24",
            group_by=[pb.PNL_GROUPING_ACCOUNT, pb.PNL_GROUPING_SYMBOL, pb.PNL_GROUPING_VENUE],
            include_shortfall=True,
        )
    )
    return answer


async def _trade_and_report(gateway: Gateway, channel: grpc.aio.Channel) -> pb.GetPnlResponse:
    stub = pb_grpc.JournalServiceStub(channel)
    # 10:00:00 NBBO 99.99 x 100.01 (NASDAQ, NYSE, IEX at the offer): arrival mid 100.00.
    await publish(channel, market())
    gateway.mid_sampler.sample()
    submitted: pt.SubmitOrderResponse = await pt_grpc.PreTradeServiceStub(channel).SubmitOrder(
        pt.SubmitOrderRequest(order=order(client_order_id="ord-1", quantity=200))
    )
    assert submitted.accepted and submitted.order.decision_id
    decision_id = submitted.order.decision_id
    await publish_and_sample(gateway, channel, OPEN + timedelta(seconds=10), "100.01", "100.03")
    # 10:00:11 the order fills 100 of its 200 at IEX at 100.03; the mid is 100.02.
    ack = await record(
        stub,
        fill(
            "B1",
            OPEN + timedelta(seconds=11),
            venue="IEX",
            price="100.03",
            client_order_id="ord-1",
            decision_id=decision_id,
        ),
    )
    # ACC-1 pays 0.005 a share with a 1.00 minimum: 0.50 -> 1.00. IEX takes 0.0009 a share.
    assert (ack.fees.commission, ack.fees.venue_fee) == ("1.00", "0.090000")
    await publish_and_sample(gateway, channel, OPEN + timedelta(seconds=40), "100.04", "100.06")
    await publish_and_sample(gateway, channel, OPEN + timedelta(seconds=80), "100.09", "100.11")
    # 10:01:30 a sale of the 100 at NASDAQ at 100.09 (no routing decision); the mid is 100.10.
    await record(
        stub,
        fill("S1", OPEN + timedelta(seconds=90), side=common.SIDE_SELL, price="100.09"),
    )
    await publish_and_sample(gateway, channel, OPEN + timedelta(seconds=120), "100.13", "100.15")
    # The last mid of the day, 100.20, is sampled by GetPnl itself.
    await publish(channel, quotes(OPEN + timedelta(seconds=300), "100.19", "100.21"))

    answer = await _pnl(stub)
    assert_adds_up(answer)
    rows = {row.venue: row.pnl for row in answer.rows}
    assert set(rows) == {"IEX", "NASDAQ"}
    names = ("slippage", "market_impact", "timing_cost", "venue_selection_savings")
    # The buy: slippage 100 x (100.00 - 100.03) = -3.00; impact 100 x (mid 60 s after the fill,
    # 100.05 at 10:01:11, - 100.02) = 3.00; timing 100 x (100.00 - 100.02) = -2.00; against the
    # listing exchange (NASDAQ: 100.01 plus its 0.0030 take fee, 0.013 over the arrival mid) the
    # realised 0.03 + 0.0009 = 0.0309 a share saves 100 x (0.013 - 0.0309) = -1.79.
    assert parts(rows["IEX"], *names) == tuple(map(Decimal, ("-3.00", "3.00", "-2.00", "-1.79")))
    # The sale: no order decided, so only the markout: -100 x (100.14 at 10:02:30 - 100.10).
    assert parts(rows["NASDAQ"], *names) == tuple(map(Decimal, ("0", "-4.00", "0", "0")))
    total = answer.total
    # Realised 100 x (100.09 - 100.03) = 6.00; commission 2 x 1.00; venue 0.09 + 0.30; SEC
    # 10,009 x 20.60 / 1e6 = 0.2061854 -> 0.20618 -> 0.21 and TAF 0.0195 -> 0.02.
    assert parts(total, *PARTS, "net") == tuple(
        map(Decimal, ("6.00", "0", "-2.00", "-0.39", "-0.23", "0", "3.38"))
    )
    assert parts(total, *names) == tuple(map(Decimal, ("-3.00", "-1.00", "-2.00", "-1.79")))
    [shortfall] = answer.shortfalls
    assert (shortfall.client_order_id, shortfall.ordered_quantity, shortfall.filled_quantity) == (
        "ord-1",
        200,
        100,
    )
    # Decision 100.00, release (mid at the first fill) 100.02, end of day 100.20: delay
    # 100 x 0.02 = 2.00, trading 100 x (100.03 - 100.02) = 1.00, opportunity of the 100 unfilled
    # 100 x (100.20 - 100.00) = 20.00, fees 1.00 + 0.09.
    assert Decimal(shortfall.decision_price) == Decimal("100.00")
    costs = ("delay_cost", "trading_cost", "opportunity_cost", "fees", "total")
    assert parts(shortfall, *costs) == tuple(
        map(Decimal, ("2.00", "1.00", "20.00", "1.09", "24.09"))
    )
    return answer


async def test_short_positions_over_two_days_then_borrow_accrued_at_each_symbols_rate(
    database_url: str, tmp_path: Path
) -> None:
    rates = tmp_path / "borrow.csv"
    rates.write_text("symbol,annual_rate,hard_to_borrow\nXYZ,0.36,true\n")
    gateway = await _start(
        database_url, tmp_path, borrow_rates_file=rates, borrow_default_rate=Decimal("0.0025")
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
            stub = pb_grpc.JournalServiceStub(channel)
            monday = datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
            short = common.SIDE_SELL_SHORT
            await record(stub, fill("X1", monday, symbol="XYZ", side=short, price="50.00"))
            await record(
                stub,
                fill("A1", monday, symbol="ABC", side=short, quantity=1000, price="36.00"),
            )
            # A long position borrows nothing.
            await record(stub, fill("L1", monday, symbol="LNG", price="20.00"))
            answer: pb.GetPnlResponse = await stub.GetPnl(
                pb.GetPnlRequest(
                    start_date="2026-11-23",
                    end_date="2026-11-24",
                    group_by=[pb.PNL_GROUPING_SYMBOL, pb.PNL_GROUPING_DAY],
                )
            )
    finally:
        await gateway.stop()
    assert_adds_up(answer)
    borrow = {(r.symbol, r.trade_date): Decimal(r.pnl.borrow) for r in answer.rows}
    # XYZ, hard to borrow at 36%: 100 x 50.00 x 0.36 / 360 = 5.00 a day. ABC at the 0.25%
    # default: 1,000 x 36.00 x 0.0025 / 360 = 0.25 a day.
    assert {k: v for k, v in borrow.items() if v} == {
        ("XYZ", "2026-11-23"): Decimal("-5.00"),
        ("XYZ", "2026-11-24"): Decimal("-5.00"),
        ("ABC", "2026-11-23"): Decimal("-0.25"),
        ("ABC", "2026-11-24"): Decimal("-0.25"),
    }
    assert Decimal(answer.total.borrow) == Decimal("-10.50")


async def test_fifo_and_average_accounts_from_settings_then_different_realised_and_commissions(
    database_url: str, tmp_path: Path
) -> None:
    gateway = await _start(database_url, tmp_path, account_cost_methods="ACC-F=fifo")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
            stub = pb_grpc.JournalServiceStub(channel)
            trades = (
                (common.SIDE_BUY, 100, "10.00"),
                (common.SIDE_BUY, 200, "12.00"),
                (common.SIDE_SELL, 100, "13.00"),
                (common.SIDE_BUY, 20, "13.00"),
            )
            commissions: dict[str, list[str]] = {}
            for account in ("ACC-A", "ACC-F"):
                for n, (side, quantity, price) in enumerate(trades):
                    at = OPEN + timedelta(seconds=n)
                    ack = await record(
                        stub,
                        fill(
                            f"{account}-{n}",
                            at,
                            account=account,
                            side=side,
                            quantity=quantity,
                            price=price,
                        ),
                    )
                    commissions.setdefault(account, []).append(ack.fees.commission)
            held = await stub.GetPositions(pb.GetPositionsRequest(include_lots=True))
            answer: pb.GetPnlResponse = await stub.GetPnl(
                pb.GetPnlRequest(
                    start_date="2026-11-24",
                    end_date="2026-11-24",
                    group_by=[pb.PNL_GROUPING_ACCOUNT],
                )
            )
    finally:
        await gateway.stop()
    # ACC-A, the default schedule: 0.01 a share, 0.50 minimum (20 shares), 1.50 maximum
    # (200 shares). ACC-F: 1 basis point of the value, 1,000 x 0.0001 = 0.10 and so on.
    assert commissions == {
        "ACC-A": ["1.00", "1.50", "1.00", "0.50"],
        "ACC-F": ["0.10", "0.24", "0.13", "0.03"],
    }
    methods = {p.account: (p.cost_method, len(p.lots)) for p in held.positions}
    assert methods == {"ACC-A": (pb.COST_METHOD_AVERAGE, 0), "ACC-F": (pb.COST_METHOD_FIFO, 2)}
    assert_adds_up(answer)
    realised = {r.account: Decimal(r.pnl.gross_realized) for r in answer.rows}
    commission = {r.account: Decimal(r.pnl.commission) for r in answer.rows}
    # Average: 100 x (13.00 - 3,400 / 300) = 166.67. FIFO: the 10.00 lot first, 100 x 3.00.
    assert realised == {"ACC-A": Decimal("166.67"), "ACC-F": Decimal("300.00")}
    assert commission == {"ACC-A": Decimal("-4.00"), "ACC-F": Decimal("-0.50")}


async def test_bad_cost_files_then_the_gateway_refuses_to_start_naming_each_problem(
    database_url: str, tmp_path: Path
) -> None:
    commissions = tmp_path / "bad-commissions.toml"
    commissions.write_text(
        '[accounts.ACC-1]\nper_share = "0.01"\nbps = 1\n'
        "[accounts.ACC-2]\nper_share = -1\n[accounts.ACC-3]\nbps = 2\nminimum = 3\nmaximum = 1\n"
    )
    rates = tmp_path / "bad-borrow.toml"
    rates.write_text('[symbols]\nXYZ = "lots"\nABC = { rate = 0.1 }\n')
    with pytest.raises(ConfigurationError) as raised:
        await _start(
            database_url,
            tmp_path,
            commission_file=commissions,
            borrow_rates_file=rates,
            account_cost_methods="ACC-1=lifo",
        )
    problems = "\n".join(raised.value.problems)
    for expected in (
        "accounts.ACC-1: give exactly one of per_share or bps",
        "accounts.ACC-2.per_share: must be a finite number >= 0",
        "accounts.ACC-3.maximum: must not be below minimum",
        "symbols.XYZ.annual_rate: expected a decimal number",
        "symbols.ABC: unknown key(s) rate",
        "symbols.ABC.annual_rate: is required",
        "account_cost_methods: 'ACC-1=lifo' must be ACCOUNT=average or ACCOUNT=fifo",
    ):
        assert expected in problems
