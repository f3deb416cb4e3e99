"""Forward-only, numbered SQL migrations applied under a PostgreSQL advisory lock.

Files are ``storage/migrations/NNNN_description.sql``, applied in number order, each in its own
transaction, and recorded with a checksum in ``schema_migrations``. A recorded migration whose file
has changed since is an error: migrations are never edited, only added. Concurrent starts wait
for each other on the advisory lock, so the second one finds nothing left to do.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

from storage.errors import DatabaseUnavailable, MigrationError

log = logging.getLogger(__name__)

# pg_advisory_lock key: "execgw" as an integer, so it does not collide with other applications.
MIGRATION_LOCK_KEY = int.from_bytes(b"execgw", "big")
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    """The migrations shipped with the package, in order."""
    found = []
    for entry in resources.files("storage").joinpath("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match.group(1)), match.group(2), entry.read_text()))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a number: {versions}")
    return found


_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


async def apply_migrations(
    connection: asyncpg.Connection, *, lock_timeout: float = 60.0
) -> list[Migration]:
    """Apply every pending migration and return the ones applied now."""
    migrations = available_migrations()
    try:
        async with asyncio.timeout(lock_timeout):
            await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    except TimeoutError as exc:
        raise DatabaseUnavailable(
            f"another process held the migration lock for more than {lock_timeout}s"
        ) from exc
    try:
        await connection.execute(_CREATE_TABLE)
        rows = await connection.fetch("SELECT version, name, checksum FROM schema_migrations")
        recorded = {row["version"]: row for row in rows}
        applied = []
        for migration in migrations:
            row = recorded.get(migration.version)
            if row is not None:
                if row["checksum"] != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{migration.name} was changed after it "
                        "was applied; add a new migration instead"
                    )
                continue
            async with connection.transaction():
                await connection.execute(migration.sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info(
                "applied migration",
                extra={"migration": f"{migration.version:04d}_{migration.name}"},
            )
            applied.append(migration)
        unknown = sorted(set(recorded) - {m.version for m in migrations})
        if unknown:
            log.warning(
                "database has migrations this build does not know", extra={"versions": unknown}
            )
        return applied
    finally:
        # Unlock even when cancelled: the connection may be reused by the caller.
        await asyncio.shield(
            connection.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
        )
