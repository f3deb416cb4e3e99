"""The ``execgw`` command as an operator runs it: a real process, real signals."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import grpc
import psutil
from grpc_health.v1 import health_pb2, health_pb2_grpc

from storage.migrations import available_migrations


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _running(pid: int) -> bool:
    # An exited daemon stays a zombie until init reaps it, which some sandboxes do late.
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXECGW_")}
    env.update(extra)
    return env


async def _wait_serving(port: int, process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        while True:
            assert process.poll() is None, "gateway exited during start"
            try:
                answer = await health.Check(health_pb2.HealthCheckRequest(), timeout=1)
                if answer.status == health_pb2.HealthCheckResponse.SERVING:
                    return
            except grpc.aio.AioRpcError:
                pass
            assert asyncio.get_running_loop().time() < deadline, "gateway never reported SERVING"
            await asyncio.sleep(0.2)


async def test_serve_without_database_url_then_embedded_postgres_serves_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    port = _free_port()
    data_dir = tmp_path / "pgdata"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--grpc-port",
            str(port),
            "--metrics-port",
            "-1",
            "--data-dir",
            str(data_dir),
            "--log-format",
            "json",
        ],
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        await _wait_serving(port, process, timeout=60)
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(process.communicate, timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    log = stderr.decode()
    assert process.returncode == 0, log
    assert str(data_dir) in log
    assert '"message": "gateway stopped"' in log
    await asyncio.sleep(0.5)
    assert not _running(postmaster), "embedded PostgreSQL still running after shutdown"


def test_migrate_twice_then_second_run_applies_nothing(database_url: str) -> None:
    command = [sys.executable, "-m", "gateway", "migrate"]
    env = _environment(EXECGW_DATABASE_URL=database_url)
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=True)
    second = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    names = [f"{m.version:04d}_{m.name}" for m in available_migrations()]
    assert f"applied {len(names)} migration(s): {', '.join(names)}" in first.stdout
    assert "applied 0 migration(s)" in second.stdout


def test_invalid_settings_then_exit_2_listing_every_problem() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--grpc-port", "-4", "--log-level", "LOUD"],
        env=_environment(EXECGW_BOGUS="1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    for fragment in ("grpc_port=-4", "log_level='LOUD'", "EXECGW_BOGUS"):
        assert fragment in result.stderr


async def test_health_command_against_running_gateway_then_exit_0(gateway: object) -> None:
    port = gateway.port  # type: ignore[attr-defined]
    # Off the event loop: the gateway under test runs on it.
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway", "health", "--grpc-port", str(port)],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "SERVING" in result.stdout


def test_health_command_with_nothing_listening_then_exit_1() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "health", "--grpc-port", str(_free_port())],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "UNAVAILABLE" in result.stderr
