"""Tamper evidence for the journal: canonical row encoding, hash chain links, verification.

Each gateway process writes its own chain (``journal_chains``). A row's hash covers its position
(chain id, chain sequence, journal sequence), every stored column, and the previous row's hash:

    row_hash = SHA-256(prev_hash || canonical(row))

so a changed column, a deleted, inserted or reordered row all break the chain at the first row
concerned, even when a database superuser bypassed the append-only triggers. The first row of a
chain links to 32 zero bytes. Removing the newest rows of a chain is the one change a chain cannot
reveal by itself; the acknowledged sequence numbers held by the OMS can.

Encoding version 1: the fields below, each as UTF-8 text, separated by 0x1F (unit separator, which
no field may contain: ids are printable ASCII, validated at the edge). Decimals are written with
exactly six decimal places; times as integer microseconds since the Unix epoch (UTC).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import asyncpg

if TYPE_CHECKING:
    from storage.journal import FillRow

ENCODING_VERSION = 1
GENESIS_HASH = bytes(32)
_SEPARATOR = "\x1f"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SIX_PLACES = Decimal("0.000001")


def _micros(value: datetime) -> str:
    delta = value - _EPOCH
    return str((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def _money(value: Decimal) -> str:
    return str(value.quantize(_SIX_PLACES))


def canonical(row: FillRow, sequence: int, chain_id: int, chain_seq: int) -> bytes:
    """Encoding version 1 of a stored fill row."""
    return _SEPARATOR.join(
        (
            "1",
            str(chain_id),
            str(chain_seq),
            str(sequence),
            row.trade_date.isoformat(),
            row.venue,
            row.exec_id,
            row.account,
            row.symbol,
            row.side,
            str(row.quantity),
            _money(row.price),
            row.liquidity,
            _micros(row.transaction_time),
            _micros(row.received_at),
            row.client_order_id,
            row.decision_id,
            row.kind,
            row.corrects_exec_id,
            _money(row.commission),
            _money(row.venue_fee),
            _money(row.sec_fee),
            _money(row.finra_taf),
        )
    ).encode()


def link(prev_hash: bytes, row: FillRow, sequence: int, chain_id: int, chain_seq: int) -> bytes:
    """The hash of ``row`` at its place in the chain."""
    return hashlib.sha256(prev_hash + canonical(row, sequence, chain_id, chain_seq)).digest()


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Outcome of a verification; ``first_bad_row`` names the first row that breaks a chain."""

    valid: bool
    rows_checked: int
    chains_checked: int
    first_bad_row: str = ""
    problem: str = ""


async def _rows(connection: asyncpg.Connection) -> AsyncIterator[asyncpg.Record]:
    async with connection.transaction(isolation="repeatable_read", readonly=True):
        async for record in connection.cursor(
            "SELECT * FROM trade_fills ORDER BY chain_id, chain_seq, sequence", prefetch=2000
        ):
            yield record


async def verify(connection: asyncpg.Connection) -> AuditReport:
    """Walk every chain and recompute every hash; stop at the first problem."""
    from storage.journal import ROW_FIELDS, FillRow

    chains = {
        r["chain_id"]: r["encoding"]
        for r in await connection.fetch("SELECT chain_id, encoding FROM journal_chains")
    }
    rows = 0
    seen: set[int] = set()
    chain_id, expected_seq, prev_hash = None, 0, GENESIS_HASH
    async for record in _rows(connection):
        rows += 1
        name = f"trade_fills#{record['sequence']} ({record['venue']}/{record['exec_id']})"
        if record["chain_id"] != chain_id:
            chain_id, expected_seq, prev_hash = record["chain_id"], 0, GENESIS_HASH
            seen.add(chain_id)
            if chains.get(chain_id) != ENCODING_VERSION:
                return AuditReport(False, rows, len(seen), name, f"unknown chain {chain_id}")
        expected_seq += 1
        if record["chain_seq"] != expected_seq:
            problem = (
                f"chain {chain_id} jumps from {expected_seq - 1} to {record['chain_seq']}: "
                "rows deleted or inserted"
                if record["chain_seq"] > expected_seq
                else f"chain {chain_id} repeats position {record['chain_seq']}: row inserted"
            )
            return AuditReport(False, rows, len(seen), name, problem)
        if record["prev_hash"] != prev_hash:
            return AuditReport(
                False, rows, len(seen), name, "previous-row hash does not match: rows changed order"
            )
        row = FillRow(**{field: record[field] for field in ROW_FIELDS})
        computed = link(prev_hash, row, record["sequence"], record["chain_id"], record["chain_seq"])
        if computed != record["row_hash"]:
            return AuditReport(False, rows, len(seen), name, "content does not match its hash")
        prev_hash = record["row_hash"]
    return AuditReport(True, rows, len(seen))
