"""Routing decisions on a real PostgreSQL: exact round trip, batched, append-only, outage-proof,
and the fills linked to them as they stand after corrections and busts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from storage import routing_decisions
from storage.journal import FillRow, JournalWriter
from storage.market_events import APPLICATION_NAME
from storage.routing_decisions import (
    DecisionRow,
    LinkedFill,
    RoutingDecisionRecorder,
    fetch_decisions,
    fetch_linked_fills,
)
from tests.conftest import migrated
from tests.storage import test_market_events as market_events
from tests.storage.test_market_events import _start, _stop

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
DAY = date(2026, 11, 24)


def decision(n: int, **changes: object) -> DecisionRow:
    values: dict[str, object] = {
        "decision_id": f"d-{n}",
        "decided_at": T0 + timedelta(microseconds=n),
        "trade_date": DAY,
        "symbol": "AAPL",
        "side": "BUY",
        "order_type": "LIMIT",
        "quantity": 100,
        "venue": "NASDAQ",
        "listing_venue": "NASDAQ",
        "size_tier": "SMALL",
        "arrival_mid": Decimal("100.005"),
        "national_best_bid": Decimal("100.00"),
        "national_best_offer": Decimal("100.01"),
        "expected_cost_per_share": Decimal("0.008000"),
        "fallback_from": "",
        "venue_set_version": 1,
        "latency_ns": 12_345,
        "ranking": (("NASDAQ", 0.9, True, ()), ("EDGX", 0.2, False, ("TRADE_THROUGH",))),
        "child_orders": (
            ("NASDAQ", 100, Decimal("100.01"), "LIMIT", False, "TAKE", Decimal("0.008")),
        ),
        "snapshot": (
            ("NASDAQ", Decimal("100.00"), 300, Decimal("100.01"), 300, T0),
            ("EDGX", None, 0, Decimal("100.02"), 100, T0 - timedelta(milliseconds=3)),
        ),
    }
    values.update(changes)
    return DecisionRow(**values)  # type: ignore[arg-type]  # test-only keyword bag


connection = market_events.connection


@pytest.fixture
async def recorder(database_url: str) -> AsyncIterator[tuple[RoutingDecisionRecorder, str]]:
    await migrated(database_url)
    started = RoutingDecisionRecorder(database_url, retry_delay=0.05)
    task = _start(started)
    await started.wait_available(10)
    try:
        yield started, database_url
    finally:
        await _stop(task)


async def test_decisions_recorded_then_read_back_exactly(
    recorder: tuple[RoutingDecisionRecorder, str], connection: asyncpg.Connection
) -> None:
    writer, _ = recorder
    rows = [decision(n) for n in range(3)]
    one_sided = decision(3, arrival_mid=None, national_best_bid=None, symbol="MSFT")
    for row in [*rows, one_sided]:
        writer.record_decision(row)
    await writer.flush(10)
    assert await fetch_decisions(connection, start=DAY, end=DAY) == [*rows, one_sided]
    assert await fetch_decisions(connection, start=DAY, end=DAY, symbols=["MSFT"]) == [one_sided]
    later = DAY + timedelta(days=1)
    assert await fetch_decisions(connection, start=later, end=later) == []
    # By id, whatever the date (P&L attribution asks for the decisions its fills name).
    assert await fetch_decisions(connection, decision_ids=["d-2", "d-0", "nope"]) == [
        rows[0],
        rows[2],
    ]
    assert await fetch_decisions(connection, decision_ids=[]) == []


async def test_many_decisions_then_written_in_few_batches(
    recorder: tuple[RoutingDecisionRecorder, str], connection: asyncpg.Connection
) -> None:
    writer, _ = recorder
    rows = [decision(n) for n in range(5_000)]
    for row in rows:
        writer.record_decision(row)
    await writer.flush(30)
    assert writer.written == 5_000 and writer.batches_written <= 5
    # Each batch is turned into rows a chunk at a time: none lost or repeated.
    assert await fetch_decisions(connection, start=DAY, end=DAY) == rows


async def test_large_batch_then_built_with_the_event_loop_free_between_chunks(
    recorder: tuple[RoutingDecisionRecorder, str],
    connection: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writer, _ = recorder
    turns = 0

    async def other_work() -> None:
        """Stands for the RPCs waiting on the event loop while a batch is built."""
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    seen: list[int] = []  # the other work's progress as each decision becomes a row
    build = routing_decisions._record

    def record(row: DecisionRow) -> tuple[object, ...]:
        seen.append(turns)
        return build(row)

    monkeypatch.setattr(routing_decisions, "_record", record)
    for n in range(2_000):
        writer.record_decision(decision(n))
    task = asyncio.create_task(other_work())
    try:
        await writer.flush(30)
    finally:
        task.cancel()
    assert len(seen) == 2_000
    # Built in one go, every row of a batch would see the same count: the other work must get
    # the loop at least once every 32 decisions (a few hundred microseconds of building).
    assert len(set(seen)) >= 2_000 // 32
    assert await connection.fetchval("SELECT count(*) FROM routing_decisions") == 2_000


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE routing_decisions SET venue = 'EDGX'",
        "DELETE FROM routing_decisions",
        "TRUNCATE routing_decisions",
    ],
)
@pytest.mark.parametrize("role", ["owner", "execgw_app"])
async def test_change_to_recorded_decision_then_refused_for_owner_and_application_role(
    recorder: tuple[RoutingDecisionRecorder, str],
    connection: asyncpg.Connection,
    statement: str,
    role: str,
) -> None:
    writer, _ = recorder
    writer.record_decision(decision(1))
    await writer.flush(10)
    if role != "owner":
        await connection.execute(f"SET ROLE {role}")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=r"immutable|permission denied"):
        await connection.execute(statement)
    assert await connection.fetchval("SELECT count(*) FROM routing_decisions") == 1


async def test_backend_killed_while_recording_then_every_decision_written_exactly_once(
    recorder: tuple[RoutingDecisionRecorder, str],
    connection: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer, _ = recorder
    for n in range(6_000):
        writer.record_decision(decision(n))
        if n % 250 == 0:
            await asyncio.sleep(0)
        if n % 2_000 == 1_000:
            await connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = $1",
                APPLICATION_NAME,
            )
    await writer.flush(30)
    ids = await connection.fetch("SELECT decision_id FROM routing_decisions ORDER BY id")
    assert [r["decision_id"] for r in ids] == [f"d-{n}" for n in range(6_000)]
    assert any("cannot write" in r.getMessage() for r in caplog.records)


def _fill(exec_id: str, decision_id: str, **changes: object) -> FillRow:
    values: dict[str, object] = {
        "trade_date": DAY,
        "venue": "NASDAQ",
        "exec_id": exec_id,
        "account": "ACC-1",
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": 100,
        "price": Decimal("100.01"),
        "liquidity": "REMOVED",
        "transaction_time": T0,
        "received_at": T0,
        "decision_id": decision_id,
        "venue_fee": Decimal("0.30"),
    }
    values.update(changes)
    return FillRow(**values)  # type: ignore[arg-type]  # test-only keyword bag


async def test_linked_fills_then_as_they_stand_after_corrections_and_busts(
    recorder: tuple[RoutingDecisionRecorder, str], connection: asyncpg.Connection
) -> None:
    writer, url = recorder
    writer.record_decision(decision(1))
    writer.record_decision(decision(2, symbol="MSFT"))
    await writer.flush(10)
    journal = JournalWriter(url)
    task = asyncio.create_task(journal.run(), name="journal-writer")
    try:
        await journal.wait_available(10)
        for row in (
            _fill("E1", "d-1"),
            _fill("E2", "d-1", quantity=50, liquidity="ROUTED"),
            _fill("E3", "d-1", kind="CORRECTION", corrects_exec_id="E2", quantity=40),
            _fill("E4", "d-1", quantity=10),
            _fill("E5", "d-1", kind="BUST", corrects_exec_id="E4", quantity=10),
            _fill("E6", "d-2", symbol="MSFT"),
            _fill("E7", ""),
        ):
            await journal.record(row)
    finally:
        await _stop(task)

    fills = await fetch_linked_fills(connection, start=DAY, end=DAY, symbols=["AAPL"])
    assert fills == [
        LinkedFill("d-1", "NASDAQ", 100, Decimal("100.01"), "REMOVED", Decimal("0.30")),
        LinkedFill("d-1", "NASDAQ", 40, Decimal("100.01"), "REMOVED", Decimal("0.30")),
    ]
    every = await fetch_linked_fills(connection, start=DAY, end=DAY)
    assert {f.decision_id for f in every} == {"d-1", "d-2"}
