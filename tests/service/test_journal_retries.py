"""Retries of fills, the way an OMS resends them: the original acknowledgement comes back."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from gateway._pb.execgw.v1 import common_pb2 as common
from gateway._pb.execgw.v1 import journal_pb2 as pb
from gateway._pb.execgw.v1 import journal_pb2_grpc as pb_grpc
from gateway.server import Gateway
from tests.grpc_errors import decode

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def fill(exec_id: str, n: int, account: str, **changes: object) -> pb.Fill:
    values: dict[str, object] = {
        "venue": "NASDAQ",
        "exec_id": exec_id,
        "account": account,
        "symbol": "MSFT",
        "side": common.SIDE_BUY,
        "quantity": 100,
        "price": "400.00",
        "liquidity": common.LIQUIDITY_ADDED,
    }
    values.update(changes)
    message = pb.Fill(**values)  # type: ignore[arg-type]  # test-only keyword bag
    message.transaction_time.FromDatetime(T0 + timedelta(seconds=n))
    return message


@pytest.fixture
async def stub(gateway: Gateway) -> AsyncIterator[pb_grpc.JournalServiceStub]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
        yield pb_grpc.JournalServiceStub(channel)


async def _record(stub: pb_grpc.JournalServiceStub, message: pb.Fill) -> pb.FillAck:
    answer: pb.RecordFillResponse = await stub.RecordFill(pb.RecordFillRequest(fill=message))
    return answer.ack


async def _quantity(stub: pb_grpc.JournalServiceStub, account: str) -> int:
    answer = await stub.GetPositions(pb.GetPositionsRequest(accounts=[account]))
    return sum(p.quantity for p in answer.positions)


async def test_retry_after_later_fills_then_original_acknowledgement_marked_duplicate(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    first = await _record(stub, fill("R1-1", 1, "RETRY-1"))
    await _record(stub, fill("R1-2", 2, "RETRY-1"))
    again = await _record(stub, fill("R1-1", 1, "RETRY-1"))

    assert again.duplicate and not first.duplicate
    expected = pb.FillAck()
    expected.CopyFrom(first)
    expected.duplicate = True
    assert again == expected  # the position as it was then: 100, not 200
    assert await _quantity(stub, "RETRY-1") == 200  # applied once


async def test_retry_with_changed_content_then_conflict_and_position_untouched(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    await _record(stub, fill("R2-1", 1, "RETRY-2"))
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await _record(stub, fill("R2-1", 1, "RETRY-2", price="400.01"))
    decoded = decode(raised.value)
    assert (decoded.code, decoded.reason) == (grpc.StatusCode.ALREADY_EXISTS, "FILL_CONFLICT")
    assert await _quantity(stub, "RETRY-2") == 100


async def test_stream_resending_fills_then_answers_in_order_new_then_duplicates(
    stub: pb_grpc.JournalServiceStub,
) -> None:
    fills = [fill(f"R3-{n}", n, "RETRY-3") for n in range(50)]
    requests = [
        pb.RecordFillRequest(fill=f, request_id=f"{round_}-{f.exec_id}")
        for round_ in range(2)
        for f in fills
    ]
    answers = [a async for a in stub.RecordFills(iter(requests))]

    assert [a.request_id for a in answers] == [r.request_id for r in requests]
    assert [a.ack.duplicate for a in answers] == [False] * 50 + [True] * 50
    assert [a.ack.sequence for a in answers[50:]] == [a.ack.sequence for a in answers[:50]]
    assert await _quantity(stub, "RETRY-3") == 100 * 50
