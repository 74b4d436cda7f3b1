"""Benchmark: import a generated contacts CSV through the import service and print figures.

    .venv/bin/python bench/contact_import.py [--rows 100000] [--database-url URL]

Runs against a fresh SQLite file in a temporary directory (or the given PostgreSQL database,
whose tables it empties first). Prints rows, seconds, rows/s and the process's peak RSS; it
asserts nothing. Two passes: the first creates every contact, the second updates them all.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import text

from tidings.db.base import Base
from tidings.db.migrate import upgrade_to_head
from tidings.db.session import create_engine, create_session_factory
from tidings.services.contact_import import import_contacts
from tidings.services.tenancy import create_tenant


def write_csv(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write("phone,name,email,segments,tags,city\n")
        for n in range(rows):
            out.write(f"+1415{2000000 + n:07d},Person {n},p{n}@example.com,"
                      f"customers;wave-{n % 10},vip,City {n % 50}\n")


async def run(rows: int, database_url: str | None) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        url = database_url or f"sqlite+aiosqlite:///{scratch}/bench.db"
        engine = create_engine(url)
        await upgrade_to_head(engine)
        async with engine.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                await connection.execute(table.delete())
        sessions = create_session_factory(engine)
        now = datetime.now(UTC)
        async with sessions() as session:
            made = await create_tenant(session, name="Bench", owner_email="bench@example.com",
                                       owner_password="bench password", region="US",
                                       currency="USD", now=now)
            await session.commit()
        csv_path = Path(scratch) / "contacts.csv"
        write_csv(csv_path, rows)
        size_mb = csv_path.stat().st_size / 1e6
        print(f"database: {engine.dialect.name}; file: {rows:,} rows, {size_mb:.1f} MB")
        print(f"{'pass':<10}{'rows':>10}{'seconds':>10}{'rows/s':>10}")
        for label in ("create", "update"):
            started = time.perf_counter()
            async with sessions() as session:
                with csv_path.open("rb") as source:
                    report = await import_contacts(session, tenant_id=made.tenant.id,
                                                   source=source, now=now)
                await session.commit()
            elapsed = time.perf_counter() - started
            done = report.created + report.updated
            print(f"{label:<10}{done:>10,}{elapsed:>10.1f}{done / elapsed:>10,.0f}")
        async with engine.connect() as connection:
            count = (await connection.execute(text("SELECT count(*) FROM contacts"))).scalar()
        print(f"contacts stored: {count:,}")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS of this process: {peak_mb:.0f} MB")
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.database_url))


if __name__ == "__main__":
    sys.exit(main())
