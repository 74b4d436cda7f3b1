"""The CSV contact import behind ``POST /contacts/bulk-import/``: stream a file, upsert by phone.

The file is UTF-8 (a leading BOM is fine), comma-separated, quoted as RFC 4180 (a quoted cell may
hold commas and line breaks). Its first non-blank row names the columns, matched
case-insensitively after trimming:

- ``phone`` (required), ``name``, ``email``;
- ``segments`` and ``tags``: several names separated by ``;`` (``vip; london``);
- any other column is a custom attribute named as written (trimmed; 1 to 64 characters of
  ``A-Z a-z 0-9 _ . -``, at most 100 such columns), its cells stored as strings.

A header with no ``phone`` column, an unnamed, repeated (in any case) or badly named column, or
no header at all is ``InvalidInput(invalid_csv)``.

Each following row is one contact, keyed by its phone in E.164 (the tenant's region reads
national numbers). A new phone creates a contact. A known phone (stored, or earlier in the same
file) updates it: a non-empty name or email overwrites, segments and tags are added to the
contact's, non-empty attribute cells overwrite those attributes and empty ones leave them. Rows
are numbered from 1 for the first row after the header. Blank rows (every cell empty) are skipped
and not counted, but keep their number. A row breaking a contact rule (``services.contacts``),
with another number of cells than the header, or that would leave its contact with more than
50 segments, 50 tags or 100 attributes is rejected with its number and reason; the other rows
are kept. ``total`` counts the non-blank rows, so ``total == created + updated + rejected``.

A file that is not UTF-8 anywhere is ``InvalidInput(invalid_encoding)``; broken CSV structure
(a line over ``MAX_LINE_CHARS``, a cell over the csv module's field limit, as an unclosed quote
makes) is ``invalid_csv``. Either way the caller's transaction must roll back: rows written by
earlier chunks are not committed, so nothing is imported.

Memory stays bounded by one chunk, not the file: the binary stream is decoded and parsed a line
at a time, and the good rows among every ``CHUNK_ROWS`` rows read are written with one query for
the stored contacts of their phones (and one for their labels), then bulk ``executemany``
inserts and updates; no ORM object is made per row and no row is kept after its chunk. Parsing
is CPU work done on the event loop, which gets its turn after every chunk (tens of
milliseconds), however many of its rows are good.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, TextIO

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.repos import contacts as repo
from tidings.db.repos.contacts import SEGMENT, TAG, ContactValues, Labels, StoredContact
from tidings.domain.ids import new_id
from tidings.errors import Conflict, InvalidInput
from tidings.services.contacts import (
    MAX_ATTRIBUTE_VALUE_LENGTH,
    MAX_ATTRIBUTES,
    MAX_LABELS,
    attribute_key_problem,
    clean_email,
    clean_labels,
    clean_name,
    clean_phone,
    tenant_region,
)

CHUNK_ROWS = 500
MAX_LISTED_REJECTIONS = 1000
MAX_LINE_CHARS = 1 << 20
LABEL_SEPARATOR = ";"
_KNOWN_COLUMNS = ("phone", "name", "email", "segments", "tags")


@dataclass(frozen=True)
class RejectedRow:
    row: int
    reason: str


@dataclass(frozen=True)
class ImportReport:
    """What an import did; ``rejected`` lists the first ``MAX_LISTED_REJECTIONS`` rejections."""

    total: int
    created: int
    updated: int
    rejected_count: int
    rejected: list[RejectedRow]
    rejected_truncated: bool


@dataclass
class _Tally:
    total: int = 0
    created: int = 0
    updated: int = 0
    rejected_count: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)

    def reject(self, row: int, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < MAX_LISTED_REJECTIONS:
            self.rejected.append(RejectedRow(row, reason))

    def report(self) -> ImportReport:
        return ImportReport(self.total, self.created, self.updated, self.rejected_count,
                            self.rejected, self.rejected_count > len(self.rejected))


@dataclass(frozen=True)
class _Columns:
    """Where each known column is (None when absent) and the attribute columns."""

    width: int
    phone: int
    name: int | None
    email: int | None
    segments: int | None
    tags: int | None
    attributes: tuple[tuple[int, str], ...]


@dataclass(frozen=True, slots=True)
class _Row:
    number: int
    phone: str
    name: str | None
    email: str | None
    segments: frozenset[str]
    tags: frozenset[str]
    attributes: dict[str, str]


def _union(ours: frozenset[str], theirs: frozenset[str]) -> frozenset[str]:
    """``ours | theirs``, without a copy when either is empty (the usual case)."""
    return ours | theirs if ours and theirs else ours or theirs


class _Merged:
    """One contact within a chunk: what is stored, plus the chunk's rows merged in order."""

    __slots__ = ("attributes", "email", "id", "is_new", "name", "phone", "segments", "stored",
                 "tags", "touched")

    def __init__(self, phone: str, stored: StoredContact | None, labels: Labels) -> None:
        self.phone = phone
        self.is_new = stored is None
        self.id = new_id() if stored is None else stored.id
        self.name = None if stored is None else stored.name
        self.email = None if stored is None else stored.email
        self.attributes: dict[str, Any] = {} if stored is None else stored.attributes
        self.stored = labels
        self.segments = labels.segments
        self.tags = labels.tags
        self.touched = False

    def merge(self, row: _Row) -> str | None:
        """Apply ``row``; or, when the result would break a per-contact limit, change nothing
        and say why."""
        segments = _union(self.segments, row.segments)
        tags = _union(self.tags, row.tags)
        attributes = ({**self.attributes, **row.attributes}
                      if self.attributes and row.attributes else
                      self.attributes or row.attributes)
        if len(segments) > MAX_LABELS:
            return f"segments: a contact may have at most {MAX_LABELS}"
        if len(tags) > MAX_LABELS:
            return f"tags: a contact may have at most {MAX_LABELS}"
        if len(attributes) > MAX_ATTRIBUTES:
            return f"attributes: a contact may have at most {MAX_ATTRIBUTES}"
        self.segments, self.tags, self.attributes = segments, tags, attributes
        self.name = row.name or self.name
        self.email = row.email or self.email
        self.touched = True
        return None

    def values(self) -> ContactValues:
        return ContactValues(self.id, self.phone, self.name, self.email, self.attributes)

    def new_labels(self) -> Iterator[tuple[str, str, str]]:
        for name in self.segments - self.stored.segments:
            yield self.id, SEGMENT, name
        for name in self.tags - self.stored.tags:
            yield self.id, TAG, name


