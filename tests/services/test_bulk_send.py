"""``services.bulk_send`` below the API: a job's file is read a chunk at a time, never held."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from sqlalchemy import func, select

from tests.conftest import TenantFactory
from tidings.db.models import Message
from tidings.runtime import Runtime
from tidings.services.bulk_send import accept_job
from tidings.services.sms_apps import SmsAppFields, create_sms_app
from tidings.services.sms_send import Sender

MEMORY_TEST_ROWS = 10_000
MEMORY_TEST_CHUNK_ROWS = 100
TEXT = "Your order is ready. " * 71  # 1,491 characters: 10 parts, the most allowed


def _write_csv(path: Path, rows: int) -> None:
    """``rows`` rows of 1,491-character texts, each to its own number, written a row at a time
    (the test itself never holds the file)."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("mobile,message,sender,datetime\n")
        for n in range(rows):
            out.write(f"96650{n:07d},{TEXT},Acme,\n")


async def test_a_job_holds_a_few_chunks_of_its_file_never_the_whole_file(
        runtime: Runtime, tenants: TenantFactory, tmp_path: Path) -> None:
    """The peak traced memory while a 15 MB file is read, validated and stored in 100-row
    chunks is under a fifth of the file: two chunks and the numbers taken are held, at most."""
    tenant = await tenants.create()
    async with runtime.sessions() as session:
        app = await create_sms_app(
            session, runtime.secret_box, tenant_id=tenant.tenant_id,
            fields=SmsAppFields(name="Sim", provider="SIMULATOR", provider_credentials={}),
            default_rate_limit="100/min", now=runtime.clock())
        await session.commit()
    path = tmp_path / "bulk.csv"
    _write_csv(path, MEMORY_TEST_ROWS)
    size = path.stat().st_size

    tracemalloc.start()
    try:
        async with runtime.sessions() as session:
            with path.open("rb") as source:
                job = await accept_job(session, Sender(tenant.tenant_id, "US", "live"), app,
                                       source, now=runtime.clock(), max_segments=10,
                                       chunk_rows=MEMORY_TEST_CHUNK_ROWS)
            await session.commit()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    async with runtime.sessions() as session:
        count = (await session.execute(select(func.count()).select_from(Message))).scalar()
    assert (job.counts.total, job.counts.pending, count) == (MEMORY_TEST_ROWS,) * 3
    assert size > 15_000_000
    assert peak < size / 5, f"peak {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB file"
