"""Storage errors, translated from asyncpg and OS errors in this package only."""

from __future__ import annotations

from gateway.errors import ExecgwError, Unavailable


class DatabaseUnavailable(Unavailable):
    """PostgreSQL cannot be reached or did not answer in time; retryable."""

    reason = "DATABASE_UNAVAILABLE"


class MigrationError(ExecgwError):
    """The migrations on disk and the ones recorded in the database disagree."""

    reason = "MIGRATION_FAILED"


class EmbeddedDatabaseError(ExecgwError):
    """The embedded PostgreSQL could not be started."""

    reason = "EMBEDDED_DATABASE_FAILED"
