"""The hash chains reveal changed, deleted, inserted and reordered rows, whoever made them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from storage.audit import AuditProblem, verify
from storage.journal import JournalWriter
from storage.migrations import apply_migrations
from tests.storage.test_journal_writer import fill


@pytest.fixture
async def journal_url(database_url: str) -> AsyncIterator[str]:
    connection = await asyncpg.connect(database_url)
    await apply_migrations(connection)
    await connection.close()
    writer = JournalWriter(database_url)
    task = asyncio.create_task(writer.run())
    await writer.wait_available(10)
    for n in range(1, 21):  # sequentially: one batch each, so the rows are in a known order
        await writer.record(fill(n))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    yield database_url


async def _tamper_and_verify(url: str, *statements: str) -> tuple[bool, str, AuditProblem | None]:
    connection = await asyncpg.connect(url)
    try:
        # A superuser who switches the append-only triggers off for the session.
        await connection.execute("SET session_replication_role = replica")
        for statement in statements:
            await connection.execute(statement)
        await connection.execute("SET session_replication_role = DEFAULT")
        report = await verify(connection)
    finally:
        await connection.close()
    return report.valid, report.first_bad_row, report.problem


async def test_untouched_journal_then_valid(journal_url: str) -> None:
    connection = await asyncpg.connect(journal_url)
    try:
        report = await verify(connection)
    finally:
        await connection.close()
    assert (report.valid, report.rows_checked, report.chains_checked) == (True, 20, 1)


async def test_changed_price_then_that_row_named(journal_url: str) -> None:
    valid, row, problem = await _tamper_and_verify(
        journal_url, "UPDATE trade_fills SET price = price + 0.01 WHERE exec_id = 'E7'"
    )
    assert not valid and "E7" in row and problem is AuditProblem.ROW_CHANGED


async def test_changed_receive_time_then_that_row_named(journal_url: str) -> None:
    valid, row, _ = await _tamper_and_verify(
        journal_url,
        "UPDATE trade_fills SET received_at = received_at + interval '1 second' "
        "WHERE exec_id = 'E12'",
    )
    assert not valid and "E12" in row


async def test_deleted_row_then_the_row_after_the_gap_named(journal_url: str) -> None:
    valid, row, problem = await _tamper_and_verify(
        journal_url, "DELETE FROM trade_fills WHERE exec_id = 'E5'"
    )
    assert not valid and "E6" in row and problem is AuditProblem.ROW_MISSING


async def test_inserted_row_then_named(journal_url: str) -> None:
    valid, row, _ = await _tamper_and_verify(
        journal_url,
        "INSERT INTO trade_fills SELECT trade_date, venue, 'FORGED', sequence + 1000, chain_id, "
        "chain_seq, account, symbol, side, quantity, price, liquidity, transaction_time, "
        "received_at, client_order_id, decision_id, kind, corrects_exec_id, commission, "
        "venue_fee, sec_fee, finra_taf, prev_hash, row_hash FROM trade_fills WHERE exec_id = 'E9'",
    )
    assert not valid and ("FORGED" in row or "E9" in row)


async def test_swapped_rows_then_first_moved_row_named(journal_url: str) -> None:
    valid, row, _ = await _tamper_and_verify(
        journal_url,
        "UPDATE trade_fills SET chain_seq = -chain_seq WHERE exec_id IN ('E3', 'E4')",
        "UPDATE trade_fills SET chain_seq = 4 WHERE chain_seq = -3",
        "UPDATE trade_fills SET chain_seq = 3 WHERE chain_seq = -4",
    )
    assert not valid and "E4" in row


async def test_rows_of_an_unknown_chain_then_named(journal_url: str) -> None:
    valid, _, problem = await _tamper_and_verify(
        journal_url, "UPDATE trade_fills SET chain_id = 999 WHERE exec_id = 'E20'"
    )
    assert not valid and problem is AuditProblem.UNKNOWN_CHAIN


async def test_several_writers_then_each_chain_valid(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    await apply_migrations(connection)
    writers = [JournalWriter(database_url) for _ in range(3)]
    tasks = [asyncio.create_task(w.run()) for w in writers]
    for writer in writers:
        await writer.wait_available(10)
    await asyncio.gather(
        *(writers[n % 3].record(fill(n)) for n in range(300)),
        *(writers[(n + 1) % 3].record(fill(n)) for n in range(0, 300, 7)),  # retries elsewhere
    )
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    report = await verify(connection)
    count = await connection.fetchval("SELECT count(*) FROM trade_fills")
    await connection.close()
    assert report.valid and report.chains_checked == 3
    assert count == 300
