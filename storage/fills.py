"""Reads of the journaled fills, in journal order (the order positions are folded in)."""

from __future__ import annotations

from datetime import date

import asyncpg

from storage.journal import ROW_FIELDS, FillRow

_SELECT = f"SELECT {', '.join(ROW_FIELDS)}, sequence FROM trade_fills"


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
    rows = [FillRow(**{name: record[name] for name in ROW_FIELDS}) for record in records]
    return rows, (records[-1]["sequence"] if records else 0)
