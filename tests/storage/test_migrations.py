"""Migrations: applied once, in order, safely from concurrent starts, never edited."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from storage.errors import MigrationError
from storage.migrations import apply_migrations, available_migrations


async def test_fresh_database_then_every_migration_applied_in_order(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        applied = await apply_migrations(connection)
        recorded = await connection.fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        await connection.close()
    expected = [m.version for m in available_migrations()]
    assert [m.version for m in applied] == expected
    assert [r["version"] for r in recorded] == expected


async def test_second_run_then_nothing_applied_and_nothing_changed(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await apply_migrations(connection)
        before = await connection.fetch("SELECT * FROM schema_migrations ORDER BY version")
        again = await apply_migrations(connection)
        after = await connection.fetch("SELECT * FROM schema_migrations ORDER BY version")
    finally:
        await connection.close()
    assert again == []
    assert before == after


async def test_concurrent_starts_then_each_migration_applied_once_without_error(
    database_url: str,
) -> None:
    connections = [await asyncpg.connect(database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(apply_migrations(c) for c in connections))
        count = await connections[0].fetchval("SELECT count(*) FROM schema_migrations")
    finally:
        for connection in connections:
            await connection.close()
    applied = sorted(m.version for result in results for m in result)
    assert applied == [m.version for m in available_migrations()]
    assert count == len(available_migrations())


async def test_applied_migration_changed_later_then_refused(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        await apply_migrations(connection)
        await connection.execute(
            "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1"
        )
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await apply_migrations(connection)
    finally:
        await connection.close()


async def test_lock_held_elsewhere_then_start_waits_and_times_out_clearly(
    database_url: str,
) -> None:
    from storage.errors import DatabaseUnavailable
    from storage.migrations import MIGRATION_LOCK_KEY

    holder = await asyncpg.connect(database_url)
    waiter = await asyncpg.connect(database_url)
    try:
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        with pytest.raises(DatabaseUnavailable, match="migration lock"):
            await apply_migrations(waiter, lock_timeout=0.3)
    finally:
        await holder.close()
        await waiter.close()
