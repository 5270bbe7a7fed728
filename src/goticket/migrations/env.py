"""Alembic environment: revisions are raw SQL, applied under an advisory lock.

Migrations use psycopg (sync, simple query protocol: a revision may hold many statements);
the service itself talks to PostgreSQL through asyncpg.
"""

from __future__ import annotations

import psycopg
from alembic import context
from sqlalchemy import create_engine, pool, text

from goticket.kit.migrate import ADVISORY_LOCK_KEY

DSN: str = context.config.attributes["dsn"]

if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported")

engine = create_engine(
    "postgresql+psycopg://", creator=lambda: psycopg.connect(DSN), poolclass=pool.NullPool
)
try:
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
        with context.begin_transaction():
            connection.execute(text(f"SELECT pg_advisory_xact_lock({ADVISORY_LOCK_KEY})"))
            context.run_migrations()
finally:
    engine.dispose()
