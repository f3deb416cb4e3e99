"""The market event recorder on a real PostgreSQL: exact, append-only, outage-proof, bounded."""

from __future__ import annotations

import asyncio
import os
import urllib.parse
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import asyncpg
import pytest

from storage.errors import DatabaseUnavailable
from storage.market_events import (
    APPLICATION_NAME,
    MarketEventKind,
    MarketEventRecorder,
    MarketStateEvent,
    PretradeRefusal,
    PretradeRpc,
    ShortSaleRecord,
    fetch_events,
    fetch_refusals,
    load_short_sale_restrictions,
)
from tests.conftest import migrated, with_database

T0 = datetime(2026, 11, 24, 14, 30, tzinfo=UTC)
DAY = date(2026, 11, 24)
TABLES = ("market_state_events", "pretrade_refusals", "short_sale_restrictions")


def event(n: int, **changes: object) -> MarketStateEvent:
    values: dict[str, object] = {
        "occurred_at": T0 + timedelta(milliseconds=n),
        "trade_date": DAY,
        "symbol": "AAPL",
        "kind": MarketEventKind.PAUSE,
        "reason_code": "LUDP",
        "venue": "NASDAQ",
        "detail": {"n": str(n)},
    }
    values.update(changes)
    return MarketStateEvent(**values)  # type: ignore[arg-type]  # test-only keyword bag


def refusal(n: int, **changes: object) -> PretradeRefusal:
    values: dict[str, object] = {
        "decided_at": T0 + timedelta(microseconds=n),
        "trade_date": DAY,
        "client_order_id": f"C{n}",
        "account": "ACC-1",
        "symbol": "AAPL",
        "side": "SELL_SHORT",
        "order_type": "LIMIT",
        "quantity": 100,
        "limit_price": Decimal("187.2500"),
        "reason_codes": ("LULD_PAUSE", "SHORT_SALE_RESTRICTED"),
        "restrictions": ("NO_SHORT_BELOW_BID",),
        "phase": "PAUSED",
        "rpc": PretradeRpc.CHECK_ORDER,
    }
    values.update(changes)
    return PretradeRefusal(**values)  # type: ignore[arg-type]  # test-only keyword bag


def short_sale(symbol: str = "XYZ", **changes: object) -> ShortSaleRecord:
    values: dict[str, object] = {
        "symbol": symbol,
        "triggered_on": date(2026, 11, 20),  # a Friday
        "restricted_until": date(2026, 11, 23),  # the following Monday
        "trigger_price": Decimal("9.0000"),
        "triggered_at": datetime(2026, 11, 20, 15, 1, 2, 345678, tzinfo=UTC),
    }
    values.update(changes)
    return ShortSaleRecord(**values)  # type: ignore[arg-type]  # test-only keyword bag


def _start(recorder: MarketEventRecorder) -> asyncio.Task[None]:
    return asyncio.create_task(recorder.run(), name="market-event-recorder")


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.fixture
async def recorder(database_url: str) -> AsyncIterator[tuple[MarketEventRecorder, str]]:
    await migrated(database_url)
    started = MarketEventRecorder(database_url, retry_delay=0.05)
    task = _start(started)
    await started.wait_available(10)
    try:
        yield started, database_url
    finally:
        await _stop(task)


