"""``import_contacts`` on files on disk, without HTTP: bounded memory, chunk boundaries, and the
structural problems that refuse a whole file."""

from __future__ import annotations

import csv
import io
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import FakeClock, TenantFactory
from tidings.db.repos.contacts import ContactFilters
from tidings.errors import InvalidInput
from tidings.runtime import Runtime
from tidings.services.contact_import import MAX_LINE_CHARS, ImportReport, import_contacts
from tidings.services.contacts import ContactView, list_contacts

MEMORY_TEST_ROWS = 10_000
MEMORY_TEST_CHUNK_ROWS = 100


def _write_csv(path: Path, rows: int, first: int = 0) -> None:
    """``rows`` distinct valid contacts with a 1,000-character notes attribute, written a row
    at a time (the test itself never holds the file)."""
    with path.open("w", encoding="utf-8", newline="") as out:
        out.write("phone,name,segments,tags,city,notes\n")
        for n in range(first, first + rows):
            out.write(f"+1 212 {200 + n // 10000:03d} {n % 10000:04d},Person {n},s{n % 5};all,"
                      f"t{n % 3},City {n % 10},{'note ' * 199}{n:05d}\n")


def _traced_peak(work: Callable[[], object]) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _parse_whole(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as text:
        return list(csv.reader(text))


async def _import(runtime: Runtime, tenant_id: str, content: bytes,
                  chunk_rows: int = 500) -> tuple[ImportReport, list[ContactView]]:
    async with runtime.sessions() as session:
        report = await import_contacts(session, tenant_id=tenant_id, source=io.BytesIO(content),
                                       now=runtime.clock(), chunk_rows=chunk_rows)
        await session.commit()
        page = await list_contacts(session, tenant_id=tenant_id, filters=ContactFilters(),
                                   limit=500, offset=0)
    return report, sorted(page.items, key=lambda contact: contact.phone)


async def test_import_memory_stays_far_below_holding_the_file(
        runtime: Runtime, tenants: TenantFactory, clock: FakeClock, tmp_path: Path) -> None:
    """The import's peak traced memory is under a quarter of the file's size and an eighth of
    what holding its parsed rows takes.

    Holding the file in any form breaks both bounds: its bytes alone are four times the first,
    and its parsed rows (a list of lists of str) take more than the file. What the import holds
    is one chunk (a few KB a row, whatever the file's length) plus fixed costs (about 0.8 MB on
    asyncpg, whose socket reads allocate 256 KB buffers; less on SQLite). Chunks are 100 rows
    here so that 10,000 rows (kept few because tracemalloc slows the import about threefold) are
    still 100 chunks, and rows carry a 1,000-character notes attribute (the longest allowed) so
    that the file dwarfs a chunk as a longer file of narrow rows would.
    """
    tenant = await tenants.create()
    big, warm_up = tmp_path / "big.csv", tmp_path / "warm-up.csv"
    _write_csv(big, MEMORY_TEST_ROWS)
    _write_csv(warm_up, 2 * MEMORY_TEST_CHUNK_ROWS, first=MEMORY_TEST_ROWS)
    parsed_peak = _traced_peak(lambda: _parse_whole(big))

    async with runtime.sessions() as session:
        # Lazily built caches (phone metadata, compiled SQL) are filled outside the measurement.
        with warm_up.open("rb") as source:
            await import_contacts(session, tenant_id=tenant.tenant_id, source=source,
                                  now=clock(), chunk_rows=MEMORY_TEST_CHUNK_ROWS)
        tracemalloc.start()
        try:
            with big.open("rb") as source:
                report = await import_contacts(session, tenant_id=tenant.tenant_id,
                                               source=source, now=clock(),
                                               chunk_rows=MEMORY_TEST_CHUNK_ROWS)
            import_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    assert report.created == MEMORY_TEST_ROWS
    assert import_peak < big.stat().st_size / 4
    assert import_peak < parsed_peak / 8


async def test_rows_of_one_phone_in_different_chunks_merge(
        runtime: Runtime, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    report, contacts = await _import(runtime, tenant.tenant_id, b"phone,name,segments,tags\n"
                                     b"+12025550101,Ada,a,x\n"
                                     b"+12025550102,Bob,,\n"
                                     b"202 555 0101,,b;a,x\n"
                                     b"+12025550102,Bob,c,\n", chunk_rows=2)
    ada, bob = contacts
    assert (report.created, report.updated) == (2, 2)
    assert (ada.name, ada.segments, ada.tags) == ("Ada", ["a", "b"], ["x"])
    assert (bob.name, bob.segments) == ("Bob", ["c"])


async def test_the_source_is_read_to_its_end_and_left_open(
        runtime: Runtime, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    source = io.BytesIO(b"phone\n+12025550101\n")
    async with runtime.sessions() as session:
        await import_contacts(session, tenant_id=tenant.tenant_id, source=source,
                              now=runtime.clock())
    assert not source.closed
    assert source.read() == b""


async def test_a_line_longer_than_the_limit_refuses_the_file(
        runtime: Runtime, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    content = b"phone,notes\n+12025550101,short\n+12025550102," + b"x" * MAX_LINE_CHARS + b"\n"
    with pytest.raises(InvalidInput) as raised:
        await _import(runtime, tenant.tenant_id, content)
    assert (raised.value.code, raised.value.detail) == (
        "invalid_csv", f"data row 2 is longer than {MAX_LINE_CHARS} characters")


async def test_an_unclosed_quote_swallowing_the_file_refuses_it(
        runtime: Runtime, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    rows = b"".join(b"+1202555%04d,Person\n" % n for n in range(10_000))
    content = b'phone,name\n+12025550101,"Ada\n' + rows
    with pytest.raises(InvalidInput) as raised:
        await _import(runtime, tenant.tenant_id, content)
    assert raised.value.code == "invalid_csv"
    assert raised.value.detail.startswith("data row 1 is not valid CSV (field larger than")


async def test_a_header_that_is_not_utf8_refuses_the_file(
        runtime: Runtime, tenants: TenantFactory) -> None:
    tenant = await tenants.create()
    with pytest.raises(InvalidInput) as raised:
        await _import(runtime, tenant.tenant_id, "phone,prénom\n".encode("cp1252"))
    assert (raised.value.code, raised.value.detail) == (
        "invalid_encoding", "the file is not UTF-8 text; save it as CSV UTF-8")
