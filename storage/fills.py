"""Reads of the journaled fills, in journal order (the order positions are folded in)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass, fields
from datetime import date

import asyncpg

from gateway.domain.fills import Fill, FillKind, Liquidity
from gateway.domain.orders import Side
from storage.journal import ROW_FIELDS, FillRow

_COLUMNS = f"SELECT {', '.join(ROW_FIELDS)}, sequence"
_SELECT = f"{_COLUMNS} FROM trade_fills"
# A restart folds every fill into positions: it reads only a Fill's columns (in its field order)
# and builds the fills directly, about twice as fast as whole rows.
_FILL_COLUMNS = (
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
assert tuple(f.name for f in fields(Fill)) == _FILL_COLUMNS
_SELECT_FILLS = f"SELECT {', '.join(_FILL_COLUMNS)} FROM trade_fills ORDER BY sequence"
_SIDES = {side.value: side for side in Side}
_LIQUIDITY = {flag.value: flag for flag in Liquidity}
_KINDS = {kind.value: kind for kind in FillKind}
_ROW_WIDTH = len(ROW_FIELDS)
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
    # The SELECTs here list ROW_FIELDS first, in order.
    return FillRow(*record[:_ROW_WIDTH])


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


async def stream_fills(connection: asyncpg.Connection, *, chunk: int = 5000) -> AsyncIterator[Fill]:
    """Every journal record as a domain fill, in sequence order, ``chunk`` rows at a time (memory
    stays flat)."""
    sides, flags, kinds = _SIDES, _LIQUIDITY, _KINDS
    async with connection.transaction(readonly=True):
        async for r in connection.cursor(_SELECT_FILLS, prefetch=chunk):
            yield Fill(
                r[0], r[1], r[2], r[3], sides[r[4]], r[5], r[6], flags[r[7]], r[8], r[9], r[10],
                kinds[r[11]], r[12],
            )  # fmt: skip


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