@pytest.fixture
async def connection(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    opened = await asyncpg.connect(database_url)
    try:
        yield opened
    finally:
        await opened.close()


async def _count(url: str, table: str) -> int:
    connection = await asyncpg.connect(url)
    try:
        return int(await connection.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await connection.close()


async def _event_numbers(url: str) -> list[int]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT detail->>'n' AS n FROM market_state_events ORDER BY id"
        )
    finally:
        await connection.close()
    return [int(r["n"]) for r in rows]


async def test_events_and_refusals_recorded_then_read_back_exactly(
    recorder: tuple[MarketEventRecorder, str], connection: asyncpg.Connection
) -> None:
    writer, _ = recorder
    new_york = ZoneInfo("America/New_York")
    events = [
        event(1, kind=MarketEventKind.HALT, reason_code="T1", detail={"resumes": "10:05"}),
        event(2, kind="PAUSE_INFERRED", reason_code="", venue="", detail={}),
        event(
            3,
            occurred_at=datetime(2026, 11, 24, 9, 40, 0, 123456, tzinfo=new_york),
            symbol="",
            kind=MarketEventKind.CIRCUIT_BREAKER,
            reason_code="MWCB_LEVEL_1",
            detail={"level": "1", "index": "SPX"},
        ),
    ]
    refusals = [refusal(1), refusal(2, limit_price=None, restrictions=(), account="ACC-2")]
    for e in events:
        writer.record_event(e)
    for r in refusals:
        writer.record_refusal(r)
    await writer.flush(10)

    read = await fetch_events(connection)
    assert read == sorted(events, key=lambda e: e.occurred_at)
    assert all(e.occurred_at.utcoffset() is not None for e in read)
    assert await fetch_refusals(connection) == refusals
    stored = await fetch_refusals(connection, account="ACC-1")
    assert [r.limit_price for r in stored] == [Decimal("187.2500")]
    assert str(stored[0].limit_price) == "187.2500"
    assert stored[0].reason_codes == ("LULD_PAUSE", "SHORT_SALE_RESTRICTED")
    assert writer.written == 5 and writer.queued == 0 and writer.dropped == 0


async def test_fetch_events_with_filters_then_only_matching_events(
    recorder: tuple[MarketEventRecorder, str], connection: asyncpg.Connection
) -> None:
    writer, _ = recorder
    writer.record_event(event(1, kind=MarketEventKind.HALT))
    writer.record_event(event(2, symbol="MSFT", kind=MarketEventKind.LIMIT_STATE))
    writer.record_event(event(3, kind=MarketEventKind.RESUME))
    await writer.flush(10)
    assert [e.detail["n"] for e in await fetch_events(connection, symbol="AAPL")] == ["1", "3"]
    since = await fetch_events(connection, since=T0 + timedelta(milliseconds=2))
    assert [e.detail["n"] for e in since] == ["2", "3"]
    kinds = [MarketEventKind.HALT, MarketEventKind.LIMIT_STATE]
    assert [e.kind for e in await fetch_events(connection, kinds=kinds)] == kinds
    assert await fetch_refusals(connection, symbol="MSFT") == []


def test_invalid_values_then_refused_when_built_not_when_written() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        event(1, occurred_at=datetime(2026, 11, 24, 14, 30))
    with pytest.raises(ValueError, match="known kind"):
        event(1, kind="HALTED")
    with pytest.raises(ValueError, match="reason code"):
        refusal(1, reason_codes=())
    with pytest.raises(ValueError, match="known rpc"):
        refusal(1, rpc="Check")
    with pytest.raises(ValueError, match="timezone-aware"):
        refusal(1, decided_at=datetime(2026, 11, 24, 14, 30))
    with pytest.raises(ValueError, match="on or after"):
        short_sale(restricted_until=date(2026, 11, 19))


def test_event_detail_then_immutable_copy() -> None:
    detail = {"level": "1"}
    recorded = event(1, detail=detail)
    detail["level"] = "2"
    assert recorded.detail == {"level": "1"}
    with pytest.raises(TypeError):
        recorded.detail["level"] = "3"  # type: ignore[index]  # the point of the test
    assert hash(recorded) == hash(event(1, detail={"other": "x"}))


async def test_short_sale_triggered_friday_then_in_force_through_monday_after_restart(
    recorder: tuple[MarketEventRecorder, str], connection: asyncpg.Connection
) -> None:
    writer, _ = recorder
    writer.record_short_sale(short_sale())
    writer.record_short_sale(short_sale("ABC", triggered_on=date(2026, 11, 23)))
    await writer.flush(10)
    # A restart: a new process knows only what the database holds.
    restrictions = {
        day: await load_short_sale_restrictions(connection, date(2026, 11, day))
        for day in (19, 20, 23, 24)
    }
    assert restrictions == {
        19: {},
        20: {"XYZ": date(2026, 11, 23)},
        23: {"XYZ": date(2026, 11, 23), "ABC": date(2026, 11, 23)},
        24: {},
    }


async def test_short_sale_recorded_twice_then_stored_once_with_first_price(
    recorder: tuple[MarketEventRecorder, str], connection: asyncpg.Connection
) -> None:
    writer, url = recorder
    writer.record_short_sale(short_sale())
    await writer.flush(10)
    writer.record_short_sale(short_sale(trigger_price=Decimal("8.50")))
    writer.record_short_sale(short_sale(trigger_price=Decimal("8.40")))
    await writer.flush(10)
    other = MarketEventRecorder(url)  # another process, or this one after a restart
    task = _start(other)
    other.record_short_sale(short_sale(trigger_price=Decimal("8.30")))
    await other.flush(10)
    await _stop(task)
    rows = await connection.fetch("SELECT * FROM short_sale_restrictions")
    assert [(r["symbol"], r["trigger_price"]) for r in rows] == [("XYZ", Decimal("9.0000"))]
    assert rows[0]["triggered_at"] == short_sale().triggered_at


@pytest.mark.parametrize("table", TABLES)
@pytest.mark.parametrize(
    "statement", ["UPDATE {} SET symbol = 'X'", "DELETE FROM {}", "TRUNCATE {}"]
)
@pytest.mark.parametrize("role", ["owner", "execgw_app"])
async def test_change_to_recorded_rows_then_refused_for_owner_and_application_role(
    recorder: tuple[MarketEventRecorder, str],
    connection: asyncpg.Connection,
    table: str,
    statement: str,
    role: str,
) -> None:
    writer, _ = recorder
    writer.record_event(event(1))
    writer.record_refusal(refusal(1))
    writer.record_short_sale(short_sale())
    await writer.flush(10)
    if role != "owner":
        await connection.execute(f"SET ROLE {role}")
    # The owner is stopped by the triggers, the application role already by its grants.
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match=r"immutable|permission denied"):
        await connection.execute(statement.format(table))
    assert await connection.fetchval(f"SELECT count(*) FROM {table}") == 1


