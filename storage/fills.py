"""Reads of the journaled fills, in journal order (the order positions are folded in)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import date

import asyncpg

from storage.journal import ROW_FIELDS, FillRow

_COLUMNS = f"SELECT {', '.join(ROW_FIELDS)}, sequence"
_SELECT = f"{_COLUMNS} FROM trade_fills"
_CORRECTIONS = "kind <> 'NEW'"
# Rows of the positions given as two parallel arrays (accounts, symbols), by the
# (account, symbol, sequence) index.
_OF_POSITIONS = (
    f"{_COLUMNS}, chain_id, chain_seq FROM trade_fills"
    " WHERE (account, symbol) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
    " ORDER BY sequence"
)
# Where rows with the given keys live (a scan when the key's trade date is unknown; rare).
_POSITIONS_OF_KEYS = (
    "SELECT DISTINCT account, symbol FROM trade_fills"
    " WHERE (venue, exec_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
)
# Where corrections and busts of the given keys live.
_POSITIONS_CORRECTING = (
    "SELECT DISTINCT account, symbol FROM trade_fills"
    f" WHERE {_CORRECTIONS}"
    " AND (venue, corrects_exec_id) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
)

Key = tuple[str, str]


@dataclass(frozen=True, slots=True)
class PositionHistory:
    """Every record of some positions, in journal order, and who wrote each.

    ``written[i]`` is the (chain_id, chain_seq) of ``rows[i]``: the writer's hash chain and its
    place in it, in the order that writer committed.
    """

    rows: list[FillRow]
    positions: set[Key]
    written: list[tuple[int, int]]


def _row(record: asyncpg.Record) -> FillRow:
    return FillRow(**{name: record[name] for name in ROW_FIELDS})


async def fetch_fill_rows(
    connection: asyncpg.Connection, *, up_to: date | None = None, timeout: float = 30.0
) -> tuple[list[FillRow], int]:
    """Every fill with a trade date on or before ``up_to`` (all when None), in sequence order.

    Returns the rows and the highest sequence among them (0 when there are none).
    """
    if up_to is None:
        records = await connection.fetch(f"{_SELECT} ORDER BY sequence", timeout=timeout)
    else:
        records = await connection.fetch(
            f"{_SELECT} WHERE trade_date <= $1 ORDER BY sequence", up_to, timeout=timeout
        )
    rows = [_row(record) for record in records]
    return rows, (records[-1]["sequence"] if records else 0)


async def stream_fill_rows(
    connection: asyncpg.Connection, *, chunk: int = 5000
) -> AsyncIterator[FillRow]:
    """Every fill in sequence order, ``chunk`` rows at a time (memory stays flat)."""
    async with connection.transaction(readonly=True):
        async for record in connection.cursor(f"{_SELECT} ORDER BY sequence", prefetch=chunk):
            yield _row(record)


def _pairs(keys: Collection[tuple[str, str]]) -> tuple[list[str], list[str]]:
    return [k[0] for k in keys], [k[1] for k in keys]


async def fetch_position_rows(
    connection: asyncpg.Connection,
    positions: Collection[Key],
    targets: Collection[Key] = (),
    *,
    timeout: float = 30.0,
) -> PositionHistory:
    """Every record of ``positions`` and of any position linked to them, in sequence order.

    Positions are linked by a correction that moved a fill between them. The set grows (with the
    positions of ``targets``, the (venue, exec_id) keys a correction names) until every correction
    among the rows names a row among them and every row's corrections are among them, so a
    ``PositionBook.replay`` of the rows gives those positions exactly. Runs in one
    repeatable-read snapshot.
    """
    wanted = set(positions)
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        if targets:
            wanted |= await _positions(connection, _POSITIONS_OF_KEYS, targets, timeout)
        while True:
            records = await connection.fetch(_OF_POSITIONS, *_pairs(wanted), timeout=timeout)
            rows = [_row(record) for record in records]
            keys = {(row.venue, row.exec_id) for row in rows}
            named = {
                (row.venue, row.corrects_exec_id)
                for row in rows
                if row.kind != "NEW" and (row.venue, row.corrects_exec_id) not in keys
            }
            linked = await _positions(connection, _POSITIONS_CORRECTING, keys, timeout)
            if named:
                linked |= await _positions(connection, _POSITIONS_OF_KEYS, named, timeout)
            if linked <= wanted:
                written = [(record["chain_id"], record["chain_seq"]) for record in records]
                return PositionHistory(rows, wanted, written)
            wanted |= linked


async def _positions(
    connection: asyncpg.Connection, query: str, keys: Collection[Key], timeout: float
) -> set[Key]:
    if not keys:
        return set()
    found = await connection.fetch(query, *_pairs(keys), timeout=timeout)
    return {(record["account"], record["symbol"]) for record in found}
