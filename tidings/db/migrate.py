"""Apply Alembic migrations from code (``tidings migrate``, ``tidings serve``, the tests).

On PostgreSQL a transaction-scoped advisory lock makes nodes that start together migrate one at a
time; the second finds nothing left to do.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_MIGRATION_LOCK_ID = 0x7D1D1265


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


async def upgrade_to_head(engine: AsyncEngine) -> list[str]:
    """Apply every pending migration; return the revisions that were applied, oldest first."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})"))
        return await connection.run_sync(_upgrade)


def _upgrade(connection: Connection) -> list[str]:
    config = alembic_config(connection)
    before = MigrationContext.configure(connection).get_current_revision()
    command.upgrade(config, "head")
    script = ScriptDirectory.from_config(config)
    applied = [rev.revision for rev in script.iterate_revisions("head", before)]
    return list(reversed(applied))


async def pending_revisions(engine: AsyncEngine) -> list[str]:
    """Revisions not yet applied to the database behind ``engine``."""
    async with engine.connect() as connection:
        return await connection.run_sync(_pending)


def _pending(connection: Connection) -> list[str]:
    current = MigrationContext.configure(connection).get_current_revision()
    script = ScriptDirectory.from_config(alembic_config())
    return [rev.revision for rev in script.iterate_revisions("head", current)]