async def test_application_role_then_may_only_read_and_append(
    recorder: tuple[MarketEventRecorder, str], connection: asyncpg.Connection
) -> None:
    privileges = {
        (table, p): await connection.fetchval(
            "SELECT has_table_privilege('execgw_app', $1, $2)", table, p
        )
        for table in TABLES
        for p in ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
    }
    assert {key for key, granted in privileges.items() if granted} == {
        (table, p) for table in TABLES for p in ("SELECT", "INSERT")
    }


class _Outage:
    """Cut the recorder off its database and refuse new connections until ``end()``."""

    def __init__(self, postgres_url: str, url: str) -> None:
        self._postgres_url = postgres_url
        self._name = urllib.parse.urlsplit(url).path.lstrip("/")

    async def begin(self) -> None:
        self._admin = await asyncpg.connect(self._postgres_url)
        await self._admin.execute(f'ALTER DATABASE "{self._name}" ALLOW_CONNECTIONS false')
        await self._admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND application_name = $2",
            self._name,
            APPLICATION_NAME,
        )

    async def end(self) -> None:
        await self._admin.execute(f'ALTER DATABASE "{self._name}" ALLOW_CONNECTIONS true')
        await self._admin.close()


async def test_database_refuses_connections_then_rows_stay_queued_and_written_after_reconnect(
    recorder: tuple[MarketEventRecorder, str], postgres_url: str
) -> None:
    writer, url = recorder
    outage = _Outage(postgres_url, url)
    await outage.begin()
    try:
        for n in range(100):
            writer.record_event(event(n))
            writer.record_refusal(refusal(n))
        writer.record_short_sale(short_sale())
        with pytest.raises(DatabaseUnavailable, match="unwritten"):
            await writer.flush(0.5)
        assert not writer.available
        assert writer.queued == 201
    finally:
        await outage.end()
    await writer.flush(10)
    assert writer.available and writer.queued == 0
    assert await _event_numbers(url) == list(range(100))
    assert await _count(url, "pretrade_refusals") == 100
    assert await _count(url, "short_sale_restrictions") == 1


