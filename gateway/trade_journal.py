"""The trade-journal edge: the journal writer, live positions and the fee schedules.

A fill is priced (commission, venue fee or rebate from the venue profile, SEC Section 31 fee and
FINRA TAF from the dated tables), handed to the writer, and folded into the positions in the
writer's done-callback, in commit order, whether or not its caller still waits: live positions
are the fold of the committed fills, the same fold ``load`` does from the journal at start.

P&L attribution (``pnl``) reads the journal, then the routing decisions and NBBO mid history the
fills need (``gateway.attribution``: arrival mids, listing-exchange baselines, markouts, timing
and shortfall), and accrues borrow on the shorts open at each day's close at the per-symbol rates
(``gateway.domain.borrow.daily_accruals``). None of it touches the fill path.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

import asyncpg

from gateway.attribution import AttributionInputs, AttributionSources
from gateway.domain.borrow import BorrowRates, daily_accruals
from gateway.domain.fees import (
    FeeBreakdown,
    FeeCalculator,
    FeeSettings,
    VenueFeeParameters,
    VenueFeeSchedule,
)
from gateway.domain.fills import Fill, FillKey, FillKind, trade_date_of
from gateway.domain.market_state import MarketStateEngine
from gateway.domain.pnl import (
    DEFAULT_GROUPING,
    DEFAULT_MARKOUT_HORIZON,
    PnlGrouping,
    PnlReport,
    PnlRequest,
    attribute_pnl,
)
from gateway.domain.positions import CostMethod, Position, PositionBook
from gateway.domain.reconciliation import Statement, journal_cash, reconcile
from gateway.domain.venues import VenueSet
from gateway.metrics import Metrics
from storage import audit
from storage.audit import AuditReport
from storage.fills import fetch_fill_rows, fetch_position_rows, stream_fills
from storage.journal import FillConflict, FillRow, JournalWriter, StoredFill
from storage.reconciliation_runs import ReconciliationRun, store_run

log = logging.getLogger(__name__)

_NO_VENUE_FEES = VenueFeeSchedule()
Marks = Callable[[str], Decimal | None]


def _no_marks(symbol: str) -> Decimal | None:
    return None


def last_trade_marks(engine: MarketStateEngine) -> Marks:
    """Marks from market data: the symbol's latest trade price the engine has seen."""

    def mark(symbol: str) -> Decimal | None:
        state = engine.get(symbol)
        trade = state.last_trade if state is not None else None
        return trade.price if trade is not None else None

    return mark


@dataclass(frozen=True, slots=True)
class PnlQuery:
    """What GetPnl asks: an inclusive trade-date range, filters and grouping."""

    start: date
    end: date
    accounts: frozenset[str] = frozenset()
    symbols: frozenset[str] = frozenset()
    group_by: tuple[PnlGrouping, ...] = DEFAULT_GROUPING
    include_shortfall: bool = False


def _last_prices(records: list[Fill], up_to: date) -> dict[str, Decimal]:
    """The latest journaled price per symbol on or before ``up_to`` (busts are not prices)."""
    latest: dict[str, Fill] = {}
    for fill in records:
        if fill.kind is FillKind.BUST or fill.trade_date > up_to:
            continue
        seen = latest.get(fill.symbol)
        if seen is None or fill.transaction_time >= seen.transaction_time:
            latest[fill.symbol] = fill
    return {symbol: fill.price for symbol, fill in latest.items()}


def _report_rebuild_failure(task: asyncio.Future[None]) -> None:
    """A rebuild that fails other than by the database (a bug) holds every answer after it."""
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "position rebuild from the journal failed: fills stay committed but their "
            "acknowledgements are held until the gateway restarts",
            exc_info=task.exception(),
        )


@dataclass(frozen=True, slots=True)
class _Committed:
    """A committed record on its way into the book, and the caller waiting for it."""

    stored: StoredFill
    fill: Fill
    fees: FeeBreakdown
    answer: asyncio.Future[Recorded]
    started: float


@dataclass(frozen=True, slots=True)
class Recorded:
    """A committed (or already recorded) fill and the position it left."""

    stored: StoredFill
    fill: Fill
    fees: FeeBreakdown
    position: Position


def _row(fill: Fill, fees: FeeBreakdown, received_at: datetime, trade_date: date) -> FillRow:
    return FillRow(
        trade_date,
        fill.venue,
        fill.exec_id,
        fill.account,
        fill.symbol,
        fill.side.value,
        fill.quantity,
        fill.price,
        fill.liquidity.value,
        fill.transaction_time,
        received_at,
        fill.client_order_id,
        fill.decision_id,
        fill.kind.value,
        fill.corrects_exec_id,
        fees.commission,
        fees.venue_fee,
        fees.sec_fee,
        fees.finra_taf,
    )


