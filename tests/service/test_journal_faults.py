"""The trade journal's faults over gRPC: PostgreSQL killed under load, two gateways on one database.

Both tests act as an OMS does: a fill answered UNAVAILABLE is sent again, the same fill, until it is
acknowledged; a fill may be sent to two gateways (a retry to another replica).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway._pb.execgw.v1 import common_pb2 as common
from gateway._pb.execgw.v1 import journal_pb2 as pb
from gateway._pb.execgw.v1 import journal_pb2_grpc as pb_grpc
from gateway.server import Gateway
from tests.conftest import gateway_settings, migrated

T0 = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


def fill(exec_id: str, n: int, *, price: str = "100.00", quantity: int = 100) -> pb.Fill:
    message = pb.Fill(
        venue="NASDAQ",
        exec_id=exec_id,
        account="ACC-1",
        symbol="AAPL",
        side=common.SIDE_BUY,
        quantity=quantity,
        price=price,
        liquidity=common.LIQUIDITY_REMOVED,
        client_order_id="ord-1",
    )
    message.transaction_time.FromDatetime(T0 + timedelta(milliseconds=n))
    return message


async def _stored_sequences(url: str) -> dict[str, list[int]]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT exec_id, sequence FROM trade_fills")
    finally:
        await connection.close()
    found: dict[str, list[int]] = {}
    for row in rows:
        found.setdefault(row["exec_id"], []).append(row["sequence"])
    return found


async def _health_is(channel: grpc.aio.Channel, status: int, timeout: float) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    async with asyncio.timeout(timeout):
        while True:
            try:
                answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if answer.status == status:
                    return
            except grpc.aio.AioRpcError:
                pass
            await asyncio.sleep(0.05)


async def _serving(channel: grpc.aio.Channel, timeout: float) -> None:
    await _health_is(channel, health_pb2.HealthCheckResponse.SERVING, timeout)


# --- PostgreSQL killed under load ---------------------------------------------------------------


_PG_HELPER = """
import sys, warnings
warnings.simplefilter("ignore")
from pgserver import get_server
from pgserver._commands import pg_ctl
action, folder = sys.argv[1:3]
# cleanup_mode=None: this short-lived process leaving must not stop the server.
server = get_server(folder, cleanup_mode=None)  # starts the server when it is not running
if action == "start":
    print(server.get_uri("postgres"))
elif action in ("crash", "stop"):
    # Immediate mode: the postmaster and its backends quit at once, no checkpoint; the next
    # start replays the WAL, as after a power cut.
    pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=server.pgdata, user=server.system_user)
