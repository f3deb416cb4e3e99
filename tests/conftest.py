"""Shared fixtures: a real PostgreSQL server and an in-process gateway on 127.0.0.1:0.

PostgreSQL is EXECGW_TEST_DATABASE_URL when set (the role must be allowed to create databases),
otherwise an embedded server from the ``pgserver`` package, started once per test session.
Each test that asks for ``database_url`` gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest

from gateway.server import Gateway
from gateway.settings import Settings
from storage.embedded import EmbeddedPostgres
from storage.migrations import apply_migrations

_counter = itertools.count()


def with_database(url: str, name: str) -> str:
    """The same server URL pointing at database ``name``."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a database on the test server, used to create and drop per-test databases."""
    configured = os.environ.get("EXECGW_TEST_DATABASE_URL")
    if configured:
        yield configured
        return
    with tempfile.TemporaryDirectory(prefix="execgw-test-pg-") as folder:
        server = EmbeddedPostgres(Path(folder) / "data")
        url = server.start("postgres")
        try:
            yield url
        finally:
            server.stop()


async def _create_database(postgres_url: str) -> str:
    name = f"execgw_test_{os.getpid()}_{next(_counter)}"
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return name


async def _drop_database(postgres_url: str, name: str) -> None:
    admin = await asyncpg.connect(postgres_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def migrated(url: str) -> None:
    """Apply every migration to the database at ``url``."""
    connection = await asyncpg.connect(url)
    try:
        await apply_migrations(connection)
    finally:
        await connection.close()


@pytest.fixture
async def database_url(postgres_url: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test."""
    name = await _create_database(postgres_url)
    yield with_database(postgres_url, name)
    await _drop_database(postgres_url, name)


@pytest.fixture(scope="module")
async def module_database_url(postgres_url: str) -> AsyncIterator[str]:
    """A fresh database shared by the tests of one module."""
    name = await _create_database(postgres_url)
    yield with_database(postgres_url, name)
    await _drop_database(postgres_url, name)


@pytest.fixture
def root_logging() -> Iterator[None]:
    """For tests of code that configures the root logger (``logs.configure``, as ``main`` does
    for a process): the test run gets its own handlers and level back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def gateway_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "grpc_port": 0,
        "metrics_port": 0,
        "database_url": database_url,
        "data_dir": tmp_path / "unused-pgdata",
        "shutdown_grace_seconds": 2.0,
        "db_pool_min_size": 1,
        "db_pool_max_size": 4,
        "log_format": "text",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]  # test-only keyword bag


@contextlib.asynccontextmanager
async def serving(settings: Settings, **options: Any) -> AsyncIterator[Gateway]:
    """A gateway started with ``settings`` (``options``: Gateway's keyword arguments), stopped
    when the block ends."""
    running = Gateway(settings, **options)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture(scope="module")
async def gateway(
    module_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Gateway]:
    """A running gateway shared by the tests of one module; tests must not stop it."""
    async with serving(
        gateway_settings(module_database_url, tmp_path_factory.mktemp("gateway"))
    ) as running:
        yield running


@pytest.fixture(scope="module")
async def channel(gateway: Gateway) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{gateway.port}") as opened:
        yield opened
