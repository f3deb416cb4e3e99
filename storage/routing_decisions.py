"""Routing decisions with their market snapshot, recorded off the hot path; and the reads the
hindsight analysis needs (decisions and the fills linked to them by decision id).

The router hands each decision to ``RoutingDecisionRecorder.record_decision``: a synchronous O(1)
append to an in-memory queue. The recorder is the market event recorder's writer (one owned task,
one connection, everything queued since the last write in one transaction, in-doubt batches
resolved with ``txid_status``, refused rows isolated, bounded queue dropping the oldest) with a
different table and one difference: it lingers ``linger`` seconds before taking a batch, since no
caller waits for a decision record. Rows and JSON are built by the writer task, not the caller.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Protocol

import asyncpg

from storage.market_events import MarketEventRecorder, _Batch, _fetch, _where

# (venue, bid price, bid size, ask price, ask size, quote time): one venue's top of book.
SnapshotQuote = tuple[str, Decimal | None, int, Decimal | None, int, datetime]
# (venue, score, eligible, exclusion codes), in rank order.
RankedVenue = tuple[str, float, bool, tuple[str, ...]]
# (venue, quantity, limit price or None, order type, intermarket sweep, role, expected cost).
ChildRow = tuple[str, int, Decimal | None, str, bool, str, Decimal]


@dataclass(frozen=True, slots=True)
class DecisionRow:
    """One routing decision as stored: what was decided, on which book, at what expected cost."""

    decision_id: str
    decided_at: datetime
    trade_date: date
    symbol: str
    side: str
    order_type: str
    quantity: int
    venue: str
    listing_venue: str
    size_tier: str
    arrival_mid: Decimal | None
    national_best_bid: Decimal | None
    national_best_offer: Decimal | None
    expected_cost_per_share: Decimal
    fallback_from: str
    venue_set_version: int
    latency_ns: int
    ranking: tuple[RankedVenue, ...] = field(hash=False)
    child_orders: tuple[ChildRow, ...] = field(hash=False)
    snapshot: tuple[SnapshotQuote, ...] = field(hash=False)


@dataclass(frozen=True, slots=True)
class LinkedFill:
    """A journal fill carrying a decision id; ``venue_fee`` is the fill's total (rebate < 0)."""

    decision_id: str
    venue: str
    quantity: int
    price: Decimal
    liquidity: str
    venue_fee: Decimal


_SCALARS = (
    *("decision_id", "decided_at", "trade_date", "symbol", "side", "order_type", "quantity"),
    *("venue", "listing_venue", "size_tier", "arrival_mid", "national_best_bid"),
    *("national_best_offer", "expected_cost_per_share", "fallback_from", "venue_set_version"),
    "latency_ns",
)
COLUMNS = (*_SCALARS, "ranking", "child_orders", "snapshot")
# Decisions turned into rows between two turns of the event loop (``_commit``).
ENCODE_CHUNK = 8


def _plain(value: object) -> object:
    """JSON for the values json does not know: decimals as exact strings, times in ISO 8601."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot encode {type(value).__name__} in a routing decision")


def _record(row: DecisionRow) -> tuple[Any, ...]:
    scalars = tuple(getattr(row, name) for name in _SCALARS)
    return (
        *scalars,
        json.dumps(row.ranking, default=_plain),
        json.dumps(row.child_orders, default=_plain),
        json.dumps(row.snapshot, default=_plain),
    )


class DecisionSource(Protocol):
    """A decision whose row is built when it is written: the caller's hot path only queues it."""

    def row(self) -> DecisionRow: ...


