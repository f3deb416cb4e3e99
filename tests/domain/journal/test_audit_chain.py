from __future__ import annotations

import dataclasses
import hashlib
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.domain.audit_chain import (
    GENESIS_HASH,
    AuditProblem,
    ChainedRow,
    ChainHead,
    canonical,
    row_hash,
    verify_chains,
)
from gateway.domain.fees import FeeBreakdown
from tests.domain.journal.trades import T0, fill

FEES = FeeBreakdown(Decimal("0.35"), Decimal("-0.2"), Decimal("0.03"), Decimal("0.10"))


def _chain(chain_id: int, count: int, first_sequence: int = 1, step: int = 1) -> list[ChainedRow]:
    head = ChainHead(chain_id)
    rows = []
    for i in range(count):
        row, head = head.link(
            fill("S", 100 + i, "10.25", exec_id=f"C{chain_id}E{i}"),
            FEES,
            T0 + timedelta(seconds=i),
            first_sequence + i * step,
        )
        rows.append(row)
    return rows


def _relink(row: ChainedRow, prev_hash: bytes, **changes: object) -> ChainedRow:
    """A row forged with valid hashes of its own (as a superuser with the code could)."""
    journal_row = dataclasses.replace(row.row, **changes)  # type: ignore[arg-type]
    return ChainedRow(journal_row, prev_hash, row_hash(prev_hash, journal_row))


def test_canonical_when_encoded_then_compact_versioned_bytes() -> None:
    row = _chain(7, 1)[0]
    fields = canonical(row.row).split(b"\x1f")
    assert fields[:4] == [b"1", b"7", b"1", b"1"]
    assert b"10.250000" in fields and b"SELL" in fields and b"-0.200000" in fields
    assert row.row_hash == hashlib.sha256(GENESIS_HASH + canonical(row.row)).digest()


def test_verify_when_untouched_then_valid_with_counts() -> None:
    report = verify_chains([*_chain(1, 5), *_chain(2, 3)], encodings={1: 1, 2: 1})
    assert (report.valid, report.rows_checked, report.chains_checked) == (True, 8, 2)


def test_verify_when_two_writers_interleave_in_journal_order_then_valid() -> None:
    a, b = _chain(1, 4, first_sequence=1, step=2), _chain(2, 4, first_sequence=2, step=2)
    interleaved = sorted([*a, *b], key=lambda r: r.row.sequence)
    assert verify_chains(interleaved).valid


def test_verify_when_field_changed_then_that_row_named() -> None:
    rows = _chain(1, 6)
    rows[3] = dataclasses.replace(
        rows[3],
        row=dataclasses.replace(
            rows[3].row, fill=dataclasses.replace(rows[3].row.fill, quantity=1)
        ),
    )
    report = verify_chains(rows)
    assert not report.valid
    assert (report.first_bad_row, report.problem) == ("trade_fills#4", AuditProblem.ROW_CHANGED)


def test_verify_when_fee_changed_and_row_rehashed_then_next_row_named() -> None:
    rows = _chain(1, 6)
    changed_fees = dataclasses.replace(FEES, commission=Decimal("0"))
    rows[2] = _relink(rows[2], rows[2].prev_hash, fees=changed_fees)
    report = verify_chains(rows)
    assert (report.first_bad_row, report.problem) == ("trade_fills#4", AuditProblem.LINK_BROKEN)


def test_verify_when_row_deleted_then_row_after_gap_named() -> None:
    rows = _chain(1, 6)
    del rows[2]
    report = verify_chains(rows)
    assert (report.first_bad_row, report.problem) == ("trade_fills#4", AuditProblem.ROW_MISSING)


def test_verify_when_row_deleted_and_rest_renumbered_then_link_broken() -> None:
    rows = _chain(1, 6)
    del rows[2]
    for i in range(2, len(rows)):
        rows[i] = ChainedRow(
            dataclasses.replace(rows[i].row, chain_seq=i + 1), rows[i].prev_hash, rows[i].row_hash
        )
    report = verify_chains(rows)
    assert (report.first_bad_row, report.problem) == ("trade_fills#4", AuditProblem.ROW_CHANGED)


