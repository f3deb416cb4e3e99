"""Positions stay exact when the gateway keeps only a short history of fills in memory.

A correction or bust of a fill the gateway has forgotten, a correction that moves a fill to another
account, and an OMS retry of a forgotten fill each rebuild the positions concerned from the
journal. The reference is a restart that keeps every fill (``position_history=0``): the journal
replayed whole.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import grpc

from gateway._pb.execgw.v1 import common_pb2 as common
from gateway._pb.execgw.v1 import journal_pb2 as pb
from gateway._pb.execgw.v1 import journal_pb2_grpc as pb_grpc
from gateway.api.journal_convert import fill_from_proto
from gateway.domain.positions import PositionBook
from tests.conftest import gateway_settings, serving
from tests.service.test_journal_service import fill, positions, record

SELL = common.SIDE_SELL
CORRECTION, BUST = pb.FILL_KIND_CORRECTION, pb.FILL_KIND_BUST


async def _replayed_whole(
    database_url: str, tmp_path: Path, **settings: object
) -> list[pb.Position]:
    reference = gateway_settings(database_url, tmp_path, **(settings | {"position_history": 0}))
    async with (
        serving(reference) as running,
        grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel,
    ):
        stub = pb_grpc.JournalServiceStub(channel)
        return await positions(stub, include_flat=True, include_lots=True)


async def test_amendments_of_forgotten_fills_then_positions_equal_the_whole_journal(
    database_url: str, tmp_path: Path
) -> None:
    settings = gateway_settings(database_url, tmp_path, position_history=3, cost_method="fifo")
    async with (
        serving(settings) as gateway,
        grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel,
    ):
        stub = pb_grpc.JournalServiceStub(channel)
        await record(stub, fill(1, quantity=300, price="10.00"))
        await record(stub, fill(2, quantity=200, price="11.00"))
        await record(stub, fill(3, quantity=100, price="12.00"))
        await record(stub, fill(4, side=SELL, quantity=250, price="13.00"))
        for n in range(5, 11):  # other positions push E1-E4 out of memory
            await record(stub, fill(n, account="ACC-9", symbol="MSFT", price="400"))
        assert gateway.journal.book.kept() == 3

        corrected = await record(
            stub, fill(11, kind=CORRECTION, corrects_exec_id="E1", quantity=280, price="9.90")
        )
        # Lots left: E1 280 @ 9.90 took 250 of the sale... 30 @ 9.90, 200 @ 11, 100 @ 12.
        assert corrected.position.quantity == 330
        bust = await record(stub, fill(12, kind=BUST, corrects_exec_id="E2"))
        assert bust.position.quantity == 130
        retry = await record(stub, fill(1, quantity=300, price="10.00"))  # original E1 again
        assert retry.duplicate and retry.sequence == 1  # the original acknowledgement
        moved = await record(
            stub, fill(13, kind=CORRECTION, corrects_exec_id="E3", account="ACC-2")
        )
        assert moved.position.account == "ACC-2" and moved.position.quantity == 100
        for n in range(14, 20):
            await record(stub, fill(n, account="ACC-9", symbol="MSFT", price="401"))
        # A correction of the moved correction, both forgotten: ACC-2 is rebuilt with ACC-1.
        again = await record(
            stub,
            fill(20, kind=CORRECTION, corrects_exec_id="E13", account="ACC-2", quantity=40),
        )
        assert again.position.quantity == 40
        live = await positions(stub, include_flat=True, include_lots=True)
    whole = await _replayed_whole(database_url, tmp_path, cost_method="fifo")
    assert live == whole
    held = {(p.account, p.symbol): p.quantity for p in whole}
    assert held == {("ACC-1", "AAPL"): 30, ("ACC-2", "AAPL"): 40, ("ACC-9", "MSFT"): 1200}

    # A restart that keeps only 3 fills replays corrections and busts of fills it has already
    # forgotten by then: the positions are the whole journal's from the start. Then retries of
    # forgotten fills are duplicates from the journal itself: the positions they name are
    # rebuilt, and nothing counts twice.
    async with (
        serving(settings) as restarted,
        grpc.aio.insecure_channel(f"127.0.0.1:{restarted.port}") as channel,
    ):
        stub = pb_grpc.JournalServiceStub(channel)
        assert await positions(stub, include_flat=True, include_lots=True) == whole
        first = await record(stub, fill(5, account="ACC-9", symbol="MSFT", price="400"))
        assert first.duplicate and first.position.quantity == 1200
        second = await record(stub, fill(4, side=SELL, quantity=250, price="13.00"))
        assert second.duplicate and second.position.quantity == 30
        assert await positions(stub, include_flat=True, include_lots=True) == whole


async def test_stream_with_amendments_of_forgotten_fills_in_flight_then_every_fill_once(
    database_url: str, tmp_path: Path
) -> None:
    """Fills committed while a rebuild reads the journal wait for it, in order, and count once."""
    settings = gateway_settings(database_url, tmp_path, position_history=5)
    requests = []
    for n in range(1, 401):
        account = f"ACC-{n % 4}"
        if n > 50 and n % 25 == 0:  # correct a fill of the same account 40 fills back
            requests.append(
                fill(n, account=account, kind=CORRECTION, corrects_exec_id=f"E{n - 40}", quantity=7)
            )
        elif n > 50 and n % 37 == 0:
            requests.append(fill(n, account=account, kind=BUST, corrects_exec_id=f"E{n - 44}"))
        else:
            side = SELL if n % 3 == 0 else common.SIDE_BUY
            requests.append(fill(n, account=account, side=side, price=f"{100 + n % 7}.00"))
    async with (
        serving(settings) as gateway,
        grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel,
    ):
        stub = pb_grpc.JournalServiceStub(channel)
        answers = [
            answer
            async for answer in stub.RecordFills(
                pb.RecordFillRequest(fill=f, request_id=f.exec_id) for f in requests
            )
        ]
        assert [a.WhichOneof("result") for a in answers] == ["ack"] * len(requests)
        assert gateway.journal.book.kept() <= 5
        live = await positions(stub, include_flat=True, include_lots=True)
    assert live == await _replayed_whole(database_url, tmp_path)
    # Each acknowledgement carries the position right after its record, in journal order.
    journal = PositionBook()
    for answer in sorted(answers, key=lambda a: a.ack.sequence):
        effect = journal.apply(fill_from_proto(answer.ack.fill, datetime.now(UTC)))
        got = answer.ack.position
        assert (got.account, got.symbol, got.quantity) == (
            effect.position.account,
            effect.position.symbol,
            effect.position.quantity,
        ), answer.request_id
