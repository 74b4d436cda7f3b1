"""Storage: SQLAlchemy 2 models, the async engine, Alembic migrations, tenant-scoped queries."""