class RoutingDecisionRecorder(MarketEventRecorder):
    """The process's recorder of routing decisions. Start ``run()`` as an owned task; call
    ``record_decision`` only (the inherited ``record_*`` methods belong to other tables)."""

    def __init__(self, url: str, *, linger: float = 0.05, **options: Any) -> None:
        super().__init__(url, **options)
        self._linger = linger

    def record_decision(self, row: DecisionRow | DecisionSource) -> None:
        """Queue ``row``; never blocks. When the queue is full the oldest row is dropped."""
        self._append(row)  # type: ignore[arg-type]  # the base queue holds any row type

    async def _write_forever(self) -> None:
        # Unlike a fill, a decision record is acknowledged to nobody: lingering after the first
        # queued row costs no caller anything and turns one transaction per handful of decisions
        # (four round trips each) into one per ``linger`` seconds.
        while True:
            if not self._queue:
                self._waiter = asyncio.get_running_loop().create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
            if self._linger and len(self._queue) < self._max_batch:
                await asyncio.sleep(self._linger)
            await self._write(self._take())

    async def _commit(self, connection: asyncpg.Connection, batch: _Batch) -> None:
        queued: list[DecisionRow | DecisionSource] = batch.rows  # type: ignore[assignment]
        # Rows are built a chunk at a time, the event loop free in between: a lingered batch
        # holds a few dozen decisions, tens of microseconds each, and built in one go it would
        # hold up every RPC that arrives meanwhile by a millisecond or more.
        records: list[tuple[Any, ...]] = []
        for start in range(0, len(queued), ENCODE_CHUNK):
            if start:
                await asyncio.sleep(0)
            records.extend(
                _record(r if isinstance(r, DecisionRow) else r.row())
                for r in queued[start : start + ENCODE_CHUNK]
            )
        await connection.execute("BEGIN")
        # Noted so that a write cut off by a lost connection is resolved, not repeated blindly.
        batch.xid = await connection.fetchval("SELECT txid_current()")
        await connection.copy_records_to_table(
            "routing_decisions", records=records, columns=COLUMNS, timeout=self._command_timeout
        )
        await connection.execute("COMMIT")


def _snapshot(text: str) -> tuple[SnapshotQuote, ...]:
    return tuple(
        (
            venue,
            None if bid is None else Decimal(bid),
            bid_size,
            None if ask is None else Decimal(ask),
            ask_size,
            datetime.fromisoformat(at),
        )
        for venue, bid, bid_size, ask, ask_size, at in json.loads(text)
    )


def _decision(row: asyncpg.Record) -> DecisionRow:
    children = tuple(
        (venue, quantity, None if price is None else Decimal(price), kind, iso, role, Decimal(cost))
        for venue, quantity, price, kind, iso, role, cost in json.loads(row["child_orders"])
    )
    ranking = tuple(
        (venue, score, eligible, tuple(codes))
        for venue, score, eligible, codes in json.loads(row["ranking"])
    )
    return DecisionRow(
        **{name: row[name] for name in _SCALARS},
        ranking=ranking,
        child_orders=children,
        snapshot=_snapshot(row["snapshot"]),
    )


def _range(
    start: date | None,
    end: date | None,
    symbols: Sequence[str],
    decision_ids: Sequence[str] | None = None,
) -> tuple[str, list[Any]]:
    return _where(
        start=("trade_date >= $", start),
        end=("trade_date <= $", end),
        symbols=("symbol = ANY($::text[])", list(symbols) or None),
        decision_ids=(
            "decision_id = ANY($::text[])",
            None if decision_ids is None else list(decision_ids),
        ),
    )


async def fetch_decisions(
    connection: asyncpg.Connection,
    *,
    start: date | None = None,
    end: date | None = None,
    symbols: Sequence[str] = (),
    decision_ids: Sequence[str] | None = None,
    timeout: float = 30.0,
) -> list[DecisionRow]:
    """Return the decisions of trade dates ``start`` to ``end`` (inclusive; None: unbounded),
    oldest first, for ``symbols`` (every symbol when empty) and, when given, with one of
    ``decision_ids`` (P&L attribution asks for the decisions its fills name)."""
    where, args = _range(start, end, symbols, decision_ids)
    query = f"SELECT * FROM routing_decisions{where} ORDER BY decided_at, id"
    rows = await _fetch(connection, query, *args, timeout=timeout)
    return [_decision(row) for row in rows]


async def fetch_linked_fills(
    connection: asyncpg.Connection,
    *,
    start: date,
    end: date,
    symbols: Sequence[str] = (),
    timeout: float = 30.0,
) -> list[LinkedFill]:
    """Return the fills that carry the id of a decision in the range, as they stand: busts and
    the fills a correction replaced are left out, the corrections are in."""
    where, args = _range(start, end, symbols)
    query = (
        "SELECT f.decision_id, f.venue, f.quantity, f.price, f.liquidity, f.venue_fee "
        "FROM trade_fills f WHERE f.kind <> 'BUST' AND f.decision_id IN "
        f"(SELECT decision_id FROM routing_decisions{where}) "
        "AND NOT EXISTS (SELECT 1 FROM trade_fills c WHERE c.kind IN ('CORRECTION', 'BUST') "
        "AND c.venue = f.venue AND c.corrects_exec_id = f.exec_id) "
        "ORDER BY f.sequence"
    )
    rows = await _fetch(connection, query, *args, timeout=timeout)
    return [LinkedFill(*row.values()) for row in rows]
