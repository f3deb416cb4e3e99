"""RecordFillBatches: many fills per message, one answer per batch after its commits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import grpc

from gateway._pb.execgw.v1 import common_pb2 as common
from gateway._pb.execgw.v1 import journal_pb2 as pb
from gateway._pb.execgw.v1 import journal_pb2_grpc as pb_grpc
from gateway.api.journal import MAX_BATCH
from gateway.server import Gateway
from tests.service.test_journal_service import fill, gateway, positions, stub

__all__ = ["gateway", "stub"]  # the fixtures this module shares


def batch(batch_id: str, fills: Iterable[pb.Fill]) -> pb.RecordFillBatch:
    return pb.RecordFillBatch(
        batch_id=batch_id,
        fills=[pb.RecordFillRequest(fill=f, request_id=f.exec_id) for f in fills],
    )


async def send(
    stub: pb_grpc.JournalServiceStub, batches: list[pb.RecordFillBatch]
) -> list[pb.RecordFillBatchResponse]:
    async def requests() -> AsyncIterator[pb.RecordFillBatch]:
        for b in batches:
            yield b

    return [answer async for answer in stub.RecordFillBatches(requests())]


async def test_batches_then_one_answer_each_in_order_with_every_fill_acknowledged(
    stub: pb_grpc.JournalServiceStub, gateway: Gateway
) -> None:
    batches = [batch(f"b{b}", (fill(b * 100 + n) for n in range(100))) for b in range(5)]
    answers = await send(stub, batches)
    assert [a.batch_id for a in answers] == ["b0", "b1", "b2", "b3", "b4"]
    results = [r for a in answers for r in a.results]
    assert [r.request_id for r in results] == [f"E{n}" for n in range(500)]
    assert all(r.WhichOneof("result") == "ack" for r in results)
    sequences = [r.ack.sequence for r in results]
    assert sequences == sorted(sequences) and len(set(sequences)) == 500
    assert results[-1].ack.position.quantity == 50_000
    # Acknowledged means committed: the writer stored every one.
    assert gateway.journal.writer.rows_written == 500
    (held,) = await positions(stub)
    assert held.quantity == 50_000


async def test_bad_fill_in_a_batch_then_its_result_is_the_error_and_the_rest_recorded(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    bad = fill(2, price="-1")
    (answer,) = await send(stub, [batch("b", [fill(1), bad, fill(3)])])
    kinds = [r.WhichOneof("result") for r in answer.results]
    assert kinds == ["ack", "error", "ack"]
    error = answer.results[1].error
    assert (error.status, error.reason) == ("INVALID_ARGUMENT", "INVALID_FILL")
    assert [v.field for v in error.field_violations] == ["fill.price"]
    assert answer.results[2].ack.position.quantity == 200


async def test_empty_or_oversized_batch_then_refused_whole_and_the_stream_continues(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    too_many = batch("big", (fill(n) for n in range(MAX_BATCH + 1)))
    answers = await send(stub, [batch("empty", []), too_many, batch("ok", [fill(5000)])])
    empty, big, ok = answers
    assert (empty.error.reason, empty.error.field_violations[0].field) == ("INVALID_BATCH", "fills")
    assert big.error.field_violations[0].description == f"has {MAX_BATCH + 1} fills (at most 1000)"
    assert not empty.results and not big.results
    assert ok.results[0].ack.position.quantity == 100  # nothing of the refused batch recorded


async def test_fill_sent_again_in_a_later_batch_then_the_original_ack_marked_duplicate(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    first, again = await send(
        stub,
        [batch("1", [fill(1), fill(2, side=common.SIDE_SELL)]), batch("2", [fill(1), fill(3)])],
    )
    original = first.results[0].ack
    repeat = again.results[0].ack
    assert repeat.duplicate and repeat.sequence == original.sequence
    assert again.results[1].ack.position.quantity == 100


async def test_changed_content_under_a_recorded_exec_id_then_conflict_in_its_result(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    (answer,) = await send(stub, [batch("1", [fill(1)])])
    (conflict,) = await send(stub, [batch("2", [fill(1, quantity=999)])])
    assert conflict.results[0].error.status == grpc.StatusCode.ALREADY_EXISTS.name
    assert answer.results[0].ack.position.quantity == 100
