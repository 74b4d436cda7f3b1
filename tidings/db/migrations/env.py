"""Alembic environment: runs on the connection handed in by ``tidings.db.migrate``."""

from __future__ import annotations

from alembic import context

from tidings.db import models  # noqa: F401  (registers every table on Base.metadata)
from tidings.db.base import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `tidings migrate`, which supplies the connection")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
