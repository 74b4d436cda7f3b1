"""The async engine and session factory for SQLite (embedded default) or PostgreSQL.

SQLite runs in WAL mode with ``synchronous=FULL`` (a committed row survives power loss), foreign
keys on, and every transaction opened with ``BEGIN IMMEDIATE``: a transaction takes the write lock
up front, so two transactions can never deadlock upgrading a read lock, and ``busy_timeout`` makes
a writer wait its turn instead of failing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=FULL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)


def create_engine(database_url: str, *, readers: bool = False,
                  **engine_options: Any) -> AsyncEngine:
    """An engine for ``database_url``; an SQLite file's directory is created if missing.

    ``readers=True`` makes an SQLite engine for read-only work that begins deferred
    transactions (WAL lets them read alongside the one writer, where ``BEGIN IMMEDIATE`` would
    queue them behind it) and refuses writes (``PRAGMA query_only``). On PostgreSQL it is an
    ordinary engine.
    """
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        engine_options.setdefault("pool_pre_ping", True)
        return create_async_engine(url, **engine_options)
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, **engine_options)
    _configure_sqlite(engine, readers)
    return engine


def _configure_sqlite(engine: AsyncEngine, readers: bool) -> None:
    pragmas = (*SQLITE_PRAGMAS, "PRAGMA query_only=ON") if readers else SQLITE_PRAGMAS

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in pragmas:
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN" if readers else "BEGIN IMMEDIATE")


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def database_problem(engine: AsyncEngine) -> str | None:
    """None when the database answers a trivial query, else the kind of error it gave."""
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver or network error means "not healthy"
        return type(exc).__name__
    return None
