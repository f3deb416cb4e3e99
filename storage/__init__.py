"""PostgreSQL storage: connection, migrations and the journal writer (asyncpg)."""
