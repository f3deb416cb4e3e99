"""Tamper evidence for the journal: canonical row encoding, SHA-256 hash chains, verification.

Chaining scheme. Every writer (one per gateway process, or per partition key) owns a chain, named by
an integer ``chain_id`` registered with its encoding version. Its rows are numbered ``chain_seq``
1, 2, 3... and each carries the previous row's hash and its own:

    row_hash = SHA-256(prev_hash || canonical(row))        (the first row links to 32 zero bytes)

``canonical`` covers the row's place (chain id, chain position, journal sequence) and every stored
column, so a changed column, a deleted row (a gap in ``chain_seq``), an inserted row (a repeated
position, or a link that no longer matches) and reordered rows (a row that hashes differently at its
new place) all break the chain at the first row concerned, even if a database superuser bypassed the
append-only triggers. Several processes writing to one database never share a chain, so each keeps a
valid one without coordination. Two limits: removing the newest rows of a chain is invisible
unless the head (last position and hash) is anchored elsewhere (``verify_chains(expected_heads=)``,
or the sequences the OMS holds in its acknowledgements); and someone who rewrites a whole chain
from the changed row on is only caught by such an anchor.

Canonical encoding, version 1 (byte-identical to ``storage.audit`` version 1): the fields below as
UTF-8 text joined by 0x1F (unit separator; ``validate_fill`` refuses control characters in text
fields, so no field contains it). Decimals with exactly six places; times as integer microseconds
since the Unix epoch (UTC); the trade date as ISO ``YYYY-MM-DD``; enums by their value.

    "1", chain_id, chain_seq, sequence, trade_date, venue, exec_id, account, symbol, side,
    quantity, price, liquidity, transaction_time, received_at, client_order_id, decision_id,
    kind, corrects_exec_id, commission, venue_fee, sec_fee, finra_taf

No JSON: a join and one hash cost about 3 us per fill (``benchmarks/bench_journal_domain.py``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from gateway.domain.fees import FeeBreakdown
from gateway.domain.fills import Fill
from gateway.domain.vocabulary import Vocabulary

ENCODING_VERSION = 1
GENESIS_HASH = bytes(32)
_SEPARATOR = "\x1f"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_SIX_PLACES = Decimal("0.000001")
_sha256 = hashlib.sha256


@dataclass(frozen=True, slots=True)
class JournalRow:
    """A fill at its place in the journal: content, fees, receive time and chain position."""

    fill: Fill
    fees: FeeBreakdown
    trade_date: date
    received_at: datetime
    sequence: int
    chain_id: int
    chain_seq: int


@dataclass(frozen=True, slots=True)
class ChainedRow:
    """A journal row with the hashes stored beside it."""

    row: JournalRow
    prev_hash: bytes
    row_hash: bytes


def canonical(row: JournalRow) -> bytes:
    """Encoding version 1 of ``row`` (see the module docstring)."""
    fill = row.fill
    fees = row.fees
    return _SEPARATOR.join(
        (
            "1",
            str(row.chain_id),
            str(row.chain_seq),
            str(row.sequence),
            row.trade_date.isoformat(),
            fill.venue,
            fill.exec_id,
            fill.account,
            fill.symbol,
            fill.side.value,
            str(fill.quantity),
            str(fill.price.quantize(_SIX_PLACES)),
            fill.liquidity.value,
            str((fill.transaction_time - _EPOCH) // _MICROSECOND),
            str((row.received_at - _EPOCH) // _MICROSECOND),
            fill.client_order_id,
            fill.decision_id,
            fill.kind.value,
            fill.corrects_exec_id,
            str(fees.commission.quantize(_SIX_PLACES)),
            str(fees.venue_fee.quantize(_SIX_PLACES)),
            str(fees.sec_fee.quantize(_SIX_PLACES)),
            str(fees.finra_taf.quantize(_SIX_PLACES)),
        )
    ).encode()


def row_hash(prev_hash: bytes, row: JournalRow) -> bytes:
    """Return SHA-256(prev_hash || canonical(row))."""
    return _sha256(prev_hash + canonical(row)).digest()


@dataclass(frozen=True, slots=True)
class ChainHead:
    """The newest link of one chain; ``chain_seq`` 0 and the genesis hash before the first row."""

    chain_id: int
    chain_seq: int = 0
    row_hash: bytes = GENESIS_HASH

    def link(
        self,
        fill: Fill,
        fees: FeeBreakdown,
        received_at: datetime,
        sequence: int,
        trade_date: date | None = None,
    ) -> tuple[ChainedRow, ChainHead]:
        """Return the next row of the chain and the new head (adopt it once the row is stored).

        ``trade_date`` defaults to the fill's exchange-time date.
        """
        seq = self.chain_seq + 1
        day = fill.trade_date if trade_date is None else trade_date
        row = JournalRow(fill, fees, day, received_at, sequence, self.chain_id, seq)
        digest = _sha256(self.row_hash + canonical(row)).digest()
        return ChainedRow(row, self.row_hash, digest), ChainHead(self.chain_id, seq, digest)


class AuditProblem(Vocabulary):
    """Why a chain is broken (stable reason codes)."""

    ROW_CHANGED = "AUDIT_ROW_CHANGED"
    ROW_MISSING = "AUDIT_ROW_MISSING"
    ROW_OUT_OF_PLACE = "AUDIT_ROW_OUT_OF_PLACE"
    LINK_BROKEN = "AUDIT_LINK_BROKEN"
    UNKNOWN_CHAIN = "AUDIT_UNKNOWN_CHAIN"
    HEAD_MISSING = "AUDIT_HEAD_MISSING"


@dataclass(frozen=True, slots=True)
class AuditReport:
    """Outcome of a verification; ``first_bad_row`` names the first row that breaks a chain."""

    valid: bool
    rows_checked: int
    chains_checked: int
    first_bad_row: str = ""
    problem: AuditProblem | None = None
    detail: str = ""


def default_row_name(row: JournalRow) -> str:
    """Name a row the way the API reports it: ``trade_fills#<sequence>``."""
    return f"trade_fills#{row.sequence}"


