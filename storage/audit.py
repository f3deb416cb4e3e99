"""Tamper evidence for the journal in the database: stored rows in, the domain's verdict out.

The canonical encoding, the hash links and the verification rules live in one place,
``gateway.domain.audit_chain`` (encoding version 1); this module only converts stored rows to the
domain's ``JournalRow`` and walks the table in a read-only snapshot. A report names the first bad
row as ``trade_fills#<sequence> (<venue>/<exec_id>)``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import asyncpg

from gateway.domain import audit_chain
from gateway.domain.audit_chain import (
    ENCODING_VERSION,
    GENESIS_HASH,
    AuditProblem,
    AuditReport,
    ChainedRow,
    JournalRow,
)
from gateway.domain.fees import FeeBreakdown
from gateway.domain.fills import Fill, FillKind, Liquidity
from gateway.domain.orders import Side

if TYPE_CHECKING:
    from storage.journal import FillRow

__all__ = [
    "ENCODING_VERSION",
    "GENESIS_HASH",
    "AuditProblem",
    "AuditReport",
    "journal_row",
    "link",
    "verify",
]


def domain_fill(row: FillRow) -> Fill:
    """The domain fill a stored row records."""
    return Fill(
        row.venue,
        row.exec_id,
        row.account,
        row.symbol,
        Side(row.side),
        row.quantity,
        row.price,
        Liquidity(row.liquidity),
        row.transaction_time,
        row.client_order_id,
        row.decision_id,
        FillKind(row.kind),
        row.corrects_exec_id,
    )


def domain_fees(row: FillRow) -> FeeBreakdown:
    """The fee columns of a stored row."""
    return FeeBreakdown(row.commission, row.venue_fee, row.sec_fee, row.finra_taf)


def journal_row(
    row: FillRow, sequence: int, chain_id: int, chain_seq: int, fill: Fill | None = None
) -> JournalRow:
    """The domain's view of a stored row at its place in a chain."""
    return JournalRow(
        fill or domain_fill(row),
        domain_fees(row),
        row.trade_date,
        row.received_at,
        sequence,
        chain_id,
        chain_seq,
    )


def link(prev_hash: bytes, row: FillRow, sequence: int, chain_id: int, chain_seq: int) -> bytes:
    """The hash of ``row`` at its place in the chain (``audit_chain.row_hash``)."""
    return audit_chain.row_hash(prev_hash, journal_row(row, sequence, chain_id, chain_seq))


def _name(row: JournalRow) -> str:
    return f"trade_fills#{row.sequence} ({row.fill.venue}/{row.fill.exec_id})"


async def _records(connection: asyncpg.Connection) -> AsyncIterator[asyncpg.Record]:
    async for record in connection.cursor(
        "SELECT * FROM trade_fills ORDER BY chain_id, chain_seq, sequence", prefetch=2000
    ):
        yield record


def _chained(records: list[asyncpg.Record]) -> Iterator[ChainedRow]:
    from storage.journal import ROW_FIELDS, FillRow

    for record in records:
        row = FillRow(**{name: record[name] for name in ROW_FIELDS})
        yield ChainedRow(
            journal_row(row, record["sequence"], record["chain_id"], record["chain_seq"]),
            record["prev_hash"],
            record["row_hash"],
        )


async def verify(connection: asyncpg.Connection) -> AuditReport:
    """Walk every chain in one snapshot and recompute every hash; stop at the first problem."""
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        encodings = {
            r["chain_id"]: r["encoding"]
            for r in await connection.fetch("SELECT chain_id, encoding FROM journal_chains")
        }
        records = [record async for record in _records(connection)]
    return audit_chain.verify_chains(_chained(records), encodings=encodings, name=_name)
