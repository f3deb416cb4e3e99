"""The journal writer against a real PostgreSQL: durable, idempotent, append-only, chained."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from storage import audit
from storage.audit import GENESIS_HASH
from storage.embedded import EmbeddedPostgres
from storage.journal import (
    FillConflict,
    FillRow,
    JournalUnavailable,
    JournalWriter,
    StoredFill,
)
from tests.conftest import migrated

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def fill(n: int, **changes: object) -> FillRow:
    values: dict[str, object] = {
        "trade_date": date(2026, 11, 24),
        "venue": "NASDAQ",
        "exec_id": f"E{n}",
        "account": "ACC-1",
        "symbol": "AAPL",
        "side": "BUY",
        "quantity": 100,
        "price": Decimal("187.25"),
        "liquidity": "REMOVED",
        "transaction_time": T0 + timedelta(milliseconds=n),
        "received_at": T0 + timedelta(milliseconds=n, microseconds=50),
    }
    values.update(changes)
    return FillRow(**values)  # type: ignore[arg-type]  # test-only keyword bag


async def _start(url: str, **options: object) -> tuple[JournalWriter, asyncio.Task[None]]:
    writer = JournalWriter(url, **options)  # type: ignore[arg-type]
    task = asyncio.create_task(writer.run(), name="journal-writer")
    await writer.wait_available(10)
    return writer, task


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.fixture
async def journal(database_url: str) -> AsyncIterator[tuple[JournalWriter, str]]:
    await migrated(database_url)
    writer, task = await _start(database_url)
    try:
        yield writer, database_url
    finally:
        await _stop(task)


async def _rows(url: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetch("SELECT * FROM trade_fills ORDER BY chain_id, chain_seq")
    finally:
        await connection.close()


def _assert_chains_valid(rows: list[asyncpg.Record]) -> None:
    previous: dict[int, tuple[int, bytes]] = {}
    for row in rows:
        seq, prev_hash = previous.get(row["chain_id"], (0, GENESIS_HASH))
        assert row["chain_seq"] == seq + 1
        assert row["prev_hash"] == prev_hash
        previous[row["chain_id"]] = (row["chain_seq"], row["row_hash"])


async def test_record_fill_then_committed_with_sequence_and_chain_link(
    journal: tuple[JournalWriter, str],
) -> None:
    writer, url = journal
    stored = await writer.record(fill(1))
    assert not stored.duplicate and stored.chain_seq == 1
    rows = await _rows(url)
    assert len(rows) == 1
    assert rows[0]["sequence"] == stored.sequence
    assert rows[0]["prev_hash"] == GENESIS_HASH
    expected = audit.link(GENESIS_HASH, fill(1), stored.sequence, stored.chain_id, 1)
    assert rows[0]["row_hash"] == expected == stored.row_hash
    assert rows[0]["price"] == Decimal("187.25")


async def test_same_fill_again_then_original_acknowledgement_marked_duplicate(
    journal: tuple[JournalWriter, str],
) -> None:
    writer, url = journal
    first = await writer.record(fill(1))
    again = await writer.record(fill(1, received_at=T0 + timedelta(seconds=9)))
    assert again.duplicate and again.sequence == first.sequence
    assert again.row.received_at == first.row.received_at
    assert len(await _rows(url)) == 1


async def test_same_fill_twice_in_one_batch_then_stored_once(
    journal: tuple[JournalWriter, str],
) -> None:
    writer, url = journal
    results = await asyncio.gather(*(writer.record(fill(7)) for _ in range(5)))
    assert len({r.sequence for r in results}) == 1
    assert sum(not r.duplicate for r in results) == 1
    assert len(await _rows(url)) == 1


async def test_same_id_different_content_then_conflict_and_stored_fill_untouched(
    journal: tuple[JournalWriter, str],
) -> None:
    writer, url = journal
    await writer.record(fill(1))
    with pytest.raises(FillConflict, match="price"):
        await writer.record(fill(1, price=Decimal("187.26")))
    rows = await _rows(url)
    assert [r["price"] for r in rows] == [Decimal("187.25")]


async def test_duplicates_mixed_into_a_batch_then_new_fills_still_written(
    journal: tuple[JournalWriter, str],
) -> None:
    writer, url = journal
    await asyncio.gather(*(writer.record(fill(n)) for n in range(10)))
    mixed = await asyncio.gather(
        *(writer.record(fill(n)) for n in range(5, 15)),
        writer.record(fill(3, quantity=5)),
        return_exceptions=True,
    )
    assert isinstance(mixed[-1], FillConflict)
    stored = [r for r in mixed[:-1] if isinstance(r, StoredFill)]
    assert [r.duplicate for r in stored] == [True] * 5 + [False] * 5
    rows = await _rows(url)
    assert len(rows) == 15
    _assert_chains_valid(rows)


async def test_many_concurrent_fills_then_all_acknowledged_once_with_valid_chain(
    journal: tuple[JournalWriter, str],
) -> None:
    writer, url = journal
    results = await asyncio.gather(*(writer.record(fill(n)) for n in range(2000)))
    assert len({r.sequence for r in results}) == 2000
    assert writer.batches_written < 2000  # grouped, not one commit per fill
    rows = await _rows(url)
    assert len(rows) == 2000
    _assert_chains_valid(rows)


async def test_fills_in_two_months_then_each_lands_in_its_partition(
    journal: tuple[JournalWriter, str],
) -> None:
    writer, url = journal
    await writer.record(fill(1))
    await writer.record(fill(2, trade_date=date(2026, 12, 1)))
    connection = await asyncpg.connect(url)
    try:
        partitions = await connection.fetch(
            "SELECT tableoid::regclass::text AS part, count(*) "
            "FROM trade_fills GROUP BY 1 ORDER BY 1"
        )
    finally:
        await connection.close()
    assert [(p["part"], p["count"]) for p in partitions] == [
        ("trade_fills_2026_11", 1),
        ("trade_fills_2026_12", 1),
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE trade_fills SET price = 1",
        "DELETE FROM trade_fills",
        "TRUNCATE trade_fills",
        "TRUNCATE trade_fills_2026_11",
        "DELETE FROM trade_fills_2026_11",
        "UPDATE journal_chains SET pid = 0",
    ],
)
async def test_change_to_journal_rows_then_refused_even_for_the_owner(
    journal: tuple[JournalWriter, str], statement: str
) -> None:
    writer, url = journal
    await writer.record(fill(1))
    connection = await asyncpg.connect(url)
    try:
        with pytest.raises(asyncpg.PostgresError, match="immutable"):
            await connection.execute(statement)
        assert await connection.fetchval("SELECT count(*) FROM trade_fills") == 1
    finally:
        await connection.close()


async def test_application_role_then_may_only_read_and_append(
    journal: tuple[JournalWriter, str],
) -> None:
    _, url = journal
    connection = await asyncpg.connect(url)
    try:
        privileges = {
            p: await connection.fetchval(
                "SELECT has_table_privilege('execgw_app', 'trade_fills', $1)", p
            )
            for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
        }
    finally:
        await connection.close()
    assert privileges == {
        "SELECT": True,
        "INSERT": True,
        "UPDATE": False,
        "DELETE": False,
        "TRUNCATE": False,
    }


async def test_database_unreachable_then_record_refused_as_unavailable(database_url: str) -> None:
    await migrated(database_url)
    writer, task = await _start(database_url)
    await _stop(task)
    with pytest.raises(JournalUnavailable):
        await writer.record(fill(1))


# --- crash: PostgreSQL killed under load --------------------------------------------------------


class _CrashablePostgres:
    """An embedded server of the test's own, which the test may kill and restart."""

    def __init__(self, folder: Path) -> None:
        self.server = EmbeddedPostgres(folder / "data")

    def start(self) -> str:
        return self.server.start()

    def crash(self) -> None:
        from pgserver._commands import pg_ctl

        handle = self.server._server  # the pgserver handle; test-only access
        # Immediate mode: no checkpoint, connections dropped; restart replays the WAL.
        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=handle.pgdata, user=handle.system_user)

    def restart(self) -> None:
        handle = self.server._server
        with handle._lock:
            handle.ensure_postgres_running()

    def stop(self) -> None:
        self.server.stop()


