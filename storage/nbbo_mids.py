"""NBBO midpoint history (table ``nbbo_mids``), recorded off the hot path, for P&L attribution.

The mid sampler (``gateway.mid_sampler``) hands each changed mid to ``NbboMidRecorder.record_mid``:
a synchronous O(1) append to an in-memory queue. The recorder is the market event recorder's
writer (one owned task, one connection, everything queued since the last write in one COPY and
one transaction, in-doubt batches resolved with ``txid_status``, refused rows isolated, bounded
queue dropping the oldest) with a different table. ``fetch_mids`` reads a window back, with the
last mid before it, so the mid at any moment of the window is known.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg

from storage.market_events import MarketEventRecorder, _Batch, _fetch

COLUMNS = ("symbol", "at", "mid")


@dataclass(frozen=True, slots=True)
class MidRow:
    """The NBBO midpoint of ``symbol`` from ``at`` (the time of the quote that set it)."""

    symbol: str
    at: datetime
    mid: Decimal


class NbboMidRecorder(MarketEventRecorder):
    """The process's recorder of NBBO mids. Start ``run()`` as an owned task; call
    ``record_mid`` only (the inherited ``record_*`` methods belong to other tables)."""

    def record_mid(self, row: MidRow) -> None:
        """Queue ``row``; never blocks. When the queue is full the oldest row is dropped."""
        self._append(row)  # type: ignore[arg-type]  # the base queue holds any row type

    async def _commit(self, connection: asyncpg.Connection, batch: _Batch) -> None:
        rows: list[MidRow] = batch.rows  # type: ignore[assignment]
        records = [(row.symbol, row.at, row.mid) for row in rows]
        await connection.execute("BEGIN")
        # Noted so that a write cut off by a lost connection is resolved, not repeated blindly.
        batch.xid = await connection.fetchval("SELECT txid_current()")
        await connection.copy_records_to_table(
            "nbbo_mids", records=records, columns=COLUMNS, timeout=self._command_timeout
        )
        await connection.execute("COMMIT")


async def fetch_mids(
    connection: asyncpg.Connection,
    *,
    symbols: Sequence[str],
    since: datetime,
    until: datetime,
    timeout: float = 30.0,
) -> list[MidRow]:
    """Return the mids of ``symbols`` recorded from ``since`` to ``until`` (inclusive), and the
    latest one of each symbol before ``since``; by symbol, then time."""
    if not symbols:
        return []
    query = (
        "SELECT symbol, at, mid, id FROM ("
        "  SELECT DISTINCT ON (symbol) symbol, at, mid, id FROM nbbo_mids"
        "  WHERE symbol = ANY($1::text[]) AND at < $2 ORDER BY symbol, at DESC, id DESC"
        ") AS before_window "
        "UNION ALL "
        "SELECT symbol, at, mid, id FROM nbbo_mids "
        "WHERE symbol = ANY($1::text[]) AND at >= $2 AND at <= $3 "
        "ORDER BY symbol, at, id"
    )
    rows = await _fetch(connection, query, list(symbols), since, until, timeout=timeout)
    return [MidRow(row["symbol"], row["at"], row["mid"]) for row in rows]
