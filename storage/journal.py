"""The journal writer: one task, one connection, group commit with COPY.

Callers hand a validated ``FillRow`` to ``JournalWriter.record`` and await it. The writer takes
everything queued since its last commit (no linger timer: a timer only adds latency), links each row
into this process's hash chain, and writes the batch with one COPY straight into ``trade_fills``
in autocommit. A caller's future is resolved only after that COPY has returned, so an acknowledged
fill is a committed fill (synchronous_commit stays on).

A COPY cannot skip duplicates. On a unique violation the writer looks up which keys of the batch
already exist, answers those callers with the stored row (``duplicate=True``) or a conflict when the
content differs, and writes the rest again. When the connection fails the outcome of the batch is
unknown, so its callers get ``JournalUnavailable`` (retryable; a retry is idempotent) and the
writer reconnects, continuing its chain from what the database holds.

The writer remembers the fills it has seen committed (the most recent ``recent_size``): a retry
of one of those is answered from memory, with no round trip and no failed COPY. That is as durable
as asking the database: a committed fill cannot be changed or removed (append-only).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from decimal import Decimal
from operator import attrgetter

import asyncpg

from gateway.domain import audit_chain
from gateway.domain.fills import Fill
from gateway.errors import AlreadyExists, ExecgwError
from storage import audit
from storage.audit import GENESIS_HASH
from storage.errors import DatabaseUnavailable

log = logging.getLogger(__name__)

SEQUENCE_BLOCK = 1024
APP_ROLE = "execgw_app"


class JournalUnavailable(DatabaseUnavailable):
    """The fill was not acknowledged: the journal cannot write now. Retrying is safe."""

    reason = "JOURNAL_UNAVAILABLE"


class JournalRejected(ExecgwError):
    """PostgreSQL refused the row itself (a constraint the edge should have caught)."""

    reason = "JOURNAL_REJECTED"


class FillConflict(AlreadyExists):
    """A fill with this key is recorded with different content; the stored one is untouched."""

    reason = "FILL_CONFLICT"


@dataclass(frozen=True, slots=True)
class FillRow:
    """One fill as the journal stores it (content columns; the writer adds sequence and hashes)."""

    trade_date: date
    venue: str
    exec_id: str
    account: str
    symbol: str
    side: str
    quantity: int
    price: Decimal
    liquidity: str
    transaction_time: datetime
    received_at: datetime
    client_order_id: str = ""
    decision_id: str = ""
    kind: str = "NEW"
    corrects_exec_id: str = ""
    commission: Decimal = Decimal(0)
    venue_fee: Decimal = Decimal(0)
    sec_fee: Decimal = Decimal(0)
    finra_taf: Decimal = Decimal(0)

    @property
    def key(self) -> tuple[date, str, str]:
        return (self.trade_date, self.venue, self.exec_id)

    def same_fill(self, other: FillRow) -> bool:
        """Whether ``other`` reports the same execution (receive time and fees may differ)."""
        return _content(self) == _content(other)


CONTENT_FIELDS = (
    "trade_date",
    "venue",
    "exec_id",
    "account",
    "symbol",
    "side",
    "quantity",
    "price",
    "liquidity",
    "transaction_time",
    "client_order_id",
    "decision_id",
    "kind",
    "corrects_exec_id",
)
ROW_FIELDS = tuple(f.name for f in fields(FillRow))
COLUMNS = (*ROW_FIELDS, "sequence", "chain_id", "chain_seq", "prev_hash", "row_hash")
# One C call per row instead of a getattr per column.
_content = attrgetter(*CONTENT_FIELDS)
_row_values = attrgetter(*ROW_FIELDS)


@dataclass(frozen=True, slots=True)
class StoredFill:
    """What the journal holds for a fill, and whether this request was a duplicate."""

    row: FillRow
    sequence: int
    chain_id: int
    chain_seq: int
    row_hash: bytes
    duplicate: bool = False


@dataclass(slots=True)
class _Pending:
    row: FillRow
    future: asyncio.Future[StoredFill]
    # The domain fill the row records, when the caller has it: the hash link then need not
    # rebuild it from the row.
    fill: Fill | None = None
    # Set when the row is known to be stored, even if the caller stopped waiting.
    stored: StoredFill | None = None


def _stored(record: asyncpg.Record, duplicate: bool) -> StoredFill:
    row = FillRow(**{name: record[name] for name in ROW_FIELDS})
    return StoredFill(
        row,
        record["sequence"],
        record["chain_id"],
        record["chain_seq"],
        record["row_hash"],
        duplicate,
    )


_CONNECTION_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
)


class JournalWriter:
    """The process's single journal writer. Start it with ``run()`` as an owned task."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = 10.0,
        command_timeout: float = 30.0,
        max_batch: int = 5000,
        retry_delay: float = 0.5,
        recent_size: int = 32_768,
    ) -> None:
        self._url = url
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._max_batch = max_batch
        self._retry_delay = retry_delay
        self._queue: list[_Pending] = []
        self._wakeup = asyncio.Event()
        # The loop ``run()`` runs on: futures are made on it without asking asyncio for the
        # running loop (on Python 3.11 each ask is a getpid system call, twice per fill).
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: asyncpg.Connection | None = None
        self._months: set[date] = set()
        self.chain_id: int | None = None
        self._chain_seq = 0
        self._prev_hash = GENESIS_HASH
        self._available = asyncio.Event()
        # Set on every change of availability; the owner clears it after reading ``available``.
        self.availability_changed = asyncio.Event()
        self._sequences: list[int] = []
        # Fills seen committed, oldest first: retries are answered from here. An OrderedDict, as
        # removing the oldest entry of a plain dict slows its iteration from the front.
        self._recent: OrderedDict[tuple[date, str, str], StoredFill] = OrderedDict()
        self._recent_size = recent_size
        self.batches_written = 0
        self.rows_written = 0

    @property
    def available(self) -> bool:
        return self._available.is_set()

    async def wait_available(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            await self._available.wait()

    def submit(self, row: FillRow, fill: Fill | None = None) -> asyncio.Future[StoredFill]:
        """Queue ``row``; the future resolves once it is committed (or was already).

        ``fill``: the domain fill ``row`` records, if the caller has it (saves rebuilding it).
        Raises JournalUnavailable at once while the journal cannot write.
        """
        if not self._available.is_set():
            raise JournalUnavailable(
                "the journal cannot reach PostgreSQL; the fill was not recorded"
            )
        assert self._loop is not None  # available: ``run()`` has connected
        future: asyncio.Future[StoredFill] = self._loop.create_future()
        pending = _Pending(row, future, fill)
        known = self._recent.get(row.key)
        if known is not None:
            # A retry of a fill seen committed: answered now, without a turn of the writer.
            _answer_known(pending, known)
            return future
        self._queue.append(pending)
        self._wakeup.set()
        return future

    async def record(self, row: FillRow) -> StoredFill:
        """Journal ``row``; returns once it is committed (or was already), raises otherwise."""
        # Not shielded: a caller that gives up (deadline) cancels only its own wait; the row is
        # still written, and a retry gets the stored fill back as a duplicate.
        return await self.submit(row)

    def _set_available(self, available: bool) -> None:
        if available != self._available.is_set():
            if available:
                self._available.set()
            else:
                self._available.clear()
            self.availability_changed.set()

    async def run(self) -> None:
        """Write batches until cancelled; reconnect after connection failures."""
        self._loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    await self._connect()
                except (*_CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
                    # PostgresError too: a database that refuses connections for now (not
                    # accepting connections, shutting down) is a reason to wait, not to stop.
                    log.warning("journal cannot connect; retrying", extra={"error": repr(exc)})
                    await asyncio.sleep(self._retry_delay)
                    continue
                try:
                    await self._write_forever()
                except _CONNECTION_ERRORS as exc:
                    log.error("journal lost its connection", extra={"error": repr(exc)})
                    self._set_available(False)
                    await self._close()
                except Exception:
                    # Never die with callers waiting: the batch was answered JournalUnavailable;
                    # start again on a fresh connection.
                    log.exception("journal writer failed; reconnecting")
                    self._set_available(False)
                    await self._close()
                    await asyncio.sleep(self._retry_delay)
        finally:
            self._set_available(False)
            self._fail_all(self._queue, JournalUnavailable("the journal is shutting down"))
            self._queue = []
            await self._close()

    async def _connect(self) -> None:
        connection = await asyncpg.connect(
            self._url, timeout=self._connect_timeout, command_timeout=self._command_timeout
        )
        try:
            await connection.execute(f"SET ROLE {APP_ROLE}")
            if self.chain_id is None:
                self.chain_id = await connection.fetchval(
                    "INSERT INTO journal_chains (hostname, pid, encoding) VALUES ($1, $2, $3) "
                    "RETURNING chain_id",
                    socket.gethostname(),
                    os.getpid(),
                    audit.ENCODING_VERSION,
                )
            else:
                # The last batch before the failure may or may not have committed: continue the
                # chain from what the database holds.
                head = await connection.fetchrow(
                    "SELECT chain_seq, row_hash FROM trade_fills WHERE chain_id = $1 "
                    "ORDER BY chain_seq DESC LIMIT 1",
                    self.chain_id,
                )
                self._chain_seq, self._prev_hash = (
                    (head["chain_seq"], head["row_hash"]) if head else (0, GENESIS_HASH)
                )
        except BaseException:
            await connection.close()
            raise
        self._connection = connection
        # An idle connection the server closed is noticed at once, not at the next fill: health
        # turns NOT_SERVING while nobody writes, and the writer reconnects.
        connection.add_termination_listener(self._on_termination)
        self._set_available(True)
        log.info("journal writer connected", extra={"chain_id": self.chain_id})

    def _on_termination(self, connection: asyncpg.Connection) -> None:
        if connection is self._connection:
            self._set_available(False)
            self._wakeup.set()

    async def _close(self) -> None:
        if self._connection is not None:
            connection, self._connection = self._connection, None
            connection.terminate()

    async def _write_forever(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self._connection is None or self._connection.is_closed():
                raise asyncpg.InterfaceError("the journal connection was closed")
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._write_batch(batch)

    def _fail_all(self, batch: Sequence[_Pending], error: Exception) -> None:
        for pending in batch:
            if not pending.future.done():
                pending.future.set_exception(error)

    async def _write_batch(self, batch: list[_Pending]) -> None:
        assert self._connection is not None
        try:
            await self._write_batch_on(self._connection, batch)
        except asyncio.CancelledError:
            self._fail_all(batch, JournalUnavailable("the journal is shutting down"))
            raise
        except Exception:
            self._fail_all(
                batch,
                JournalUnavailable("the journal lost PostgreSQL; the fill was not acknowledged"),
            )
            raise

    async def _write_batch_on(self, connection: asyncpg.Connection, batch: list[_Pending]) -> None:
        # Two requests for the same key in one batch: the first is written, the others wait for it.
        first: dict[tuple[date, str, str], _Pending] = {}
        followers: list[tuple[_Pending, _Pending]] = []
        recent = self._recent
        for pending in batch:
            key = pending.row.key
            known = recent.get(key)
            if known is not None:
                # Seen committed before: a retry, answered without the database.
                _answer_known(pending, known)
                continue
            leader = first.get(key)
            if leader is None:
                first[key] = pending
            else:
                followers.append((pending, leader))
        todo = list(first.values())
        months = {p.row.trade_date.replace(day=1) for p in todo} - self._months
        for month in sorted(months):
            await connection.execute("SELECT journal_ensure_month($1)", month)
            self._months.add(month)
        try:
            while todo:
                todo = await self._copy(connection, todo)
        except asyncpg.PostgresError as exc:
            if isinstance(exc, _CONNECTION_ERRORS):
                raise
            # One row the database refuses must not sink the batch: write them one by one.
            log.error(
                "journal batch refused; writing its rows one by one", extra={"error": repr(exc)}
            )
            for pending in todo:
                await self._write_alone(connection, pending)
        for pending, leader in followers:
            _answer_follower(pending, leader)
        self.batches_written += 1

    async def _write_alone(self, connection: asyncpg.Connection, pending: _Pending) -> None:
        if pending.future.done():
            return
        try:
            await self._copy(connection, [pending])
        except asyncpg.PostgresError as exc:
            if isinstance(exc, _CONNECTION_ERRORS):
                raise
            log.error(
                "journal refused a fill",
                extra={
                    "venue": pending.row.venue,
                    "exec_id": pending.row.exec_id,
                    "error": repr(exc),
                },
            )
            pending.future.set_exception(
                JournalRejected(
                    f"the journal refused fill {pending.row.venue}/{pending.row.exec_id}"
                )
            )

    async def _copy(self, connection: asyncpg.Connection, todo: list[_Pending]) -> list[_Pending]:
        """COPY ``todo``; returns what remains to write after a unique violation, else []."""
        if len(self._sequences) < len(todo):
            # Sequence numbers come in blocks: one round trip per block, not per batch. Numbers
            # of a block this process does not use (a restart) leave gaps; order is kept.
            self._sequences.extend(
                await connection.fetchval(
                    "SELECT array_agg(n) FROM (SELECT nextval('trade_fill_sequence') AS n "
                    "FROM generate_series(1, $1)) AS block",
                    max(SEQUENCE_BLOCK, len(todo) - len(self._sequences)),
                )
            )
        sequences = self._sequences[: len(todo)]
        records = []
        stored = []
        prev_hash, chain_seq = self._prev_hash, self._chain_seq
        chain_id = self.chain_id or 0
        journal_row, row_hash_of = audit.journal_row, audit_chain.row_hash
        for pending, sequence in zip(todo, sequences, strict=True):
            row = pending.row
            chain_seq += 1
            # audit.link's hash, given the domain fill when the caller passed it.
            row_hash = row_hash_of(
                prev_hash, journal_row(row, sequence, chain_id, chain_seq, pending.fill)
            )
            records.append((*_row_values(row), sequence, chain_id, chain_seq, prev_hash, row_hash))
            stored.append(StoredFill(row, sequence, chain_id, chain_seq, row_hash))
            prev_hash = row_hash
        try:
            await connection.copy_records_to_table("trade_fills", records=records, columns=COLUMNS)
        except asyncpg.UniqueViolationError:
            return await self._resolve_duplicates(connection, todo)
        del self._sequences[: len(todo)]
        self._prev_hash, self._chain_seq = prev_hash, chain_seq
        self.rows_written += len(records)
        for pending, result in zip(todo, stored, strict=True):
            pending.stored = result
            self._remember(result)
            if not pending.future.done():
                pending.future.set_result(result)
        return []

    def _remember(self, stored: StoredFill) -> None:
        recent = self._recent
        if len(recent) >= self._recent_size:
            recent.popitem(last=False)
        recent[stored.row.key] = stored

    async def _resolve_duplicates(
        self, connection: asyncpg.Connection, todo: list[_Pending]
    ) -> list[_Pending]:
        existing = await connection.fetch(
            f"SELECT {', '.join(COLUMNS)} FROM trade_fills "
            "WHERE (trade_date, venue, exec_id) IN "
            "(SELECT * FROM unnest($1::date[], $2::text[], $3::text[]))",
            [p.row.trade_date for p in todo],
            [p.row.venue for p in todo],
            [p.row.exec_id for p in todo],
        )
        found = {(r["trade_date"], r["venue"], r["exec_id"]): r for r in existing}
        remaining = []
        for pending in todo:
            record = found.get(pending.row.key)
            if record is None:
                remaining.append(pending)
                continue
            stored = _stored(record, duplicate=True)
            self._remember(stored)
            if stored.row.same_fill(pending.row):
                pending.stored = stored
                if not pending.future.done():
                    pending.future.set_result(stored)
            elif not pending.future.done():
                pending.future.set_exception(_conflict(pending.row, stored))
        return remaining


def _conflict(row: FillRow, stored: StoredFill) -> FillConflict:
    differing = [n for n in CONTENT_FIELDS if getattr(row, n) != getattr(stored.row, n)]
    return FillConflict(
        f"fill {row.venue}/{row.exec_id} on {row.trade_date} is already recorded (sequence "
        f"{stored.sequence}) with different {', '.join(differing)}; the stored fill is unchanged"
    )


def _answer_known(pending: _Pending, known: StoredFill) -> None:
    """Answer a request for a fill this writer saw committed: duplicate, or a conflict."""
    if pending.future.done():
        return
    if known.row.same_fill(pending.row):
        pending.stored = known
        pending.future.set_result(
            known
            if known.duplicate
            else StoredFill(
                known.row,
                known.sequence,
                known.chain_id,
                known.chain_seq,
                known.row_hash,
                duplicate=True,
            )
        )
    else:
        pending.future.set_exception(_conflict(pending.row, known))


def _answer_follower(pending: _Pending, leader: _Pending) -> None:
    if pending.future.done():
        return
    result = leader.stored
    if result is None:
        # The leader was refused (conflict or rejected): the follower, same key, shares its fate.
        error = None if leader.future.cancelled() else leader.future.exception()
        pending.future.set_exception(error or JournalUnavailable("the fill was not acknowledged"))
        return
    if result.row.same_fill(pending.row):
        pending.future.set_result(
            StoredFill(
                result.row,
                result.sequence,
                result.chain_id,
                result.chain_seq,
                result.row_hash,
                duplicate=True,
            )
        )
    else:
        pending.future.set_exception(_conflict(pending.row, result))
