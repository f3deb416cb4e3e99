"""Market state events, pre-trade refusals and Reg SHO 201 restrictions, recorded for compliance.

The hot path (a pre-trade check of ~10 us) hands each record to ``MarketEventRecorder.record_*``:
a synchronous O(1) append to an in-memory queue; no I/O, never blocks. One owned task (``run()``)
writes whatever queued since its last write in one transaction: one COPY per table, and an
INSERT ... ON CONFLICT DO NOTHING for the few short-sale restrictions (idempotent per symbol and
day). A batch notes its transaction id; when the connection fails with a batch in flight, the
writer asks after reconnecting (``txid_status``) whether it committed and writes it again only if
not, so no row is lost or doubled. A row PostgreSQL refuses (SQLSTATE class 22 or 23) is retried
alone so it cannot sink its batch, then dropped, logged with its content and counted in
``rejected``.

Bounded, oldest dropped first: while PostgreSQL is unreachable rows stay queued (``available`` is
False) and are written after reconnecting, up to ``max_queued`` rows. Beyond that the oldest are
dropped, counted in ``dropped`` and logged once per episode: the hot path must never block nor
fail and memory must not grow without bound, and the newest rows describe the state the gateway
acts on now. Short-sale restrictions are never dropped: there is at most one per symbol and day,
and losing one would lift a restriction at the next restart.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

import asyncpg

from storage.errors import DatabaseUnavailable
from storage.journal import APP_ROLE

log = logging.getLogger(__name__)

APPLICATION_NAME = "execgw-market-events"


class MarketEventKind(StrEnum):
    HALT = "HALT"
    RESUME = "RESUME"
    PAUSE = "PAUSE"
    PAUSE_INFERRED = "PAUSE_INFERRED"
    LIMIT_STATE = "LIMIT_STATE"
    STRADDLE = "STRADDLE"
    CIRCUIT_BREAKER = "CIRCUIT_BREAKER"
    SHORT_SALE_RESTRICTION = "SHORT_SALE_RESTRICTION"
    OPERATIONAL_HALT = "OPERATIONAL_HALT"
    OPERATIONAL_RESUME = "OPERATIONAL_RESUME"
    AUCTION_PHASE = "AUCTION_PHASE"
    BAND_SOURCE = "BAND_SOURCE"


class PretradeRpc(StrEnum):
    CHECK_ORDER = "CheckOrder"
    SUBMIT_ORDER = "SubmitOrder"


_KINDS, _RPCS = frozenset(MarketEventKind), frozenset(PretradeRpc)
_NO_DETAIL: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class MarketStateEvent:
    """A change of market state the gateway saw or inferred; ``symbol`` is '' when market-wide.

    ``kind`` is a ``MarketEventKind`` value; ``detail`` is kept as a read-only copy with string
    values, so the event stays immutable and always encodes as JSON.
    """

    occurred_at: datetime
    trade_date: date
    symbol: str
    kind: str
    reason_code: str = ""
    venue: str = ""
    detail: Mapping[str, str] = field(default_factory=lambda: _NO_DETAIL, hash=False)

    def __post_init__(self) -> None:
        if self.occurred_at.tzinfo is None or self.kind not in _KINDS:
            raise ValueError(f"an event needs a timezone-aware time and a known kind: {self!r}")
        if self.detail is not _NO_DETAIL:
            detail = MappingProxyType({str(k): str(v) for k, v in self.detail.items()})
            object.__setattr__(self, "detail", detail)


@dataclass(frozen=True, slots=True)
class PretradeRefusal:
    """A pre-trade check that said no, with every reason; ``rpc`` is a ``PretradeRpc`` value."""

    decided_at: datetime
    trade_date: date
    client_order_id: str
    account: str
    symbol: str
    side: str
    order_type: str
    quantity: int
    limit_price: Decimal | None
    reason_codes: tuple[str, ...]
    restrictions: tuple[str, ...]
    phase: str
    rpc: str

    def __post_init__(self) -> None:
        # Cheap checks only (built on the hot path): a bad row fails here, at its caller.
        if self.decided_at.tzinfo is None or not self.reason_codes or self.rpc not in _RPCS:
            raise ValueError(
                f"a refusal needs a timezone-aware time, a reason code and a known rpc: {self!r}"
            )


@dataclass(frozen=True, slots=True)
class ShortSaleRecord:
    """A Reg SHO Rule 201 restriction, in force from ``triggered_on`` through ``restricted_until``
    (Rule 201(b)(1)(ii): the rest of the trigger day and the following trading day)."""

    symbol: str
    triggered_on: date
    restricted_until: date
    trigger_price: Decimal
    triggered_at: datetime

    def __post_init__(self) -> None:
        if self.triggered_at.tzinfo is None or self.restricted_until < self.triggered_on:
            raise ValueError(
                f"a restriction needs a timezone-aware time, ending on or after its start: {self!r}"
            )


_Row = MarketStateEvent | PretradeRefusal
EVENT_COLUMNS = ("occurred_at", "trade_date", "symbol", "kind", "reason_code", "venue", "detail")
REFUSAL_COLUMNS = (
    *("decided_at", "trade_date", "client_order_id", "account", "symbol", "side", "order_type"),
    *("quantity", "limit_price", "reason_codes", "restrictions", "phase", "rpc"),
)
SHORT_SALE_COLUMNS = ("symbol", "triggered_on", "restricted_until", "trigger_price", "triggered_at")
_INSERT_SHORT_SALE = (
    f"INSERT INTO short_sale_restrictions ({', '.join(SHORT_SALE_COLUMNS)}) "
    "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (symbol, triggered_on) DO NOTHING"
)
# Database trouble of every kind; the rows stay queued and the writer reconnects (a refused row,
# below, is handled where it happens). InternalClientError: asyncpg's protocol can be caught
# mid-error when the server drops an idle connection (pg_terminate_backend); a fresh connection
# is the remedy.
_TROUBLE = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)


def _refused(exc: BaseException) -> bool:
    """Whether ``exc`` refuses the rows themselves: SQLSTATE class 22 (data) or 23 (integrity), or
    a value asyncpg cannot encode (raised as TypeError, ValueError or OverflowError; its own
    DataError is a ValueError too)."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate).startswith(("22", "23"))
    return isinstance(exc, (TypeError, ValueError, OverflowError))