def _check_link(stored: ChainedRow, last_seq: int, prev: bytes) -> tuple[AuditProblem, str] | None:
    row = stored.row
    chain = row.chain_id
    if row.chain_seq > last_seq + 1:
        missing = f"{last_seq + 1}..{row.chain_seq - 1}"
        return AuditProblem.ROW_MISSING, f"chain {chain} positions {missing} are missing"
    if row.chain_seq <= last_seq:
        return (
            AuditProblem.ROW_OUT_OF_PLACE,
            f"chain {chain} position {row.chain_seq} after {last_seq}: row inserted or moved",
        )
    if _sha256(stored.prev_hash + canonical(row)).digest() != stored.row_hash:
        return AuditProblem.ROW_CHANGED, "content does not match its hash"
    if stored.prev_hash != prev:
        return (
            AuditProblem.LINK_BROKEN,
            f"previous hash differs from chain {chain} position {last_seq}: "
            "a row was inserted, removed or moved before it",
        )
    return None


def verify_chains(
    rows: Iterable[ChainedRow],
    *,
    encodings: Mapping[int, int] | None = None,
    expected_heads: Mapping[int, ChainHead] | None = None,
    name: Callable[[JournalRow], str] = default_row_name,
) -> AuditReport:
    """Recompute every link and stop at the first problem.

    Args:
        rows: stored rows; each chain's rows in ascending ``chain_seq`` (chains may interleave,
            e.g. ``ORDER BY chain_id, chain_seq`` or journal order).
        encodings: registered chains and their encoding versions; a row of a chain not listed,
            or of another encoding, is refused. ``None`` accepts every chain at version 1.
        expected_heads: heads anchored outside the database; the newest row of each chain must
            match (reveals removed newest rows).
        name: how to name a row in the report.
    """
    heads: dict[int, tuple[int, bytes]] = {}
    checked = 0
    for stored in rows:
        checked += 1
        chain = stored.row.chain_id
        head = heads.get(chain)
        if head is None:
            head = (0, GENESIS_HASH)
            if encodings is not None and encodings.get(chain) != ENCODING_VERSION:
                problem = (AuditProblem.UNKNOWN_CHAIN, f"chain {chain} is not registered")
                return AuditReport(False, checked, len(heads) + 1, name(stored.row), *problem)
            heads[chain] = head
        found = _check_link(stored, *head)
        if found is not None:
            return AuditReport(False, checked, len(heads), name(stored.row), *found)
        heads[chain] = (stored.row.chain_seq, stored.row_hash)
    for chain, anchor in sorted((expected_heads or {}).items()):
        seen_seq, seen_hash = heads.get(chain, (0, GENESIS_HASH))
        if (seen_seq, seen_hash) != (anchor.chain_seq, anchor.row_hash):
            return AuditReport(
                False,
                checked,
                len(heads),
                f"chain {chain} position {anchor.chain_seq}",
                AuditProblem.HEAD_MISSING,
                f"chain {chain} ends at position {seen_seq}, anchored head is {anchor.chain_seq}",
            )
    return AuditReport(True, checked, len(heads))
