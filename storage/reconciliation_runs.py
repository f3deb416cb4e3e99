"""Reconciliation runs: the breaks found and the journal's positions at the reconciled date."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from gateway.domain.positions import Position
from gateway.domain.reconciliation import ReconciliationBreak


@dataclass(frozen=True, slots=True)
class ReconciliationRun:
    """One run as stored."""

    run_id: uuid.UUID
    trade_date: date
    run_at: datetime
    journal_sequence: int
    statement_positions: int
    statement_accounts: int
    breaks: tuple[ReconciliationBreak, ...]
    positions: tuple[Position, ...]


async def store_run(
    connection: asyncpg.Connection, run: ReconciliationRun, *, timeout: float = 30.0
) -> None:
    """Insert the run, its breaks, and its position snapshots with their lots, atomically."""
    async with connection.transaction():
        await connection.execute(
            "INSERT INTO reconciliation_runs (run_id, trade_date, run_at, matched, break_count, "
            "journal_sequence, statement_positions, statement_accounts) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            run.run_id,
            run.trade_date,
            run.run_at,
            not run.breaks,
            len(run.breaks),
            run.journal_sequence,
            run.statement_positions,
            run.statement_accounts,
            timeout=timeout,
        )
        await _copy(
            connection,
            "reconciliation_breaks",
            (
                "run_id",
                "position",
                "kind",
                "account",
                "symbol",
                "expected",
                "actual",
                "difference",
                "detail",
            ),
            [
                (
                    run.run_id,
                    n,
                    b.kind.value,
                    b.account,
                    b.symbol,
                    b.expected,
                    b.actual,
                    b.difference,
                    b.detail,
                )
                for n, b in enumerate(run.breaks)
            ],
            timeout,
        )
        await _copy(
            connection,
            "position_snapshots",
            (
                "run_id",
                "account",
                "symbol",
                "quantity",
                "cost_basis",
                "realized_pnl",
                "cost_method",
            ),
            [
                (
                    run.run_id,
                    p.account,
                    p.symbol,
                    p.quantity,
                    p.cost_basis,
                    p.realized_pnl,
                    p.cost_method.value,
                )
                for p in run.positions
            ],
            timeout,
        )
        await _copy(
            connection,
            "position_lots",
            ("run_id", "account", "symbol", "lot", "quantity", "price", "opened_at"),
            [
                (run.run_id, p.account, p.symbol, n, lot.quantity, lot.price, lot.opened_at)
                for p in run.positions
                for n, lot in enumerate(p.lots)
            ],
            timeout,
        )


async def _copy(
    connection: asyncpg.Connection,
    table: str,
    columns: Sequence[str],
    records: list[tuple[object, ...]],
    timeout: float,
) -> None:
    if records:
        await connection.copy_records_to_table(
            table, records=records, columns=list(columns), timeout=timeout
        )