def _fields(value: Any, names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(value, name) for name in names)


@dataclass(slots=True)
class _Batch:
    rows: list[_Row]
    short_sales: list[ShortSaleRecord]
    xid: int | None = None  # the transaction writing it, once known

    def __len__(self) -> int:
        return len(self.rows) + len(self.short_sales)


class MarketEventRecorder:
    """The process's recorder of market state and refusals. Start ``run()`` as an owned task.

    ``record_*`` are for the event loop's thread only.
    """

    def __init__(
        self,
        url: str,
        *,
        max_queued: int = 1_000_000,
        max_batch: int = 10_000,
        connect_timeout: float = 10.0,
        command_timeout: float = 30.0,
        retry_delay: float = 0.5,
        final_flush_timeout: float = 5.0,
    ) -> None:
        if max_queued < 1 or max_batch < 1:
            raise ValueError("max_queued and max_batch must be positive")
        self._url, self._max_queued, self._max_batch = url, max_queued, max_batch
        self._connect_timeout, self._command_timeout = connect_timeout, command_timeout
        self._retry_delay, self._final_flush_timeout = retry_delay, final_flush_timeout
        self._queue: deque[_Row] = deque()
        self._short_sales: dict[tuple[str, date], ShortSaleRecord] = {}
        self._inflight: _Batch | None = None
        self._connection: asyncpg.Connection | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._flushers: list[tuple[int, int, asyncio.Future[None]]] = []
        # Rows ever queued and how many are settled (written, dropped or rejected). With no batch
        # in flight, the unsettled rows are the queue, oldest first: "settled >= n" then means the
        # first n are settled. (Rows dropped while a batch is in flight are newer than it, but
        # they leave the queue full, so that batch, if put back, is dropped first.) Short sales
        # are all taken at once, so the same holds for them.
        self._rows_in = self._rows_settled = self._shorts_in = self._shorts_settled = 0
        self._overflowing, self._episode_dropped, self._outage_logged = False, 0, False
        self._one_by_one = 0  # how many of the next batches hold a single row
        self._available = asyncio.Event()
        # Set on every change of availability; the owner clears it after reading ``available``.
        self.availability_changed = asyncio.Event()
        self.written = self.dropped = self.rejected = self.batches_written = 0

    @property
    def available(self) -> bool:
        return self._available.is_set()

    @property
    def queued(self) -> int:
        """Rows not written yet, including a batch being written."""
        inflight = len(self._inflight) if self._inflight is not None else 0
        return len(self._queue) + len(self._short_sales) + inflight

    async def wait_available(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            await self._available.wait()

    def record_event(self, event: MarketStateEvent) -> None:
        """Queue ``event``; never blocks. When the queue is full the oldest row is dropped."""
        self._append(event)

    def record_refusal(self, refusal: PretradeRefusal) -> None:
        """Queue ``refusal``; never blocks. When the queue is full the oldest row is dropped."""
        self._append(refusal)

    def record_short_sale(self, record: ShortSaleRecord) -> None:
        """Queue a restriction; never dropped. The first record of a symbol and day is kept."""
        key = (record.symbol, record.triggered_on)
        if key not in self._short_sales:
            self._short_sales[key] = record
            self._shorts_in += 1
            self._wake()

    def _append(self, row: _Row) -> None:
        if len(self._queue) >= self._max_queued:
            self._drop_oldest(1)
        self._queue.append(row)
        self._rows_in += 1
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _drop_oldest(self, count: int) -> None:
        for _ in range(count):
            self._queue.popleft()
        self.dropped += count
        self._episode_dropped += count
        self._rows_settled += count
        if not self._overflowing:
            self._overflowing = True
            log.error("market event queue full; dropping the oldest rows")
        self._notify_flushers()

    async def flush(self, timeout: float) -> None:
        """Wait until every row queued before this call is written (or dropped or refused, and
        counted). Raises DatabaseUnavailable when that takes more than ``timeout`` seconds."""
        target = (self._rows_in, self._shorts_in)
        if self._settled(*target):
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._flushers.append((*target, future))
        try:
            async with asyncio.timeout(timeout):
                await future
        except TimeoutError as exc:
            message = f"{self.queued} market event rows unwritten after {timeout}s"
            raise DatabaseUnavailable(message) from exc

    def _settled(self, rows: int, shorts: int) -> bool:
        return (
            self._inflight is None and rows <= self._rows_settled and shorts <= self._shorts_settled
        )

    def _notify_flushers(self) -> None:
        for flusher in self._flushers:
            if not flusher[2].done() and self._settled(flusher[0], flusher[1]):
                flusher[2].set_result(None)
        self._flushers = [f for f in self._flushers if not f[2].done()]

    def _set_available(self, available: bool) -> None:
        if available != self._available.is_set():
            (self._available.set if available else self._available.clear)()
            self.availability_changed.set()

    async def run(self) -> None:
        """Write until cancelled, reconnecting after failures. When cancelled, try a final flush
        bounded by ``final_flush_timeout``, then re-raise the cancellation."""
        try:
            while True:
                try:
                    if self._connection is None:
                        await self._connect()
                    await self._write_forever()
                except _TROUBLE as exc:
                    if not self._outage_logged:  # once per outage, not once per retry
                        self._outage_logged = True
                        error = {"error": repr(exc), "queued": self.queued}
                        log.error(
                            "market event recorder cannot write; rows stay queued", extra=error
                        )
                    self._set_available(False)
                    self._close()
                    await asyncio.sleep(self._retry_delay)
        except asyncio.CancelledError:
            await self._final_flush()
            raise
        finally:
            self._set_available(False)
            self._close()

    async def _connect(self) -> None:
        connection = await asyncpg.connect(
            self._url,
            timeout=self._connect_timeout,
            command_timeout=self._command_timeout,
            server_settings={"application_name": APPLICATION_NAME},
        )
        try:
            await connection.execute(f"SET ROLE {APP_ROLE}")
            await self._resolve_inflight(connection)
        except BaseException:
            connection.terminate()
            raise
        self._connection, self._outage_logged = connection, False
        self._set_available(True)
        log.info("market event recorder connected", extra={"queued": self.queued})

    async def _resolve_inflight(self, connection: asyncpg.Connection) -> None:
        """Settle or requeue the batch whose write was cut off, by asking whether it committed."""
        batch, status = self._inflight, None
        if batch is None:
            return
        if batch.xid is not None:
            async with asyncio.timeout(self._command_timeout):
                status = await connection.fetchval("SELECT txid_status($1)", batch.xid)
                while status == "in progress":  # its backend has not noticed we left
                    await asyncio.sleep(0.01)
                    status = await connection.fetchval("SELECT txid_status($1)", batch.xid)
        self._inflight = None
        if status == "committed":
            self._settle(batch)
        else:
            self._requeue(batch)

    def _requeue(self, batch: _Batch) -> None:
        """Put ``batch`` back at the head of the queue, as it was taken."""
        self._queue.extendleft(reversed(batch.rows))
        for record in batch.short_sales:
            key = (record.symbol, record.triggered_on)
            if self._short_sales.pop(key, None) is not None:
                self._shorts_settled += 1  # a copy queued meanwhile merges into this earlier one
            self._short_sales[key] = record
        if len(self._queue) > self._max_queued:
            self._drop_oldest(len(self._queue) - self._max_queued)

    def _close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.terminate()

    async def _write_forever(self) -> None:
        while True:
            if not self._queue and not self._short_sales:
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
            await self._write(self._take())

    def _take(self) -> _Batch:
        if self._one_by_one and (self._queue or self._short_sales):
            self._one_by_one -= 1
            if self._queue:
                return _Batch([self._queue.popleft()], [])
            return _Batch([], [self._short_sales.pop(next(iter(self._short_sales)))])
        popleft = self._queue.popleft
        rows = [popleft() for _ in range(min(len(self._queue), self._max_batch))]
        short_sales = list(self._short_sales.values())
        self._short_sales.clear()
        return _Batch(rows, short_sales)

    async def _write(self, batch: _Batch) -> None:
        connection = self._connection
        assert connection is not None
        self._inflight = batch
        try:
            await self._commit(connection, batch)
        except (*_TROUBLE, TypeError, ValueError, OverflowError) as exc:
            if not _refused(exc):
                raise
            await connection.execute("ROLLBACK")
            self._inflight = None
            if len(batch) == 1:
                row = (batch.rows or batch.short_sales)[0]
                refused = {"row": repr(row), "error": repr(exc)}
                log.error("PostgreSQL refused a market event row; dropped", extra=refused)
                self._settle(batch, written=False)
                return
            # Find the refused row: write this batch again one row per transaction.
            self._requeue(batch)
            self._one_by_one = len(batch)
            return
        self._inflight = None
        self._settle(batch)

    async def _commit(self, connection: asyncpg.Connection, batch: _Batch) -> None:
        timeout = self._command_timeout
        events, refusals = [], []
        for row in batch.rows:
            if type(row) is MarketStateEvent:
                events.append((*_fields(row, EVENT_COLUMNS[:-1]), json.dumps(dict(row.detail))))
            else:
                refusals.append(_fields(row, REFUSAL_COLUMNS))
        await connection.execute("BEGIN")
        batch.xid = await connection.fetchval("SELECT txid_current()")
        for table, records, columns in (
            ("market_state_events", events, EVENT_COLUMNS),
            ("pretrade_refusals", refusals, REFUSAL_COLUMNS),
        ):
            if records:
                await connection.copy_records_to_table(
                    table, records=records, columns=columns, timeout=timeout
                )
        if batch.short_sales:
            records = [_fields(s, SHORT_SALE_COLUMNS) for s in batch.short_sales]
            await connection.executemany(_INSERT_SHORT_SALE, records, timeout=timeout)
        await connection.execute("COMMIT")

    def _settle(self, batch: _Batch, *, written: bool = True) -> None:
        if written:
            self.written += len(batch)
            self.batches_written += 1
        else:
            self.rejected += len(batch)
        self._rows_settled += len(batch.rows)
        self._shorts_settled += len(batch.short_sales)
        if self._overflowing and len(self._queue) <= self._max_queued // 2:
            self._overflowing = False
            episode = {"dropped": self._episode_dropped}
            log.error("market event queue below half full again", extra=episode)
            self._episode_dropped = 0
        self._notify_flushers()

    async def _final_flush(self) -> None:
        if not self.queued:
            return
        try:
            async with asyncio.timeout(self._final_flush_timeout):
                if self._inflight is not None:
                    self._close()  # cancelled mid-write: the connection's state is unknown
                if self._connection is None:
                    await self._connect()
                while self._queue or self._short_sales:
                    await self._write(self._take())
        except _TROUBLE as exc:
            lost = {"unwritten": self.queued, "error": repr(exc)}
            log.error("market event recorder stopped with rows unwritten", extra=lost)


async def _fetch(connection: asyncpg.Connection, query: str, *args: Any, timeout: float) -> Any:
    try:
        return await connection.fetch(query, *args, timeout=timeout)
    except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnavailable(f"market state query failed: {exc!r}") from exc


def _where(**conditions: tuple[str, Any]) -> tuple[str, list[Any]]:
    """`` WHERE`` over the conditions whose value is not None; ``$`` stands for their parameter."""
    clauses, args = [], []
    for clause, value in conditions.values():
        if value is not None:
            args.append(value)
            clauses.append(clause.replace("$", f"${len(args)}"))
    return (f" WHERE {' AND '.join(clauses)}" if clauses else ""), args


async def load_short_sale_restrictions(
    connection: asyncpg.Connection, trade_date: date | None, *, timeout: float = 10.0
) -> dict[str, date]:
    """Return the symbols under a Reg SHO 201 restriction on ``trade_date``, with its last day.

    ``trade_date`` None returns every recorded restriction (its latest last day per symbol): for a
    gateway whose clock follows the feed, the trading day is not known until events arrive.
    """
    if trade_date is None:
        query = (
            "SELECT symbol, max(restricted_until) AS until FROM short_sale_restrictions "
            "GROUP BY symbol"
        )
        rows = await _fetch(connection, query, timeout=timeout)
        return {row["symbol"]: row["until"] for row in rows}
    query = (
        "SELECT symbol, max(restricted_until) AS until FROM short_sale_restrictions "
        "WHERE triggered_on <= $1 AND restricted_until >= $1 GROUP BY symbol"
    )
    rows = await _fetch(connection, query, trade_date, timeout=timeout)
    return {row["symbol"]: row["until"] for row in rows}


async def fetch_events(
    connection: asyncpg.Connection,
    *,
    symbol: str | None = None,
    since: datetime | None = None,
    kinds: Iterable[str] | None = None,
    timeout: float = 30.0,
) -> list[MarketStateEvent]:
    """Return the recorded market state events that match every filter given, oldest first."""
    where, args = _where(
        symbol=("symbol = $", symbol),
        since=("occurred_at >= $", since),
        kinds=("kind = ANY($::text[])", None if kinds is None else [str(k) for k in kinds]),
    )
    query = f"SELECT * FROM market_state_events{where} ORDER BY occurred_at, id"
    rows = await _fetch(connection, query, *args, timeout=timeout)
    return [
        MarketStateEvent(
            **{c: row[c] for c in EVENT_COLUMNS[:-1]}, detail=json.loads(row["detail"])
        )
        for row in rows
    ]


async def fetch_refusals(
    connection: asyncpg.Connection,
    *,
    symbol: str | None = None,
    account: str | None = None,
    since: datetime | None = None,
    timeout: float = 30.0,
) -> list[PretradeRefusal]:
    """Return the recorded pre-trade refusals that match every filter given, oldest first."""
    where, args = _where(
        symbol=("symbol = $", symbol),
        account=("account = $", account),
        since=("decided_at >= $", since),
    )
    query = f"SELECT * FROM pretrade_refusals{where} ORDER BY decided_at, id"
    rows = await _fetch(connection, query, *args, timeout=timeout)
    return [
        PretradeRefusal(
            **{c: row[c] for c in REFUSAL_COLUMNS[:-4]},
            reason_codes=tuple(row["reason_codes"]),
            restrictions=tuple(row["restrictions"]),
            phase=row["phase"],
            rpc=row["rpc"],
        )
        for row in rows
    ]
