"""The migrations build exactly the schema the models describe, on whichever database runs."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from tidings.db.base import Base
from tidings.db.migrate import pending_revisions, upgrade_to_head
from tidings.runtime import Runtime

# Indexes with an expression column (``priority DESC``), which autogenerate cannot compare; the
# test below checks that they exist instead.
EXPRESSION_INDEXES = frozenset({"ix_messages_account_queue"})


def _compared(obj: object, name: str | None, type_: str, reflected: bool, other: object) -> bool:
    return not (type_ == "index" and name in EXPRESSION_INDEXES)


def _schema_differences(connection: Connection) -> list[object]:
    context = MigrationContext.configure(
        connection, opts={"compare_type": True, "include_object": _compared})
    return list(compare_metadata(context, Base.metadata))


def _index_names(connection: Connection) -> set[str]:
    return {index["name"] for index in inspect(connection).get_indexes("messages")
            if index["name"]}


async def test_expression_indexes_exist(runtime: Runtime) -> None:
    async with runtime.engine.connect() as connection:
        names = await connection.run_sync(_index_names)
    assert names >= EXPRESSION_INDEXES


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