@pytest.mark.slow
async def test_postgres_killed_under_load_then_every_acknowledged_fill_survives() -> None:
    with tempfile.TemporaryDirectory(prefix="execgw-crash-") as folder:
        postgres = _CrashablePostgres(Path(folder))
        url = await asyncio.to_thread(postgres.start)
        try:
            await migrated(url)
            writer, task = await _start(url, retry_delay=0.1, connect_timeout=2.0)
            acknowledged: list[StoredFill] = []
            refused = 0
            stop = asyncio.Event()

            async def producer(worker: int) -> None:
                nonlocal refused
                n = 0
                while not stop.is_set():
                    n += 1
                    try:
                        acknowledged.append(await writer.record(fill(worker * 1_000_000 + n)))
                    except JournalUnavailable:
                        refused += 1
                        await asyncio.sleep(0.01)

            producers = [asyncio.create_task(producer(w)) for w in range(32)]
            await asyncio.sleep(1.0)
            before_crash = len(acknowledged)
            await asyncio.to_thread(postgres.crash)
            await asyncio.sleep(0.5)
            await asyncio.to_thread(postgres.restart)
            await writer.wait_available(20)
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.gather(*producers)
            await _stop(task)

            rows = await _rows(url)
            stored = {(r["venue"], r["exec_id"]) for r in rows}
            missing = [a for a in acknowledged if (a.row.venue, a.row.exec_id) not in stored]
            assert before_crash > 100 and len(acknowledged) > before_crash, "load did not run"
            assert refused > 0, "the crash was not noticed"
            assert missing == []
            assert len(rows) >= len(acknowledged)
            _assert_chains_valid(rows)
        finally:
            await asyncio.to_thread(postgres.stop)
