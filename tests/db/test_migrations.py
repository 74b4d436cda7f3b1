"""The migrations build exactly the schema the models describe, on whichever database runs."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection

from tidings.db.base import Base
from tidings.db.migrate import pending_revisions, upgrade_to_head
from tidings.runtime import Runtime


def _schema_differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_migrated_schema_matches_the_models(runtime: Runtime) -> None:
    async with runtime.engine.connect() as connection:
        differences = await connection.run_sync(_schema_differences)
    assert differences == []


async def test_upgrade_on_an_up_to_date_database_applies_nothing(runtime: Runtime) -> None:
    assert await upgrade_to_head(runtime.engine) == []
    assert await pending_revisions(runtime.engine) == []


async def test_sqlite_runs_in_wal_mode_with_full_sync(runtime: Runtime) -> None:
    if runtime.engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    async with runtime.engine.connect() as connection:
        journal = (await connection.execute(text("PRAGMA journal_mode"))).scalar()
        synchronous = (await connection.execute(text("PRAGMA synchronous"))).scalar()
        foreign_keys = (await connection.execute(text("PRAGMA foreign_keys"))).scalar()
    assert (journal, synchronous, foreign_keys) == ("wal", 2, 1)