async def test_outage_longer_than_the_bound_then_newest_rows_written_and_oldest_counted(
    database_url: str, postgres_url: str
) -> None:
    await migrated(database_url)
    writer = MarketEventRecorder(database_url, max_queued=50, retry_delay=0.05)
    task = _start(writer)
    outage = _Outage(postgres_url, database_url)
    try:
        await writer.wait_available(10)
        for n in range(10):
            writer.record_event(event(n))
        await asyncio.sleep(0)  # the writer takes these and may be cut off writing them
        await outage.begin()
        for n in range(10, 210):
            writer.record_event(event(n))
        await asyncio.sleep(0.2)
        await outage.end()
        await writer.flush(10)
    finally:
        await _stop(task)
    numbers = await _event_numbers(database_url)
    assert numbers[-50:] == list(range(160, 210))
    assert sorted(set(numbers)) == numbers
    assert len(numbers) + writer.dropped == 210


async def test_database_missing_at_start_then_rows_written_once_it_exists(
    postgres_url: str,
) -> None:
    name = f"execgw_test_late_{os.getpid()}"
    url = with_database(postgres_url, name)
    writer = MarketEventRecorder(url, retry_delay=0.05, connect_timeout=2.0)
    task = _start(writer)
    admin = await asyncpg.connect(postgres_url)
    try:
        writer.record_event(event(1))
        await asyncio.sleep(0.2)
        assert not writer.available and writer.queued == 1
        await admin.execute(f'CREATE DATABASE "{name}"')
        await migrated(url)
        await writer.flush(10)
        assert await _event_numbers(url) == [1]
        await _stop(task)
    finally:
        task.cancel()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_backend_killed_repeatedly_under_load_then_every_row_written_exactly_once(
    recorder: tuple[MarketEventRecorder, str], caplog: pytest.LogCaptureFixture
) -> None:
    writer, url = recorder
    admin = await asyncpg.connect(url)
    try:
        for n in range(20_000):
            writer.record_event(event(n))
            if n % 250 == 0:
                await asyncio.sleep(0)  # the writer takes what queued so far
            if n % 5_000 == 2_500:
                await admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = $1",
                    APPLICATION_NAME,
                )
            if n % 5_000 == 4_999:
                await writer.flush(30)
    finally:
        await admin.close()
    outages = [r for r in caplog.records if "cannot write" in r.getMessage()]
    assert len(outages) == 4
    assert await _event_numbers(url) == list(range(20_000))
    assert writer.written == 20_000 and writer.dropped == 0


