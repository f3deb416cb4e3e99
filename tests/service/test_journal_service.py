"""The trade journal through the API, the way an OMS reports fills."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import urllib.parse
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway._pb.execgw.v1 import common_pb2 as common
from gateway._pb.execgw.v1 import journal_pb2 as pb
from gateway._pb.execgw.v1 import journal_pb2_grpc as pb_grpc
from gateway.server import Gateway
from tests.conftest import gateway_settings
from tests.grpc_errors import decode

# Tuesday 2026-11-24, 10:00 New York: SEC fee 20.60 per million, FINRA TAF 0.000195 per share.
T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def fill(n: int, **changes: object) -> pb.Fill:
    values: dict[str, object] = {
        "venue": "NASDAQ",
        "exec_id": f"E{n}",
        "account": "ACC-1",
        "symbol": "AAPL",
        "side": common.SIDE_BUY,
        "quantity": 100,
        "price": "100.00",
        "liquidity": common.LIQUIDITY_REMOVED,
        "client_order_id": "ord-1",
    }
    values.update(changes)
    message = pb.Fill(**values)  # type: ignore[arg-type]  # test-only keyword bag
    message.transaction_time.FromDatetime(T0 + timedelta(seconds=n))
    return message


async def _start(database_url: str, tmp_path: Path) -> Gateway:
    running = Gateway(gateway_settings(database_url, tmp_path))
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
async def stub(gateway: Gateway) -> AsyncIterator[pb_grpc.JournalServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        yield pb_grpc.JournalServiceStub(channel)


async def record(stub: pb_grpc.JournalServiceStub, message: pb.Fill) -> pb.FillAck:
    answer: pb.RecordFillResponse = await stub.RecordFill(pb.RecordFillRequest(fill=message))
    return answer.ack


async def positions(stub: pb_grpc.JournalServiceStub, **request: object) -> list[pb.Position]:
    answer = await stub.GetPositions(pb.GetPositionsRequest(**request))  # type: ignore[arg-type]
    return list(answer.positions)


async def test_record_fill_then_acknowledged_after_commit_with_sequence_position_and_fees(
    gateway: Gateway, stub: pb_grpc.JournalServiceStub
) -> None:
    ack = await record(stub, fill(1))
    assert ack.sequence > 0 and not ack.duplicate
    assert (ack.position.quantity, ack.position.average_cost) == (100, "100.000000")
    # NASDAQ take fee 0.0030 per share; a buy pays no SEC fee or TAF.
    assert (ack.fees.venue_fee, ack.fees.sec_fee, ack.fees.finra_taf) == ("0.300000", "0", "0")
    connection = await asyncpg.connect(gateway.database.url)  # type: ignore[union-attr]
    try:
        stored = await connection.fetchrow(
            "SELECT sequence, venue_fee FROM trade_fills WHERE exec_id = 'E1'"
        )
    finally:
        await connection.close()
    assert stored["sequence"] == ack.sequence and str(stored["venue_fee"]) == "0.300000"


async def test_sale_then_sec_fee_and_taf_from_the_dated_tables(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    await record(stub, fill(1, quantity=500))
    ack = await record(stub, fill(2, side=common.SIDE_SELL, quantity=500))
    # 50,000.00 x 20.60 / 1e6 = 1.03; 500 x 0.000195 = 0.0975 -> 0.10.
    assert (ack.fees.sec_fee, ack.fees.finra_taf) == ("1.03", "0.10")
    assert ack.position.quantity == 0


async def test_same_fill_again_then_original_sequence_marked_duplicate(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    first = await record(stub, fill(1))
    again = await record(stub, fill(1))
    assert again.duplicate and again.sequence == first.sequence
    assert again.position.quantity == 100  # applied once


async def test_same_exec_id_different_content_then_already_exists_fill_conflict(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    await record(stub, fill(1))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await record(stub, fill(1, quantity=200))
    decoded = decode(raised.value)
    assert (decoded.code, decoded.reason) == (grpc.StatusCode.ALREADY_EXISTS, "FILL_CONFLICT")
    assert (await positions(stub))[0].quantity == 100


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"quantity": 0}, "fill.quantity"),
        ({"quantity": -5}, "fill.quantity"),
        ({"price": "NaN"}, "fill.price"),
        ({"side": 0}, "fill.side"),
        ({"side": 99}, "fill.side"),
        ({"exec_id": ""}, "fill.exec_id"),
    ],
)
async def test_bad_fill_then_invalid_argument_naming_the_field(
    stub: pb_grpc.JournalServiceStub, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await record(stub, fill(1, **changes))
    decoded = decode(raised.value)
    assert decoded.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in decoded.fields


async def test_transaction_time_far_in_the_future_then_invalid_argument(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    message = fill(1)
    message.transaction_time.FromDatetime(datetime.now(UTC) + timedelta(hours=1))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await record(stub, message)
    decoded = decode(raised.value)
    assert decoded.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(decoded.fields) == {"fill.transaction_time"}


async def test_stream_with_a_bad_record_then_answered_on_the_stream_and_stream_continues(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    requests = [
        pb.RecordFillRequest(fill=fill(1), request_id="a"),
        pb.RecordFillRequest(fill=fill(2, quantity=0), request_id="b"),
        pb.RecordFillRequest(fill=fill(3), request_id="c"),
        pb.RecordFillRequest(fill=fill(1), request_id="d"),
    ]
    answers = [answer async for answer in stub.RecordFills(iter(requests))]
    assert [a.request_id for a in answers] == ["a", "b", "c", "d"]
    assert [a.WhichOneof("result") for a in answers] == ["ack", "error", "ack", "ack"]
    assert answers[1].error.status == "INVALID_ARGUMENT"
    assert [v.field for v in answers[1].error.field_violations] == ["fill.quantity"]
    assert answers[3].ack.duplicate and answers[3].ack.sequence == answers[0].ack.sequence
    assert answers[2].ack.position.quantity == 200


async def test_stream_client_waiting_for_each_answer_then_answered_without_more_requests(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    call = stub.RecordFills()
    for n in range(3):
        await call.write(pb.RecordFillRequest(fill=fill(n), request_id=str(n)))
        answer = await asyncio.wait_for(call.read(), 10)
        assert (answer.request_id, answer.ack.position.quantity) == (str(n), 100 * (n + 1))
    await call.done_writing()
    assert await call.code() == grpc.StatusCode.OK


async def test_many_fills_on_one_stream_then_each_acknowledged_in_order(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    requests = [pb.RecordFillRequest(fill=fill(n), request_id=str(n)) for n in range(500)]
    answers = [answer async for answer in stub.RecordFills(iter(requests))]
    assert [a.request_id for a in answers] == [str(n) for n in range(500)]
    assert len({a.ack.sequence for a in answers}) == 500
    assert answers[-1].ack.position.quantity == 50_000


async def test_position_scenarios_then_quantity_cost_and_realised_pnl(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    await record(stub, fill(1, quantity=100, price="10.00"))
    await record(stub, fill(2, quantity=100, price="12.00"))
    partial = await record(stub, fill(3, side=common.SIDE_SELL, quantity=50, price="13.00"))
    assert (partial.position.quantity, partial.position.average_cost) == (150, "11.000000")
    assert partial.position.realized_pnl.startswith("100.")
    flip = await record(stub, fill(4, side=common.SIDE_SELL, quantity=250, price="12.00"))
    assert (flip.position.quantity, flip.position.average_cost) == (-100, "12.000000")
    assert flip.position.realized_pnl.startswith("250.")


async def test_bust_then_position_as_if_the_fill_never_happened(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    await record(stub, fill(1))
    await record(stub, fill(2))
    bust = await record(stub, fill(3, kind=pb.FILL_KIND_BUST, corrects_exec_id="E2"))
    assert bust.position.quantity == 100


async def test_restart_on_the_same_database_then_positions_rebuilt_identically(
    database_url: str, tmp_path: Path
) -> None:
    first = await _start(database_url, tmp_path)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{first.port}") as channel:
            stub = pb_grpc.JournalServiceStub(channel)
            await record(stub, fill(1, quantity=300, price="10.10"))
            await record(stub, fill(2, side=common.SIDE_SELL, quantity=120, price="10.37"))
            await record(stub, fill(3, symbol="MSFT", side=common.SIDE_SELL_SHORT, price="400"))
            await record(stub, fill(4, quantity=77, price="10.2"))
            await record(stub, fill(5, kind=pb.FILL_KIND_BUST, corrects_exec_id="E4"))
            before = await positions(stub, include_flat=True, include_lots=True)
    finally:
        await first.stop()
    second = await _start(database_url, tmp_path)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{second.port}") as channel:
            after = await positions(
                pb_grpc.JournalServiceStub(channel), include_flat=True, include_lots=True
            )
    finally:
        await second.stop()
    assert after == before
    assert [(p.symbol, p.quantity) for p in after] == [("AAPL", 180), ("MSFT", -100)]


async def test_get_positions_filtered_by_account_and_symbol(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    await record(stub, fill(1))
    await record(stub, fill(2, account="ACC-2"))
    await record(stub, fill(3, symbol="MSFT"))
    found = await positions(stub, accounts=["ACC-1"], symbols=["MSFT"])
    assert [(p.account, p.symbol) for p in found] == [("ACC-1", "MSFT")]


async def test_untouched_journal_then_audit_trail_valid(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    for n in range(5):
        await record(stub, fill(n))
    report = await stub.VerifyAuditTrail(pb.VerifyAuditTrailRequest())
    assert (report.valid, report.rows_checked, report.chains_checked) == (True, 5, 1)


async def test_changed_row_then_audit_trail_names_it(
    gateway: Gateway, stub: pb_grpc.JournalServiceStub
) -> None:
    acks = [await record(stub, fill(n)) for n in range(5)]
    connection = await asyncpg.connect(gateway.database.url)  # type: ignore[union-attr]
    try:
        await connection.execute("SET session_replication_role = replica")
        await connection.execute("UPDATE trade_fills SET quantity = 99 WHERE exec_id = 'E3'")
    finally:
        await connection.close()
    report = await stub.VerifyAuditTrail(pb.VerifyAuditTrailRequest())
    assert not report.valid
    assert report.first_bad_row.startswith(f"trade_fills#{acks[3].sequence} ")
    assert report.problem.startswith("AUDIT_ROW_CHANGED")


async def _health(channel: grpc.aio.Channel, service: str) -> int:
    answer = await health_pb2_grpc.HealthStub(channel).Check(
        health_pb2.HealthCheckRequest(service=service)
    )
    return int(answer.status)


async def _wait_health(channel: grpc.aio.Channel, status: int) -> None:
    watch = health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service="execgw.v1.JournalService")
    )
    try:
        async with asyncio.timeout(15):
            async for answer in watch:
                if answer.status == status:
                    return
    finally:
        watch.cancel()


async def test_database_down_then_unavailable_and_not_serving_then_recovers(
    gateway: Gateway, postgres_url: str
) -> None:
    name = urllib.parse.urlsplit(gateway.database.url).path.lstrip("/")  # type: ignore[union-attr]
    admin = await asyncpg.connect(postgres_url)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        stub = pb_grpc.JournalServiceStub(channel)
        await record(stub, fill(1))
        try:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
                name,
            )
            await _wait_health(channel, health_pb2.HealthCheckResponse.NOT_SERVING)
            assert await _health(channel, "") == health_pb2.HealthCheckResponse.NOT_SERVING
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await record(stub, fill(2))
            assert decode(raised.value).code == grpc.StatusCode.UNAVAILABLE
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            await admin.close()
        await _wait_health(channel, health_pb2.HealthCheckResponse.SERVING)
        ack = await record(stub, fill(2))
        assert ack.position.quantity == 200


async def _round_trip(stub: pb_grpc.JournalServiceStub) -> None:
    await record(stub, fill(1, quantity=100, price="10.00"))
    await record(stub, fill(2, side=common.SIDE_SELL, quantity=100, price="11.00"))


async def test_get_pnl_of_a_round_trip_then_parts_add_up_to_net_to_the_cent(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    await _round_trip(stub)
    answer = await stub.GetPnl(pb.GetPnlRequest(start_date="2026-11-24", end_date="2026-11-24"))
    total = answer.total
    # Venue 2 x 0.30; SEC 1,100 x 20.60 / 1e6 = 0.02266 -> 0.03; TAF 100 x 0.000195 -> 0.02.
    assert (total.gross_realized, total.exchange_fees, total.regulatory_fees) == (
        "100.00",
        "-0.60",
        "-0.05",
    )
    assert total.net == "99.35"
    parts = (total.gross_realized, total.gross_unrealized, total.commission)
    fees = (total.exchange_fees, total.regulatory_fees, total.borrow)
    assert sum(Decimal(p) for p in (*parts, *fees)) == Decimal(total.net)
    assert [(r.account, r.symbol) for r in answer.rows] == [("ACC-1", "AAPL")]


async def test_get_pnl_with_open_position_then_marked_to_last_journaled_price(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    await record(stub, fill(1, quantity=100, price="10.00", liquidity=common.LIQUIDITY_ADDED))
    await record(stub, fill(2, symbol="MSFT", quantity=10, price="400.00"))
    await record(stub, fill(3, quantity=100, price="10.50", liquidity=common.LIQUIDITY_ADDED))
    answer = await stub.GetPnl(
        pb.GetPnlRequest(
            start_date="2026-11-24",
            end_date="2026-11-24",
            symbols=["AAPL"],
            group_by=[pb.PNL_GROUPING_SYMBOL],
        )
    )
    # 200 shares at an average 10.25, marked at 10.50; NASDAQ rebates 2 x 100 x 0.0020.
    assert (answer.total.gross_unrealized, answer.total.exchange_fees) == ("50.00", "0.40")


async def test_get_pnl_with_end_before_start_then_invalid_argument(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await stub.GetPnl(pb.GetPnlRequest(start_date="2026-11-25", end_date="2026-11-24"))
    assert set(decode(raised.value).fields) == {"end_date"}


def _statement(cash: str, **positions: int) -> pb.ReconcileRequest:
    return pb.ReconcileRequest(
        trade_date="2026-11-24",
        positions=[
            pb.StatementPosition(account="ACC-1", symbol=symbol, quantity=quantity)
            for symbol, quantity in positions.items()
        ],
        cash=[pb.StatementCash(account="ACC-1", amount=cash)],
    )


async def test_reconcile_matching_statement_then_matched_and_run_stored(
    gateway: Gateway, stub: pb_grpc.JournalServiceStub
) -> None:
    await _round_trip(stub)
    await record(stub, fill(3, symbol="MSFT", quantity=10, price="400.00"))
    # Cash: -1,000.30 + 1,099.65 - 4,000.03 (MSFT 10 x 0.0030 fee).
    answer = await stub.Reconcile(_statement("-3900.68", MSFT=10))
    assert answer.matched and not answer.breaks
    connection = await asyncpg.connect(gateway.database.url)  # type: ignore[union-attr]
    try:
        stored = await connection.fetchrow(
            "SELECT matched, break_count FROM reconciliation_runs WHERE run_id = $1::uuid",
            answer.run_id,
        )
        snapshots = await connection.fetchval(
            "SELECT count(*) FROM position_snapshots WHERE run_id = $1::uuid", answer.run_id
        )
    finally:
        await connection.close()
    assert (stored["matched"], stored["break_count"], snapshots) == (True, 0, 2)


async def test_reconcile_with_breaks_then_each_kind_and_amount(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    await _round_trip(stub)
    await record(stub, fill(3, symbol="MSFT", quantity=10, price="400.00"))
    answer = await stub.Reconcile(_statement("-3900.67", TSLA=5))
    found = {(b.kind, b.symbol): b.difference for b in answer.breaks}
    assert not answer.matched
    assert found == {
        (pb.BREAK_KIND_MISSING_FILL, "MSFT"): "-10",
        (pb.BREAK_KIND_UNKNOWN_SYMBOL, "TSLA"): "5",
        (pb.BREAK_KIND_CASH_MISMATCH, ""): "0.01",
    }


async def _execgw(*argv: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("EXECGW_")}
    # Off the event loop: the gateway under test runs on it.
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway", *argv],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_cli_reconcile_audit_and_pnl_report_then_printed_with_exit_codes(
    gateway: Gateway, stub: pb_grpc.JournalServiceStub, tmp_path: Path
) -> None:
    await _round_trip(stub)
    port = ("--grpc-port", str(gateway.port))
    statement = tmp_path / "statement.csv"
    statement.write_text("account,symbol,quantity\nACC-1,$CASH,99.35\n")
    matched = await _execgw(
        "reconcile", "--date", "2026-11-24", "--statement", str(statement), *port
    )
    assert matched.returncode == 0 and "0 break(s)" in matched.stdout, matched.stderr
    statement.write_text("account,symbol,quantity\nACC-1,TSLA,5\nACC-1,$CASH,99.35\n")
    broken = await _execgw(
        "reconcile", "--date", "2026-11-24", "--statement", str(statement), *port
    )
    assert broken.returncode == 1 and "UNKNOWN_SYMBOL" in broken.stdout
    audit = await _execgw("audit", "verify", *port)
    assert audit.returncode == 0 and "valid: 2 row(s)" in audit.stdout, audit.stderr
    report = await _execgw("report", "pnl", "--start-date", "2026-11-24", *port)
    assert report.returncode == 0, report.stderr
    assert "99.35" in report.stdout.splitlines()[-1]