class _LineTooLong(Exception):
    pass


def _invalid_csv(detail: str) -> InvalidInput:
    return InvalidInput(detail, "invalid_csv")


def _lines(text: TextIO) -> Iterator[str]:
    """The physical lines of ``text``, refusing one longer than ``MAX_LINE_CHARS`` before it is
    ever whole in memory."""
    while line := text.readline(MAX_LINE_CHARS):
        if len(line) == MAX_LINE_CHARS and line[-1] not in "\r\n":
            raise _LineTooLong
        yield line


def _row_name(number: int) -> str:
    """How to name the row after data row ``number`` (-1: the header) in an error."""
    return "the header" if number < 0 else f"data row {number + 1}"


def _is_blank(cells: list[str]) -> bool:
    return not "".join(cells).strip()


def _columns(header: list[str]) -> _Columns:
    known: dict[str, int] = {}
    attributes: list[tuple[int, str]] = []
    seen: set[str] = set()
    for index, raw in enumerate(header):
        name = raw.strip()
        if not name:
            raise _invalid_csv(f"column {index + 1} of the header has no name")
        folded = name.casefold()
        if folded in seen:
            raise _invalid_csv(f"column {name!r} appears twice in the header")
        seen.add(folded)
        if folded in _KNOWN_COLUMNS:
            known[folded] = index
        elif problem := attribute_key_problem(name):
            raise _invalid_csv(f"column {name!r}: {problem}")
        else:
            attributes.append((index, name))
    if "phone" not in known:
        raise _invalid_csv("the header has no phone column")
    if len(attributes) > MAX_ATTRIBUTES:
        raise _invalid_csv(f"at most {MAX_ATTRIBUTES} attribute columns")
    return _Columns(width=len(header), phone=known["phone"], name=known.get("name"),
                    email=known.get("email"), segments=known.get("segments"),
                    tags=known.get("tags"), attributes=tuple(attributes))


def _labels(field_name: str, cell: str) -> frozenset[str]:
    if not cell:
        return frozenset()
    return clean_labels(field_name, (p for p in cell.split(LABEL_SEPARATOR) if p.strip()))