class _CuttingProxy:
    """A TCP proxy to the test server that can cut the client off right after forwarding a
    message containing ``cut_after``, before any answer: the client cannot know what happened."""

    def __init__(self, target_url: str) -> None:
        self._target = urllib.parse.urlsplit(target_url)
        self._socket_dir = urllib.parse.parse_qs(self._target.query).get("host", [""])[0]
        self.cut_after = b""
        self.cuts = self.connections = 0

    async def start(self) -> str:
        """Start listening; return the URL that goes through the proxy."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        user = self._target.netloc.rpartition("@")[0]
        return f"postgresql://{user}@127.0.0.1:{port}{self._target.path}"

    async def _handle(self, client: asyncio.StreamReader, to_client: asyncio.StreamWriter) -> None:
        self.connections += 1
        port = self._target.port or 5432
        if self._socket_dir:
            server, to_server = await asyncio.open_unix_connection(
                f"{self._socket_dir}/.s.PGSQL.{port}"
            )
        else:
            server, to_server = await asyncio.open_connection(self._target.hostname, port)
        await asyncio.gather(
            self._pump(client, to_server, to_client), self._pump(server, to_client)
        )

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        cut: asyncio.StreamWriter | None = None,
    ) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
                if cut is not None and self.cut_after and self.cut_after in data:
                    self.cut_after, self.cuts = b"", self.cuts + 1
                    cut.transport.abort()
                    await asyncio.sleep(0.5)  # the server still gets to act on the message
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            writer.transport.abort()

    async def stop(self) -> None:
        self._server.close()


@pytest.mark.parametrize(
    "cut_after",
    [
        pytest.param(b"txid_current", id="transaction-id-unknown"),
        pytest.param(b"market_state_events", id="mid-copy-not-committed"),
        pytest.param(b"COMMIT", id="commit-sent-answer-lost"),
    ],
)
async def test_connection_cut_mid_batch_then_batch_written_exactly_once(
    database_url: str, cut_after: bytes
) -> None:
    await migrated(database_url)
    proxy = _CuttingProxy(database_url)
    writer = MarketEventRecorder(await proxy.start(), retry_delay=0.05)
    task = _start(writer)
    try:
        await writer.wait_available(10)
        proxy.cut_after = cut_after
        for n in range(100):
            writer.record_event(event(n))
        await writer.flush(10)
    finally:
        await _stop(task)
        await proxy.stop()
    assert (proxy.cuts, proxy.connections) == (1, 2)
    assert await _event_numbers(database_url) == list(range(100))
    assert writer.written == 100


async def test_queue_over_its_bound_then_oldest_dropped_and_counted(database_url: str) -> None:
    await migrated(database_url)
    writer = MarketEventRecorder(database_url, max_queued=5)
    for n in range(8):
        writer.record_event(event(n))
    writer.record_short_sale(short_sale())  # never dropped
    assert (writer.dropped, writer.queued) == (3, 6)
    task = _start(writer)
    await writer.flush(10)
    await _stop(task)
    assert await _event_numbers(database_url) == [3, 4, 5, 6, 7]
    assert await _count(database_url, "short_sale_restrictions") == 1
    assert (writer.written, writer.dropped) == (6, 3)


async def test_row_refused_by_postgres_then_dropped_alone_and_rest_of_batch_written(
    recorder: tuple[MarketEventRecorder, str], connection: asyncpg.Connection
) -> None:
    writer, url = recorder
    writer.record_event(event(1))
    writer.record_event(event(2, symbol="BAD\x00"))  # text cannot hold NUL: SQLSTATE 22021
    writer.record_event(event(3))
    writer.record_refusal(refusal(4))
    writer.record_refusal(refusal(5, quantity=2**63))  # beyond bigint: refused by asyncpg itself
    writer.record_short_sale(short_sale("BAD\x00"))
    writer.record_short_sale(short_sale())
    await writer.flush(10)
    assert await _event_numbers(url) == [1, 3]
    assert [r.client_order_id for r in await fetch_refusals(connection)] == ["C4"]
    assert await load_short_sale_restrictions(connection, date(2026, 11, 20)) == {
        "XYZ": date(2026, 11, 23)
    }
    assert (writer.written, writer.rejected, writer.queued) == (4, 3, 0)
    assert writer.available


async def test_cancelled_with_rows_queued_then_final_flush_writes_them_and_cancel_propagates(
    database_url: str,
) -> None:
    await migrated(database_url)
    writer = MarketEventRecorder(database_url)
    task = _start(writer)
    await writer.wait_available(10)
    for n in range(1000):
        writer.record_event(event(n))
        writer.record_refusal(refusal(n))
    await _stop(task)  # before the writer took anything
    assert writer.queued == 0
    assert await _event_numbers(database_url) == list(range(1000))
    assert await _count(database_url, "pretrade_refusals") == 1000


async def test_cancelled_while_database_unreachable_then_stops_in_time_and_cancel_propagates() -> (
    None
):
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # a server that accepts and never answers: connecting hangs

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    writer = MarketEventRecorder(
        f"postgresql://nobody@127.0.0.1:{port}/none", final_flush_timeout=0.3
    )
    task = _start(writer)
    writer.record_event(event(1))
    await asyncio.sleep(0.1)
    started = asyncio.get_running_loop().time()
    try:
        await _stop(task)
    finally:
        server.close()
    assert asyncio.get_running_loop().time() - started < 2.0
    assert writer.queued == 1 and not writer.available
