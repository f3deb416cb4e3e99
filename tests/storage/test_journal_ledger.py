"""The ledger around the journal (migration 0005): append-only runs and snapshots, and the views."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal

import asyncpg
import pytest

from gateway.domain.positions import CostMethod, Lot, Position
from gateway.domain.reconciliation import BreakKind, ReconciliationBreak
from gateway.domain.fills import FillKind, Liquidity
from gateway.domain.orders import Side
from storage.audit import domain_fill
from storage.fills import fetch_fill_rows, stream_fills
from storage.journal import JournalWriter
from storage.migrations import apply_migrations
from storage.reconciliation_runs import ReconciliationRun, store_run
from tests.storage.test_journal_writer import T0, _start, _stop, fill

TABLES = (
    "borrow_rates",
    "borrow_accruals",
    "reconciliation_runs",
    "reconciliation_breaks",
    "position_snapshots",
    "position_lots",
)


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    opened = await asyncpg.connect(database_url)
    await apply_migrations(opened)
    writer = JournalWriter(database_url)
    task = asyncio.create_task(writer.run())
    await writer.wait_available(10)
    await writer.record(fill(1))
    await writer.record(
        fill(2, side="SELL", quantity=40, price=Decimal("188.00"), venue_fee=Decimal(1))
    )
    await writer.record(fill(3, kind="BUST", corrects_exec_id="E2", side="SELL", quantity=40))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    try:
        yield opened
    finally:
        await opened.close()


def _run() -> ReconciliationRun:
    position = Position(
        "ACC-1",
        "AAPL",
        100,
        Decimal("18725"),
        Decimal(0),
        CostMethod.FIFO,
        T0,
        (Lot(100, Decimal("187.25"), T0),),
    )
    found = ReconciliationBreak(
        BreakKind.CASH_MISMATCH, "ACC-1", "", Decimal("-1"), Decimal("0"), Decimal("1"), ""
    )
    return ReconciliationRun(
        uuid.uuid4(), date(2026, 11, 24), datetime.now(UTC), 3, 1, 1, (found,), (position,)
    )


async def test_reconciliation_run_then_stored_with_breaks_snapshots_and_lots(
    connection: asyncpg.Connection,
) -> None:
    run = _run()
    await store_run(connection, run)
    counts = [
        await connection.fetchval(f"SELECT count(*) FROM {table} WHERE run_id = $1", run.run_id)
        for table in ("reconciliation_breaks", "position_snapshots", "position_lots")
    ]
    assert counts == [1, 1, 1]


@pytest.mark.parametrize("table", TABLES)
async def test_change_to_ledger_rows_then_refused_and_app_role_may_only_read_and_append(
    connection: asyncpg.Connection, table: str
) -> None:
    await store_run(connection, _run())
    await connection.execute(
        "INSERT INTO borrow_rates (symbol, effective, annual_rate) "
        "VALUES ('GME', '2026-11-01', 0.35)"
    )
    await connection.execute(
        "INSERT INTO borrow_accruals (accrual_date, account, symbol, short_quantity, mark_price, "
        "annual_rate, amount) VALUES ('2026-11-24', 'ACC-1', 'GME', 100, 20, 0.35, 0.019444)"
    )
    for statement in (f"DELETE FROM {table}", f"TRUNCATE {table} CASCADE"):
        with pytest.raises(asyncpg.PostgresError, match="immutable"):
            await connection.execute(statement)
    grants = [
        await connection.fetchval("SELECT has_table_privilege('execgw_app', $1, $2)", table, p)
        for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
    ]
    assert grants == [True, True, False, False, False]


async def test_views_then_busted_fill_left_out_and_costs_summed(
    connection: asyncpg.Connection,
) -> None:
    daily = await connection.fetch("SELECT * FROM vw_daily_pnl_summary")
    assert [(r["account"], r["fills"], r["gross_cash"]) for r in daily] == [
        ("ACC-1", 1, Decimal("-18725.000000"))
    ]
    corrections = await connection.fetch("SELECT * FROM vw_fill_corrections")
    assert [(r["exec_id"], r["corrects_exec_id"]) for r in corrections] == [("E3", "E2")]
    # Both views run over any date window (the fixture's fills are older than 30/90 days only
    # when the tests run after 2027).
    await connection.fetch("SELECT * FROM vw_venue_performance")
    await connection.fetch("SELECT * FROM vw_symbol_pnl")


async def test_fetch_fill_rows_then_journal_order_and_high_water(
    connection: asyncpg.Connection,
) -> None:
    rows, high_water = await fetch_fill_rows(connection, up_to=date(2026, 11, 24))
    assert [r.exec_id for r in rows] == ["E1", "E2", "E3"]
    assert high_water == await connection.fetchval("SELECT max(sequence) FROM trade_fills")
    assert await fetch_fill_rows(connection, up_to=date(2026, 11, 23)) == ([], 0)


async def test_stream_fills_then_every_record_as_its_row_reads_in_journal_order(
    database_url: str, connection: asyncpg.Connection
) -> None:
    """What a restart folds (only a fill's columns) is what the whole stored rows say."""
    writer, task = await _start(database_url)
    sides, flags = list(Side), list(Liquidity)
    for n in range(10, 10 + 2 * len(sides) * len(flags)):
        await writer.record(
            fill(
                n,
                side=sides[n % len(sides)].value,
                liquidity=flags[n % len(flags)].value,
                client_order_id=f"O{n}",
                decision_id=f"D{n}" if n % 2 else "",
                price=Decimal("0.5012") if n % 5 == 0 else Decimal("187.25"),
            )
        )
    await writer.record(fill(90, kind="CORRECTION", corrects_exec_id="E10", quantity=7))
    await _stop(task)

    streamed = [f async for f in stream_fills(connection)]
    rows, _ = await fetch_fill_rows(connection)
    assert streamed == [domain_fill(row) for row in rows]
    assert {f.side for f in streamed} == set(sides)
    assert {f.liquidity for f in streamed} == set(flags)
    assert {f.kind for f in streamed} == {FillKind.NEW, FillKind.BUST, FillKind.CORRECTION}
    assert streamed[-1].corrects_exec_id == "E10" and streamed[-1].quantity == 7