def test_verify_when_row_inserted_at_repeated_position_then_inserted_row_named() -> None:
    rows = _chain(1, 6)
    forged = _relink(rows[2], rows[2].prev_hash, sequence=99, fill=fill("B", 5, "1", exec_id="X"))
    rows.insert(3, forged)
    report = verify_chains(rows)
    assert (report.first_bad_row, report.problem) == (
        "trade_fills#99",
        AuditProblem.ROW_OUT_OF_PLACE,
    )


def test_verify_when_row_inserted_with_own_valid_hash_then_next_row_named() -> None:
    rows = _chain(1, 6)
    forged = _relink(rows[2], rows[1].row_hash, sequence=99, fill=fill("B", 5, "1", exec_id="X"))
    rows[2:2] = [forged]
    for i in range(3, len(rows)):
        rows[i] = ChainedRow(
            dataclasses.replace(rows[i].row, chain_seq=i + 1), rows[i].prev_hash, rows[i].row_hash
        )
    report = verify_chains(rows)
    assert not report.valid and report.first_bad_row == "trade_fills#3"


def test_verify_when_rows_swapped_then_first_moved_row_named() -> None:
    rows = _chain(1, 6)
    rows[1], rows[2] = rows[2], rows[1]
    report = verify_chains(rows)
    assert (report.first_bad_row, report.problem) == ("trade_fills#3", AuditProblem.ROW_MISSING)


def test_verify_when_positions_swapped_in_place_then_first_moved_row_named() -> None:
    rows = _chain(1, 6)
    a, b = rows[1], rows[2]
    rows[1] = ChainedRow(dataclasses.replace(b.row, chain_seq=2), b.prev_hash, b.row_hash)
    rows[2] = ChainedRow(dataclasses.replace(a.row, chain_seq=3), a.prev_hash, a.row_hash)
    report = verify_chains(rows)
    assert (report.first_bad_row, report.problem) == ("trade_fills#3", AuditProblem.ROW_CHANGED)


def test_verify_when_chain_not_registered_then_unknown_chain() -> None:
    report = verify_chains(_chain(5, 2), encodings={1: 1})
    assert report.problem is AuditProblem.UNKNOWN_CHAIN and report.first_bad_row == "trade_fills#1"


def test_verify_when_newest_rows_removed_and_head_anchored_then_head_missing() -> None:
    rows = _chain(1, 5)
    anchor = {1: ChainHead(1, 5, rows[-1].row_hash)}
    assert verify_chains(rows, expected_heads=anchor).valid
    report = verify_chains(rows[:-1], expected_heads=anchor)
    assert report.problem is AuditProblem.HEAD_MISSING


@pytest.mark.parametrize("kind", ["change", "delete", "insert", "reorder"])
@given(data=st.data())
def test_verify_when_any_single_tamper_then_detected_at_or_before_first_affected(
    kind: str, data: st.DataObject
) -> None:
    rows = _chain(1, 8)
    i = data.draw(st.integers(0, 6))
    if kind == "change":
        journal_row = rows[i].row
        rows[i] = ChainedRow(
            dataclasses.replace(
                journal_row, received_at=journal_row.received_at + timedelta(microseconds=1)
            ),
            rows[i].prev_hash,
            rows[i].row_hash,
        )
        expected = rows[i].row.sequence
    elif kind == "delete":
        del rows[i]
        expected = rows[i].row.sequence
    elif kind == "insert":
        # A forged row with a valid hash of its own: the next genuine row repeats its position.
        expected = rows[i + 1].row.sequence
        rows.insert(i + 1, _relink(rows[i], rows[i].row_hash, sequence=500, chain_seq=i + 2))
    else:
        rows[i], rows[i + 1] = rows[i + 1], rows[i]
        expected = rows[i].row.sequence
    report = verify_chains(rows)
    assert not report.valid
    assert report.first_bad_row == f"trade_fills#{expected}"