"""


class _CrashablePostgres:
    """A PostgreSQL server of the test's own, from pgserver's binaries, killed and restarted.

    Driven from a helper process: pgserver runs pg_ctl as another user, and a process that
    forks while gRPC's threads run (this test's) can crash in the child.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder / "data"

    def _run(self, action: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", _PG_HELPER, action, str(self.folder)],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, f"PostgreSQL {action} failed: {done.stderr}"
        return done.stdout.strip()

    def start(self) -> str:
        return self._run("start")

    def crash(self) -> None:
        self._run("crash")

    def restart(self) -> None:
        self._run("restart")

    def stop(self) -> None:
        self._run("stop")


class _Oms:
    """Load that retries every UNAVAILABLE fill until it is acknowledged, and keeps score."""

    def __init__(self, stub: pb_grpc.JournalServiceStub) -> None:
        self.stub = stub
        self.acknowledged: dict[str, int] = {}  # exec id -> acknowledged sequence
        self.unavailable = 0
        self.other_errors: list[str] = []
        self.stop = asyncio.Event()

    def _refused(self, code: str) -> None:
        if code == UNAVAILABLE.name:
            self.unavailable += 1
        else:
            self.other_errors.append(code)

    async def unary(self, worker: int) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            exec_id = f"U{worker}-{n}"
            message = fill(exec_id, n)
            while True:
                try:
                    answer = await self.stub.RecordFill(
                        pb.RecordFillRequest(fill=message), timeout=5
                    )
                except grpc.aio.AioRpcError as error:
                    self._refused(error.code().name)
                    await asyncio.sleep(0.02)
                    continue
                self.acknowledged[exec_id] = answer.ack.sequence
                break

    async def stream(self, worker: int, batch: int = 64) -> None:
        n = 0
        retry: list[tuple[str, pb.Fill]] = []
        while not self.stop.is_set() or retry:
            todo, retry = retry, []
            while len(todo) < batch and not self.stop.is_set():
                n += 1
                exec_id = f"S{worker}-{n}"
                todo.append((exec_id, fill(exec_id, n)))
            requests = [pb.RecordFillRequest(fill=m, request_id=e) for e, m in todo]
            try:
                async for answer in self.stub.RecordFills(iter(requests), timeout=5):
                    if answer.WhichOneof("result") == "ack":
                        self.acknowledged[answer.request_id] = answer.ack.sequence
                    else:
                        self._refused(answer.error.status)
                        retry.append(next(t for t in todo if t[0] == answer.request_id))
            except grpc.aio.AioRpcError as error:
                self._refused(error.code().name)
                retry = [t for t in todo if t[0] not in self.acknowledged]
            if retry:
                await asyncio.sleep(0.02)


def _server_folder() -> Path:
    # Not pytest's tmp_path: the server runs as another user, and pytest may tidy that folder
    # (permissions included) while a concurrent session starts.
    folder = Path(tempfile.mkdtemp(prefix="execgw-crash-"))
    folder.chmod(0o755)
    return folder


@pytest.mark.slow
async def test_postgres_killed_under_record_fill_load_then_unavailable_and_no_ack_lost() -> None:
    folder = _server_folder()
    postgres = _CrashablePostgres(folder)
    tmp_path = folder / "gateway"
    url = await asyncio.to_thread(postgres.start)
    try:
        await migrated(url)
        gateway = Gateway(gateway_settings(url, tmp_path, db_connect_timeout_seconds=2.0))
        await gateway.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as channel:
                oms = _Oms(pb_grpc.JournalServiceStub(channel))
                load = [asyncio.create_task(oms.unary(w)) for w in range(8)]
                load += [asyncio.create_task(oms.stream(w)) for w in range(2)]
                # Three crashes: each finds a COPY in flight or not, by chance; an
                # acknowledgement given before its commit would be lost in one of them.
                cycles = []
                for cycle in range(3):
                    await asyncio.sleep(0.7)
                    acknowledged_before = len(oms.acknowledged)
                    await asyncio.to_thread(postgres.crash)
                    refused_before = oms.unavailable
                    await _health_is(
                        channel, health_pb2.HealthCheckResponse.NOT_SERVING, timeout=10
                    )
                    with pytest.raises(grpc.aio.AioRpcError) as raised:
                        await oms.stub.RecordFill(
                            pb.RecordFillRequest(fill=fill(f"DOWN-U{cycle}", 0))
                        )
                    down_stream = [
                        a.error.status
                        async for a in oms.stub.RecordFills(
                            iter([pb.RecordFillRequest(fill=fill(f"DOWN-S{cycle}", 0))]),
                            timeout=5,
                        )
                    ]
                    await asyncio.sleep(0.3)
                    refused_while_down = oms.unavailable - refused_before
                    await asyncio.to_thread(postgres.restart)
                    # No operator action: the gateway reconnects by itself and serves again.
                    await _serving(channel, timeout=15)
                    cycles.append(
                        (
                            acknowledged_before > 0,
                            raised.value.code(),
                            down_stream,
                            refused_while_down > 0,
                        )
                    )
                after_restart = len(oms.acknowledged)
                await asyncio.sleep(0.5)
                oms.stop.set()
                async with asyncio.timeout(15):
                    await asyncio.gather(*load)
                positions = await oms.stub.GetPositions(pb.GetPositionsRequest(accounts=["ACC-1"]))
                audit = await oms.stub.VerifyAuditTrail(pb.VerifyAuditTrailRequest())
        finally:
            await gateway.stop()
        stored = await _stored_sequences(url)
    finally:
        await asyncio.to_thread(postgres.stop)
        shutil.rmtree(folder, ignore_errors=True)

    # Each time: load before the crash, UNAVAILABLE (unary and on the stream) while down, and
    # UNAVAILABLE answers to the load.
    assert cycles == [(True, UNAVAILABLE, [UNAVAILABLE.name], True)] * 3
    assert oms.other_errors == [], "refusals other than UNAVAILABLE"
    assert len(oms.acknowledged) > after_restart, "nothing was acknowledged after the restart"
    missing = {e: s for e, s in oms.acknowledged.items() if stored.get(e) != [s]}
    assert missing == {}, "acknowledged fills missing or stored under another sequence"
    # Every fill the OMS sent was acknowledged in the end, so nothing else is stored either.
    assert set(stored) == set(oms.acknowledged)
    assert [(p.symbol, p.quantity) for p in positions.positions] == [
        ("AAPL", 100 * len(oms.acknowledged))
    ]
    assert audit.valid, audit.problem


# --- two gateway processes on one database ------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _gateway_process(url: str, folder: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECGW_")}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "gateway", "serve", "--grpc-port", str(port)),
            *("--metrics-port", "-1", "--database-url", url, "--log-level", "WARNING"),
            *("--data-dir", str(folder / "unused-pgdata")),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, port


async def _record_all(
    stub: pb_grpc.JournalServiceStub, fills: Iterable[pb.Fill]
) -> dict[str, pb.FillAck]:
    requests = [pb.RecordFillRequest(fill=f, request_id=f.exec_id) for f in fills]
    acks = {}
    async for answer in stub.RecordFills(iter(requests), timeout=15):
        assert answer.WhichOneof("result") == "ack", answer.error
        acks[answer.request_id] = answer.ack
    return acks


@pytest.fixture
async def two_gateways(
    database_url: str, tmp_path: Path
) -> AsyncIterator[list[pb_grpc.JournalServiceStub]]:
    await migrated(database_url)  # once, before two processes race to migrate
    started = [await _gateway_process(database_url, tmp_path / str(i)) for i in range(2)]
    try:
        async with (
            grpc.aio.insecure_channel(f"127.0.0.1:{started[0][1]}") as first,
            grpc.aio.insecure_channel(f"127.0.0.1:{started[1][1]}") as second,
        ):
            for channel in (first, second):
                await _serving(channel, timeout=30)
            yield [pb_grpc.JournalServiceStub(first), pb_grpc.JournalServiceStub(second)]
    finally:
        for process, _ in started:
            process.terminate()
        for process, _ in started:
            process.wait(10)


@pytest.mark.slow
async def test_two_gateways_recording_overlapping_fills_then_each_stored_once_positions_exact(
    two_gateways: list[pb_grpc.JournalServiceStub], database_url: str, tmp_path: Path
) -> None:
    first, second = two_gateways
    # 600 fills at varied prices; the OMS sends every one to both gateways at once (a retry to
    # the other replica), plus unary retries of some to each.
    fills = [
        fill(f"X{n}", n, price=f"{100 + n % 37}.{n % 100:02d}", quantity=1 + n % 9)
        for n in range(600)
    ]
    retried = [(first, f) for f in fills[::7]] + [(second, f) for f in fills[3::11]]
    acks_first, acks_second, *unary = await asyncio.gather(
        # Each starts with a different half, so both write (and race on the other half).
        _record_all(first, fills),
        _record_all(second, fills[300:] + fills[:300]),
        *(stub.RecordFill(pb.RecordFillRequest(fill=f), timeout=15) for stub, f in retried),
    )

    stored = await _stored_sequences(database_url)
    assert {e: len(s) for e, s in stored.items()} == {f.exec_id: 1 for f in fills}
    for exec_id, (sequence,) in stored.items():
        assert acks_first[exec_id].sequence == acks_second[exec_id].sequence == sequence
    # Of all the answers about a fill, exactly one recorded it; the others are duplicates of it.
    answers: dict[str, list[pb.FillAck]] = {}
    for ack in [*acks_first.values(), *acks_second.values(), *(u.ack for u in unary)]:
        answers.setdefault(ack.fill.exec_id, []).append(ack)
    assert {e: sum(not a.duplicate for a in got) for e, got in answers.items()} == {
        f.exec_id: 1 for f in fills
    }
    assert all(len({a.sequence for a in got}) == 1 for got in answers.values())

    quantity = sum(f.quantity for f in fills)
    cost = sum(Decimal(f.price) * f.quantity for f in fills)
    expected = [("AAPL", quantity, cost / quantity)]
    for stub in (first, second):
        answer = await stub.GetPositions(pb.GetPositionsRequest(accounts=["ACC-1"]))
        got = [(p.symbol, p.quantity, Decimal(p.average_cost)) for p in answer.positions]
        assert [(s, q, c.quantize(Decimal("0.000001"))) for s, q, c in got] == [
            (s, q, c.quantize(Decimal("0.000001"))) for s, q, c in expected
        ]
        audit = await stub.VerifyAuditTrail(pb.VerifyAuditTrailRequest())
        assert audit.valid, audit

    # A gateway started afresh rebuilds the same positions from the journal both wrote.
    replayed = Gateway(gateway_settings(database_url, tmp_path / "replay"))
    await replayed.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{replayed.port}") as channel:
            answer = await pb_grpc.JournalServiceStub(channel).GetPositions(
                pb.GetPositionsRequest(accounts=["ACC-1"])
            )
    finally:
        await replayed.stop()
    assert [(p.symbol, p.quantity, p.average_cost) for p in answer.positions] == [
        (p.symbol, p.quantity, p.average_cost)
        for p in (await first.GetPositions(pb.GetPositionsRequest(accounts=["ACC-1"]))).positions
    ]