class TradeJournal:
    """Owns the writer's users' side: fees, positions, and the read queries of the journal."""

    def __init__(
        self,
        writer: JournalWriter,
        venues: Callable[[], VenueSet],
        metrics: Metrics,
        pool: asyncpg.Pool,
        *,
        fee_settings: FeeSettings | None = None,
        cost_methods: Mapping[str, CostMethod] | None = None,
        default_cost_method: CostMethod = CostMethod.AVERAGE,
        borrow_rates: BorrowRates | None = None,
        attribution: AttributionSources | None = None,
        marks: Marks = _no_marks,
        query_timeout: float = 30.0,
        position_history: int | None = None,
    ) -> None:
        self.writer = writer
        # The venue set in force (the routing desk's, so a reload changes fees here too).
        self._venues = venues
        self._metrics = metrics
        self._pool = pool
        self._fees = FeeCalculator(fee_settings or FeeSettings())
        self._cost_methods = dict(cost_methods or {})
        self._default_cost_method = default_cost_method
        self._borrow_rates = borrow_rates or BorrowRates()
        self._attribution = attribution
        # Effective fills kept in memory for rebuilds; older ones are read back when needed.
        self._position_history = position_history
        self.book = PositionBook(self._cost_methods, default_cost_method, history=position_history)
        # While positions are rebuilt from the journal, committed records wait here in order.
        self._backlog: list[_Committed] | None = None
        self._rebuilding: asyncio.Future[None] | None = None
        # This process's commits a rebuild already folded before their callbacks ran, with the
        # position each left; and the writer's chain position of the last commit folded (in a
        # rebuild's rows, this process's commits after it are still on their way).
        self._covered: dict[FillKey, Position] = {}
        self._folded_through = 0
        self.marks = marks
        self._query_timeout = query_timeout
        # Labelled children looked up once: ``labels()`` costs microseconds on the hot path.
        self._outcomes = {
            outcome: metrics.journal_fills.labels(outcome)
            for outcome in ("recorded", "duplicate", "conflict", "refused")
        }
        self._observe_latency = metrics.journal_fill_latency.observe

    async def load(self) -> int:
        """Rebuild the positions from every journaled fill, in journal order; return the count.

        Rows are read in chunks and folded as they come, so memory stays within the book's
        history however long the journal is.
        """
        book = PositionBook(
            self._cost_methods, self._default_cost_method, history=self._position_history
        )
        count = 0
        # Corrections and busts of fills the book had already forgotten when the replay reached
        # them (it keeps only the latest ``position_history`` fills): their positions are
        # rebuilt from every journal record of them once the replay is through.
        unplaced: list[Fill] = []
        async with self._pool.acquire() as connection:
            async for fill in stream_fills(connection):
                if book.knows(fill):
                    book.apply(fill)
                else:
                    unplaced.append(fill)
                count += 1
            if unplaced:
                history = await fetch_position_rows(
                    connection,
                    {(f.account, f.symbol) for f in unplaced},
                    {f.corrects_key for f in unplaced},
                    timeout=self._query_timeout,
                )
                book.adopt(self._replayed(history.rows), history.positions)
                self._metrics.journal_position_rebuilds.inc(len(history.positions))
                log.info(
                    "positions rebuilt from the journal at start",
                    extra={"positions": len(history.positions), "records": len(history.rows)},
                )
        self.book = book
        self._count_positions()
        return count

    def _replayed(self, rows: list[FillRow]) -> PositionBook:
        """A book of every record in ``rows`` (journal order), with nothing forgotten."""
        return PositionBook.replay(
            [audit.domain_fill(row) for row in rows],
            self._cost_methods,
            self._default_cost_method,
        )

    async def _history(self, up_to: date) -> tuple[list[Fill], dict[FillKey, FeeBreakdown], int]:
        async with self._pool.acquire() as connection:
            rows, high_water = await fetch_fill_rows(
                connection, up_to=up_to, timeout=self._query_timeout
            )
        fills = [audit.domain_fill(row) for row in rows]
        fees = {(row.venue, row.exec_id): audit.domain_fees(row) for row in rows}
        return fills, fees, high_water

    async def pnl(self, query: PnlQuery, today: date) -> PnlReport:
        """Attribute P&L over ``query``'s dates (see ``gateway.domain.pnl``).

        Marks: a position open at the end is marked to the latest trade from market data when the
        range ends today or later, else to the last price journaled in the symbol on or before
        the end date (the same rule gives the start marks, before the start date, and the
        closing marks of each day borrow accrues on).
        """
        records, fees, _ = await self._history(query.end)
        end_marks = self._marks_of(records, query.end, today)
        effective = [
            f
            for f in PositionBook.replay(records).all_effective_fills()
            if f.trade_date <= query.end
        ]
        inputs = AttributionInputs()
        if self._attribution is not None:
            inputs = await self._attribution.inputs(effective, fees, query.start, query.end)
        borrow = daily_accruals(
            effective,
            query.start,
            query.end,
            lambda day: self._marks_of(records, day, today),
            self._borrow_rates,
        )
        report = attribute_pnl(
            PnlRequest(
                start=query.start,
                end=query.end,
                records=tuple(records),
                fees=fees,
                end_marks=end_marks,
                start_marks=_last_prices(records, query.start - timedelta(days=1)),
                group_by=query.group_by,
                accounts=query.accounts,
                symbols=query.symbols,
                cost_methods=self._cost_methods,
                default_cost_method=self._default_cost_method,
                borrow=borrow,
                orders=inputs.orders,
                mids=inputs.mids,
                baselines=inputs.baselines,
                markout_horizon=(
                    self._attribution.markout_horizon
                    if self._attribution is not None
                    else DEFAULT_MARKOUT_HORIZON
                ),
                include_shortfall=query.include_shortfall,
            )
        )
        self._metrics.journal_pnl_calculations.inc()
        self._metrics.journal_net_pnl.set(float(report.total.net))
        return report

    def _marks_of(self, records: list[Fill], day: date, today: date) -> dict[str, Decimal]:
        """Closing marks of ``day``: the last journaled prices, live ones from ``today`` on."""
        marks = _last_prices(records, day)
        if day >= today:
            for symbol in list(marks):
                live = self.marks(symbol)
                if live is not None:
                    marks[symbol] = live
        return marks

    async def reconcile(
        self, trade_date: date, statement: Statement, now: datetime
    ) -> ReconciliationRun:
        """Compare the broker's statement with the journal as of ``trade_date``; store the run."""
        records, fees, high_water = await self._history(trade_date)
        book = PositionBook.replay(records, self._cost_methods, self._default_cost_method)
        held = book.positions(include_flat=True, include_lots=True)
        result = reconcile(
            statement,
            {(p.account, p.symbol): p.quantity for p in held},
            journal_cash(book.all_effective_fills(), fees, trade_date),
        )
        run = ReconciliationRun(
            uuid.uuid4(),
            trade_date,
            now,
            high_water,
            len(statement.positions),
            len({p.account for p in statement.positions} | {c.account for c in statement.cash}),
            result.breaks,
            tuple(held),
        )
        async with self._pool.acquire() as connection:
            await store_run(connection, run, timeout=self._query_timeout)
        for found in result.breaks:
            self._metrics.journal_reconciliation_errors.labels(found.kind.value).inc()
        return run

    def _count_positions(self) -> None:
        self._metrics.journal_positions.set(len(self.book.positions()))

    def _venue_fees(self, venue: str) -> VenueFeeParameters:
        profile = self._venues().get(venue)
        return profile.fees if profile is not None else _NO_VENUE_FEES

    async def record(self, fill: Fill, received_at: datetime) -> Recorded:
        """Price and journal ``fill``; returns after its commit with the resulting position."""
        return await self.submit(fill, received_at)

    def submit(self, fill: Fill, received_at: datetime) -> asyncio.Future[Recorded]:
        """Price ``fill`` and queue it; the future resolves after its commit.

        Raises JournalUnavailable at once while the journal cannot write.
        """
        started = time.perf_counter()
        fees = self._fees.fees(fill, self._venue_fees(fill.venue))
        future = self.writer.submit(
            _row(fill, fees, received_at, trade_date_of(fill.transaction_time)), fill
        )
        answer: asyncio.Future[Recorded] = future.get_loop().create_future()

        def committed(done: asyncio.Future[StoredFill]) -> None:
            if done.cancelled():
                answer.cancel()
                return
            error = done.exception()
            if error is not None:
                outcome = "conflict" if isinstance(error, FillConflict) else "refused"
                self._outcomes[outcome].inc()
                if isinstance(error, FillConflict):
                    log.warning(
                        "fill conflict", extra={"venue": fill.venue, "exec_id": fill.exec_id}
                    )
                if not answer.done():
                    answer.set_exception(error)
                return
            stored = done.result()
            if stored.duplicate:
                applied, charged = audit.domain_fill(stored.row), audit.domain_fees(stored.row)
            else:
                applied, charged = fill, fees
            self._fold(_Committed(stored, applied, charged, answer, started))

        if future.done():
            committed(future)  # a retry answered from memory: no turn of the loop
        else:
            future.add_done_callback(committed)
        return answer

    def _fold(self, item: _Committed) -> None:
        """Fold a committed record into the book, in commit order, and answer its caller."""
        if self._backlog is not None:
            self._backlog.append(item)  # behind a rebuild from the journal
            return
        if self._covered and not item.stored.duplicate:
            position = self._covered.pop(item.fill.key, None)
            if position is not None:  # folded by the rebuild that read it
                self._answer(item, position)
                return
        # A duplicate the book has not seen (stored by another process) is folded in too.
        if not self.book.knows(item.fill, item.stored.duplicate):
            self._backlog = [item]
            self._rebuilding = asyncio.ensure_future(self._rebuild(item.fill))
            self._rebuilding.add_done_callback(_report_rebuild_failure)
            return
        effect = self.book.apply(item.fill)
        if effect.rebuilt or effect.position.quantity in (0, item.fill.signed_quantity):
            self._count_positions()
        # ``effect.position`` is the book's position of the pair after this fill.
        self._answer(item, effect.position)

    def _answer(self, item: _Committed, position: Position) -> None:
        if not item.stored.duplicate:
            self._folded_through = max(self._folded_through, item.stored.chain_seq)
        self._outcomes["duplicate" if item.stored.duplicate else "recorded"].inc()
        self._observe_latency(time.perf_counter() - item.started)
        if not item.answer.done():
            item.answer.set_result(Recorded(item.stored, item.fill, item.fees, position))

    async def _rebuild(self, record: Fill) -> None:
        """Rebuild the positions ``record`` touches from the journal, then fold the backlog.

        The book forgot the fill ``record`` names (or cannot tell a fill it forgot from one
        another process stored): the journal has every record of those positions, ``record``
        included. Retried until the database answers; the records committed meanwhile wait in
        order, and those the rebuild already covered are answered without folding them twice.
        """
        targets = [] if record.kind is FillKind.NEW else [record.corrects_key]
        delay = 0.05
        while True:
            try:
                async with self._pool.acquire() as connection:
                    history = await fetch_position_rows(
                        connection,
                        [(record.account, record.symbol)],
                        targets,
                        timeout=self._query_timeout,
                    )
                break
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                log.warning("position rebuild from the journal failed; retrying: %s", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        # Replayed record by record, keeping the position right after each of this process's
        # commits whose record has not been folded yet: those queued behind the rebuild, and
        # those whose callback has not even run (a commit lands before the writer hears back).
        # They are answered with it when their turn comes, and not folded again.
        rebuilt = PositionBook(self._cost_methods, self._default_cost_method)
        chain, through = self.writer.chain_id, self._folded_through
        for row, (chain_id, chain_seq) in zip(history.rows, history.written, strict=True):
            effect = rebuilt.apply(audit.domain_fill(row))
            if chain_id == chain and chain_seq > through:
                self._covered[(row.venue, row.exec_id)] = effect.position
        self.book.adopt(rebuilt, history.positions)
        self._metrics.journal_position_rebuilds.inc(len(history.positions))
        self._count_positions()
        log.info(
            "positions rebuilt from the journal",
            extra={"positions": len(history.positions), "records": len(history.rows)},
        )
        backlog, self._backlog = self._backlog or [], None
        for index, item in enumerate(backlog):
            if self._backlog is not None:  # another rebuild started: the rest waits for it
                self._backlog.extend(backlog[index:])
                return
            if item.stored.duplicate and rebuilt.seen(item.fill.key):
                # Like any duplicate the journal answers: with the position as it is now.
                self._answer(item, self.book.position(item.fill.account, item.fill.symbol))
            else:
                self._fold(item)

    def count_retry(self) -> None:
        """Count a retry the edge answered with its original acknowledgement (a duplicate)."""
        self._outcomes["duplicate"].inc()

    def positions(
        self,
        accounts: Collection[str],
        symbols: Collection[str],
        *,
        include_lots: bool,
        include_flat: bool,
    ) -> list[Position]:
        """Current positions, filtered (empty filter = all), sorted by account and symbol."""
        return [
            p
            for p in self.book.positions(include_flat=include_flat, include_lots=include_lots)
            if (not accounts or p.account in accounts) and (not symbols or p.symbol in symbols)
        ]

    async def verify(self) -> AuditReport:
        """Verify every hash chain of the journal."""
        async with self._pool.acquire() as connection:
            return await audit.verify(connection)

    async def watch_availability(self, changed: Callable[[bool], Awaitable[None]]) -> None:
        """Call ``changed`` with the writer's availability now and after every change."""
        while True:
            self.writer.availability_changed.clear()
            await changed(self.writer.available)
            await self.writer.availability_changed.wait()
