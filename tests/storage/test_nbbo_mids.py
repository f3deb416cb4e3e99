"""NBBO mid history on a real PostgreSQL: batched, read back by window, append-only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest

from gateway.domain.mid_history import MidHistory
from storage.nbbo_mids import MidRow, NbboMidRecorder, fetch_mids
from tests.conftest import migrated
from tests.storage import test_market_events as market_events
from tests.storage.test_market_events import _start, _stop

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)

connection = market_events.connection


@pytest.fixture
async def recorder(database_url: str) -> AsyncIterator[NbboMidRecorder]:
    await migrated(database_url)
    started = NbboMidRecorder(database_url, retry_delay=0.05)
    task = _start(started)
    await started.wait_available(10)
    try:
        yield started
    finally:
        await _stop(task)


def mid(symbol: str, seconds: int, value: str) -> MidRow:
    return MidRow(symbol, T0 + timedelta(seconds=seconds), Decimal(value))


async def test_mids_recorded_then_window_read_back_with_the_mid_before_it(
    recorder: NbboMidRecorder, connection: asyncpg.Connection
) -> None:
    rows = [
        mid("AAPL", 0, "100.00"),
        mid("AAPL", 10, "100.02"),
        mid("MSFT", 5, "400.005"),
        mid("AAPL", 60, "100.05"),
        mid("AAPL", 120, "100.10"),
    ]
    for row in rows:
        recorder.record_mid(row)
    await recorder.flush(10)
    assert recorder.batches_written <= 2
    found = await fetch_mids(
        connection,
        symbols=["AAPL"],
        since=T0 + timedelta(seconds=30),
        until=T0 + timedelta(seconds=60),
    )
    # The mid in force when the window opens (100.02 from 10 s), then the window's own.
    assert found == [rows[1], rows[3]]
    history = MidHistory(((r.symbol, r.at, r.mid) for r in found), as_of=T0 + timedelta(seconds=90))
    assert history.mid_at("AAPL", T0 + timedelta(seconds=59)) == Decimal("100.02")
    assert history.mid_at("AAPL", T0 + timedelta(seconds=60)) == Decimal("100.05")
    # After as_of the mid is not known yet, whatever was recorded before.
    assert history.mid_at("AAPL", T0 + timedelta(seconds=91)) is None
    assert history.mid_at("MSFT", T0 + timedelta(seconds=59)) is None
    assert await fetch_mids(connection, symbols=[], since=T0, until=T0) == []


@pytest.mark.parametrize(
    "statement",
    ["UPDATE nbbo_mids SET mid = 1", "DELETE FROM nbbo_mids", "TRUNCATE nbbo_mids"],
)
@pytest.mark.parametrize("role", ["owner", "execgw_app"])
async def test_change_to_recorded_mid_then_refused_for_owner_and_application_role(
    recorder: NbboMidRecorder, connection: asyncpg.Connection, statement: str, role: str
) -> None:
    recorder.record_mid(mid("AAPL", 0, "100.00"))
    await recorder.flush(10)
    if role != "owner":
        await connection.execute(f"SET ROLE {role}")
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=r"immutable|permission denied"):
        await connection.execute(statement)
    assert await connection.fetchval("SELECT count(*) FROM nbbo_mids") == 1