def _parse(number: int, cells: list[str], columns: _Columns, region: str) -> _Row | str:
    """The row, or the reason it is rejected."""
    if len(cells) != columns.width:
        return f"expected {columns.width} columns, found {len(cells)}"
    if not cells[columns.phone].strip():
        return "phone: missing"
    try:
        phone = clean_phone(cells[columns.phone], region)
        name = None if columns.name is None else clean_name(cells[columns.name])
        email = None if columns.email is None else clean_email(cells[columns.email])
        segments = (frozenset() if columns.segments is None
                    else _labels("segments", cells[columns.segments]))
        tags = frozenset() if columns.tags is None else _labels("tags", cells[columns.tags])
    except InvalidInput as exc:
        return exc.detail
    attributes: dict[str, str] = {}
    for index, key in columns.attributes:
        value = cells[index].strip()
        if value:
            if len(value) > MAX_ATTRIBUTE_VALUE_LENGTH:
                return f"{key}: must be at most {MAX_ATTRIBUTE_VALUE_LENGTH} characters"
            attributes[key] = value
    return _Row(number, phone, name, email, segments, tags, attributes)


async def _write_chunk(session: AsyncSession, tenant_id: str, rows: list[_Row], tally: _Tally,
                       now: datetime) -> None:
    """Merge ``rows`` (in file order) into the stored contacts of their phones and write the
    result in bulk. Always gives the event loop a turn, even with no rows."""
    if not rows:
        await asyncio.sleep(0)
        return
    stored = await repo.stored_by_phone(session, tenant_id, {row.phone for row in rows})
    labelled = {stored[row.phone].id for row in rows
                if row.phone in stored and (row.segments or row.tags)}
    stored_labels = await repo.labels_of(session, labelled)
    merged: dict[str, _Merged] = {}
    for row in rows:
        contact = merged.get(row.phone)
        if contact is None:
            existing = stored.get(row.phone)
            labels = Labels() if existing is None else stored_labels.get(existing.id, Labels())
            contact = merged[row.phone] = _Merged(row.phone, existing, labels)
        creates = contact.is_new and not contact.touched
        if problem := contact.merge(row):
            tally.reject(row.number, problem)
        elif creates:
            tally.created += 1
        else:
            tally.updated += 1
    written = [c for c in merged.values() if c.touched]
    await repo.insert_contacts(session, tenant_id=tenant_id,
                               contacts=[c.values() for c in written if c.is_new], now=now)
    await repo.update_contacts(session, tenant_id=tenant_id,
                               contacts=[c.values() for c in written if not c.is_new], now=now)
    await repo.add_labels(session, tenant_id, (label for c in written for label in c.new_labels()))


async def import_contacts(session: AsyncSession, *, tenant_id: str, source: BinaryIO,
                          now: datetime, chunk_rows: int = CHUNK_ROWS) -> ImportReport:
    """Import the CSV in ``source`` (read from its current position to its end) into
    ``tenant_id``'s contacts, as the module docstring describes, stamping changes ``now``.

    Raises ``InvalidInput`` with code ``invalid_csv`` or ``invalid_encoding`` for a file that
    cannot be read as a whole, and ``Conflict(import_conflict)`` when a concurrent request wrote
    one of the same phones first; the caller must then roll back. ``source`` stays open.
    """
    region = await tenant_region(session, tenant_id)
    text = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
    tally = _Tally()
    number = 0  # of the last data row read; the header is being read while it is -1
    try:
        records = csv.reader(_lines(text))
        number = -1
        header = next((cells for cells in records if not _is_blank(cells)), None)
        if header is None:
            raise _invalid_csv("the file is empty: its first row must name the columns, "
                               "including phone")
        columns = _columns(header)
        number = 0
        chunk: list[_Row] = []
        for cells in records:
            number += 1
            if not _is_blank(cells):
                tally.total += 1
                parsed = _parse(number, cells, columns, region)
                if isinstance(parsed, str):
                    tally.reject(number, parsed)
                else:
                    chunk.append(parsed)
            if number % chunk_rows == 0:
                # Every chunk_rows rows read, good or not: the event loop gets its turn.
                await _write_chunk(session, tenant_id, chunk, tally, now)
                chunk = []
        await _write_chunk(session, tenant_id, chunk, tally, now)
    except UnicodeDecodeError:
        where = "" if number < 0 else f" (the first bad byte is after data row {number})"
        raise InvalidInput(f"the file is not UTF-8 text{where}; save it as CSV UTF-8",
                           "invalid_encoding") from None
    except _LineTooLong:
        raise _invalid_csv(f"{_row_name(number)} is longer than {MAX_LINE_CHARS} "
                           "characters") from None
    except csv.Error as exc:
        raise _invalid_csv(f"{_row_name(number)} is not valid CSV ({exc}); is a quote "
                           "left open?") from None
    except IntegrityError:
        raise Conflict("another request added some of the same phones during the import; "
                       "nothing was imported, try again", "import_conflict") from None
    finally:
        text.detach()
    return tally.report()
