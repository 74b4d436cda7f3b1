"""SMS broadcasts: one text sent to many recipients, accepted in one request.

**Request.** ``accept_broadcast`` takes an SMS app id (else the tenant's default app), exactly
one source of recipients and one text, plus the options of a single send (``dlt_template_id``,
``priority``, ``scheduled_at``, ``ttl`` or ``valid_until``, ``sender_id``, ``callback_url``).
Sources:

- ``PhoneList``: phone numbers as written (E.164, or national in the tenant's region);
- ``SegmentSource``: the tenant's contacts whose segments include the name;
- ``CsvSource``: a UTF-8 CSV (a BOM is fine) whose header, matched case-insensitively after
  trimming, has a ``phone`` column; every other column is a field for the text. Rows are
  numbered from 1 for the first row after the header; blank rows are skipped (not counted).

**Placeholders.** ``{{name}}`` in the text (spaces inside the braces are fine) is replaced, per
recipient, by that recipient's field of that name, matched case-insensitively; ``{{name|there}}``
gives a default for a missing or empty field. Fields: for a contact (a segment's, or the stored
contact with a listed phone), ``name``, ``email``, ``phone`` and each custom attribute; for a CSV
row, its cells by column name; ``phone`` is always the recipient's number in E.164. A recipient
missing a field the text needs (with no default) is a rejected row. A CSV whose header lacks a
column the text needs is refused as a whole.

**Whole-request errors** answer 400 (``InvalidInput``) and write nothing, since the request's
transaction rolls back: an unknown ``sms_app_id`` (a body field), no source or several, an empty
text, a CSV with a bad header or that is not UTF-8 or not CSV, an option a single send would
refuse (priority, scheduling, validity, callback URL; and a text too long when it has no
placeholders), or no recipient left to send to.

**Per-recipient problems** do not fail the request: an invalid phone, a missing field, a filled
text too long, an Indian number whose text breaks the DLT rules (checked after filling, the same
rules as single sends), and, for priced apps, a message the wallet can no longer pay for
(``insufficient_balance``; the wallet is debited per message as it is stored). Each is a
rejected row, counted in ``rejected``; the first ``MAX_LISTED_REJECTIONS`` are kept with their
position, phone, code and reason. Only when every recipient is rejected is the request refused:
400 ``no_valid_recipients`` (402 when it was the wallet), and nothing is written.

**Duplicates.** A phone is sent to once per broadcast: a later recipient with the E.164 number
of one already accepted (or refused by the wallet) is counted in ``duplicates`` and skipped
(the first one wins, with its fields). ``total`` counts every recipient named, so
``total == accepted + rejected + duplicates``.

**Storage.** Each message is exactly the row a single send builds (``sms_send.build_message_row``,
after ``resolve_send_plan`` once), with the broadcast's id as ``batch_id``, stored with
``sms_send.store_messages`` every ``CHUNK_SIZE`` recipients inside the caller's transaction: when
the request commits, every accepted message is on disk, and the dispatcher picks them up on its
next poll. (On SQLite the request holds the write lock throughout: other writers wait, about six
seconds for 100,000 recipients.) Test-mode callers get test-mode messages (simulator, never
charged). The ``batches`` row keeps ``total``, ``rejected`` and the listed rejected rows; the
per-state counters are read live from the messages (``ix_messages_batch_id_state``).

**Speed.** A row depends on the recipient only through its number's country calling code (DLT
applies to +91) and its filled text, so ``build_message_row`` runs once per distinct (text,
country code) and every other recipient gets a copy with its own id and number (a text
personalised per recipient pays for a full build each). Numbers already written in canonical
E.164 skip the parse (``domain.phone.to_e164``).
Each chunk is written by a task while the next one is built, so the database's work overlaps
ours; nothing else touches the session meanwhile (``_Acceptance.settle``). Memory stays bounded
by two chunks plus the set of accepted numbers; the CSV is read a line at a time.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
import re
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Final, TextIO

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import Batch, Contact, ContactLabel, Message
from tidings.db.repos.contacts import SEGMENT, stored_by_phone
from tidings.db.repos.scoped import get_owned, owned_by
from tidings.domain.ids import new_id
from tidings.domain.phone import InvalidPhone, calling_code, to_e164
from tidings.domain.states import MessageState
from tidings.errors import FieldError, InvalidInput, NotFound, PaymentRequired
from tidings.services import sms_send
from tidings.services.sms_send import PendingMessage, Sender, SendPlan, SendRequest

BROADCAST_KIND: Final = "broadcast"
ACCEPTED: Final = "accepted"
CHUNK_SIZE: Final = 2000
"""Recipients read, built and stored per step; the event loop gets a turn after each."""
MAX_LISTED_REJECTIONS: Final = 100
MAX_LINE_CHARS: Final = 1 << 20
CONTACT_LOOKUP_CHUNK: Final = 1000
YIELD_EVERY: Final = 250
"""Recipients handled between two turns of the event loop (where a chunk being stored moves)."""
COUNTED_STATES: Final = tuple(state.value for state in MessageState
                              if state is not MessageState.RECEIVED)
"""The states a broadcast shows a counter for, each its own (``read`` is not in ``delivered``)."""

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*(?:\|([^{}]*))?\}\}")
_BUILT_CACHE_SIZE = 4096
_RECIPIENT_FIELDS = frozenset({"phone", "dlt_template_id"})


# --- requests and answers ----------------------------------------------------------------------

@dataclass(frozen=True)
class PhoneList:
    phones: Sequence[str]


@dataclass(frozen=True)
class SegmentSource:
    name: str


@dataclass(frozen=True)
class CsvSource:
    """A CSV read from ``source``'s current position to its end; ``source`` stays open."""

    source: BinaryIO


Source = PhoneList | SegmentSource | CsvSource


@dataclass(frozen=True)
class BroadcastRequest:
    """What a broadcast sends, as the caller asked (plain values; the API checked the types)."""

    text: str
    sms_app_id: str | None = None
    dlt_template_id: str | None = None
    priority: int = 0
    scheduled_at: datetime | None = None
    ttl: int | None = None
    valid_until: datetime | None = None
    sender_id: str | None = None
    callback_url: str | None = None


@dataclass(frozen=True)
class RejectedRow:
    """A recipient that was not sent to. ``row`` is its 1-based position in the phone list or
    its CSV data row number; segment recipients carry ``contact_id`` instead."""

    row: int | None
    contact_id: str | None
    phone: str
    code: str
    reason: str

    def as_json(self) -> dict[str, Any]:
        return {"row": self.row, "contact_id": self.contact_id, "phone": self.phone,
                "code": self.code, "reason": self.reason}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> RejectedRow:
        return cls(row=data.get("row"), contact_id=data.get("contact_id"),
                   phone=str(data.get("phone", "")), code=str(data.get("code", "")),
                   reason=str(data.get("reason", "")))


@dataclass(frozen=True)
class BroadcastView:
    """A broadcast with its live counters: ``counts`` has every state of ``COUNTED_STATES``.

    ``status`` is ``queued`` while no message has left the queue, ``sending`` while some are
    queued or sending, then ``completed``. ``duplicates`` is derived (``total - rejected -
    accepted``)."""

    id: str
    sms_app_id: str
    status: str
    total: int
    accepted: int
    duplicates: int
    rejected: int
    counts: dict[str, int]
    rejected_rows: list[RejectedRow]
    rejected_truncated: bool
    created_at: datetime


def choose_source(*, phones: Sequence[str] | None, segment: str | None,
                  csv_file: BinaryIO | None) -> Source:
    """The one source given; ``InvalidInput(invalid_source)`` for none or several."""
    given = [name for name, value in (("phones", phones), ("segment", segment),
                                      ("file", csv_file)) if value is not None]
    if len(given) != 1:
        problem = "none was given" if not given else f"got {' and '.join(given)}"
        raise InvalidInput("give exactly one source of recipients: phones (a JSON list), "
                           f"segment (a contact segment name) or file (a CSV upload); {problem}",
                           "invalid_source", [FieldError(name, "exactly one source")
                                              for name in given or ["phones"]])
    if phones is not None:
        return PhoneList(phones)
    if csv_file is not None:
        return CsvSource(csv_file)
    name = (segment or "").strip()
    if not name:
        raise InvalidInput.for_field("segment", "must not be empty")
    return SegmentSource(name)


# --- placeholders ------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Slot:
    name: str  # case-folded
    default: str | None


class MissingField(Exception):
    """``TextTemplate.fill`` found no value for the field ``name`` (which has no default)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


@dataclass(frozen=True)
class TextTemplate:
    """A text with ``{{field}}`` placeholders, parsed once. ``fields`` are the (case-folded)
    names it uses, ``required`` those used without a default."""

    text: str
    parts: tuple[str | _Slot, ...]
    fields: frozenset[str]
    required: frozenset[str]

    @classmethod
    def parse(cls, text: str) -> TextTemplate:
        parts: list[str | _Slot] = []
        position = 0
        for match in _PLACEHOLDER.finditer(text):
            if match.start() > position:
                parts.append(text[position:match.start()])
            default = match.group(2)
            parts.append(_Slot(match.group(1).casefold(),
                               default.strip() if default is not None else None))
            position = match.end()
        if position < len(text):
            parts.append(text[position:])
        slots = [part for part in parts if isinstance(part, _Slot)]
        return cls(text, tuple(parts), frozenset(slot.name for slot in slots),
                   frozenset(slot.name for slot in slots if slot.default is None))

    def fill(self, values: Mapping[str, str]) -> str:
        """The text for one recipient; ``MissingField`` when a field without default is
        missing or empty."""
        if not self.fields:
            return self.text
        pieces = []
        for part in self.parts:
            if isinstance(part, str):
                pieces.append(part)
                continue
            value = values.get(part.name)
            if not value:
                if part.default is None:
                    raise MissingField(part.name)
                value = part.default
            pieces.append(value)
        return "".join(pieces)


def _field_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def contact_fields(phone: str, name: str | None, email: str | None,
                   attributes: Mapping[str, object]) -> dict[str, str]:
    """A contact's fields by case-folded name: its attributes, then ``name``, ``email`` and
    ``phone`` (which win over attributes of the same name). Empty values are left out."""
    values: dict[str, str] = {}
    for key, value in attributes.items():
        text = _field_text(value)
        if text:
            values.setdefault(key.casefold(), text)
    for key, text in (("name", name), ("email", email), ("phone", phone)):
        if text:
            values[key] = text
    return values


# --- recipients --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Recipient:
    """One recipient as its source gave it; ``problem`` is ``(code, reason)`` for one its
    source already refused (a CSV row with the wrong number of cells)."""

    row: int | None
    phone: str
    contact_id: str | None = None
    fields: Mapping[str, str] | None = None
    problem: tuple[str, str] | None = None


def invalid_csv(detail: str) -> InvalidInput:
    """``InvalidInput(invalid_csv)`` about the uploaded ``file``."""
    return InvalidInput(f"file: {detail}", "invalid_csv", [FieldError("file", detail)])


class _LineTooLong(Exception):
    pass


def _lines(text: TextIO) -> Iterator[str]:
    while line := text.readline(MAX_LINE_CHARS):
        if len(line) == MAX_LINE_CHARS and line[-1] not in "\r\n":
            raise _LineTooLong
        yield line


@dataclass(frozen=True)
class CsvColumns:
    """Where a CSV's cells are: ``width`` cells a row, the phone at ``phone``, and the
    ``fields`` a recipient carries as (case-folded name, index)."""

    width: int
    phone: int
    fields: tuple[tuple[str, int], ...]


def column_index(header: list[str]) -> dict[str, int]:
    """The header's columns by name, trimmed and case-folded; ``invalid_csv`` for a column
    without a name or one named twice (in any case)."""
    index: dict[str, int] = {}
    for position, raw in enumerate(header):
        name = raw.strip().casefold()
        if not name:
            raise invalid_csv(f"column {position + 1} of the header has no name")
        if name in index:
            raise invalid_csv(f"column {raw.strip()!r} appears twice in the header")
        index[name] = position
    return index


def _broadcast_columns(header: list[str], template: TextTemplate) -> CsvColumns:
    index = column_index(header)
    if "phone" not in index:
        raise invalid_csv("the header has no phone column")
    missing = sorted(template.required - set(index))
    if missing:
        raise InvalidInput.for_field(
            "text", f"uses {', '.join('{{' + name + '}}' for name in missing)} but the file has "
            "no such column", "unknown_field")
    return CsvColumns(width=len(header), phone=index["phone"],
                      fields=tuple((name, index[name]) for name in sorted(template.fields)
                                   if name in index and name != "phone"))


def csv_recipients(source: BinaryIO, columns: Callable[[list[str]], CsvColumns],
                   header_hint: str, *, strict: bool = False) -> Iterator[Recipient]:
    """A UTF-8 CSV's data rows as recipients, read a line at a time from ``source``.

    The first non-blank row is the header, which ``columns`` reads (raising what it refuses);
    rows are numbered from 1 after it, and blank rows are skipped but keep their number. A row
    with another number of cells than the header carries its ``problem``; cells are trimmed.
    Raises ``InvalidInput``: ``invalid_csv`` for an empty file (``header_hint`` says which
    columns the header must name), a line over ``MAX_LINE_CHARS`` or broken quoting,
    ``invalid_encoding`` for bytes that are not UTF-8 (a BOM is fine). ``strict`` also
    refuses a quote left open at the end of the file (else the rest of the file is one cell)
    and text after a closing quote (the ``csv`` module's strict mode)."""
    text = io.TextIOWrapper(source, encoding="utf-8-sig", newline="")
    number = -1
    try:
        records = csv.reader(_lines(text), strict=strict)
        header = next((cells for cells in records if "".join(cells).strip()), None)
        if header is None:
            raise invalid_csv(f"the file is empty: its first row must name the columns, "
                              f"{header_hint}")
        layout = columns(header)
        number = 0
        for cells in records:
            number += 1
            if not "".join(cells).strip():
                continue
            if len(cells) != layout.width:
                phone = cells[layout.phone] if layout.phone < len(cells) else ""
                yield Recipient(number, phone, problem=(
                    "invalid_row", f"expected {layout.width} columns, found {len(cells)}"))
                continue
            fields = ({name: cells[position].strip() for name, position in layout.fields}
                      if layout.fields else None)
            yield Recipient(number, cells[layout.phone], fields=fields)
    except UnicodeDecodeError:
        where = "" if number < 0 else f" (the first bad byte is after data row {number})"
        raise InvalidInput(f"file: not UTF-8 text{where}; save it as CSV UTF-8",
                           "invalid_encoding", [FieldError("file", "not UTF-8")]) from None
    except _LineTooLong:
        raise invalid_csv(f"a line is longer than {MAX_LINE_CHARS} characters") from None
    except csv.Error as exc:
        where = "the header" if number < 0 else f"data row {number + 1}"
        raise invalid_csv(f"{where} is not valid CSV ({exc}); is a quote left open?") from None
    finally:
        text.detach()


def _segment_query(tenant_id: str, segment: str, with_fields: bool, after: str,
                   limit: int) -> Select[Any]:
    columns: list[Any] = [Contact.id, Contact.phone]
    if with_fields:
        columns += [Contact.name, Contact.email, Contact.attributes]
    return (select(*columns)
            .join(ContactLabel, ContactLabel.contact_id == Contact.id)
            .where(Contact.tenant_id == tenant_id, ContactLabel.tenant_id == tenant_id,
                   ContactLabel.kind == SEGMENT, ContactLabel.name == segment,
                   Contact.id > after)
            .order_by(Contact.id).limit(limit))


async def _segment_page(session: AsyncSession, tenant_id: str, segment: str,
                        template: TextTemplate, after: str) -> list[Recipient]:
    """The next ``CHUNK_SIZE`` contacts of the segment by contact id after ``after`` (keyset
    pages: memory stays bounded), with their fields when the text uses any."""
    with_fields = bool(template.fields)
    rows = (await session.execute(_segment_query(tenant_id, segment, with_fields, after,
                                                 CHUNK_SIZE))).all()
    if not with_fields:
        return [Recipient(None, row.phone, row.id) for row in rows]
    return [Recipient(None, row.phone, row.id,
                       contact_fields(row.phone, row.name, row.email, row.attributes or {}))
            for row in rows]


# --- acceptance --------------------------------------------------------------------------------

class Rejections:
    """Recipients that were not sent to: all counted, the first ``MAX_LISTED_REJECTIONS``
    listed, the wallet's refusals also counted apart."""

    def __init__(self) -> None:
        self.count = 0
        self.listed: list[RejectedRow] = []
        self.wallet = 0

    def add(self, recipient: Recipient, code: str, reason: str) -> None:
        self.count += 1
        if code == "insufficient_balance":
            self.wallet += 1
        if len(self.listed) < MAX_LISTED_REJECTIONS:
            self.listed.append(RejectedRow(recipient.row, recipient.contact_id,
                                           recipient.phone.strip()[:64], code, reason))


class RowCopies:
    """Built message rows by key: ``build`` runs for the first recipient of a key, and every
    later one gets a copy with its own id and number (or the same refusal). The key must name
    everything the row depends on but the number itself, including the number's country
    calling code (``calling_code``: the DLT rules apply to +91). At most ``size`` rows are
    kept (then the cache starts again)."""

    def __init__(self, size: int = _BUILT_CACHE_SIZE) -> None:
        self._rows: dict[Hashable, PendingMessage | InvalidInput] = {}
        self._size = size

    def row(self, key: Hashable, e164: str,
            build: Callable[[], PendingMessage | InvalidInput]) -> PendingMessage | InvalidInput:
        template = self._rows.get(key)
        if template is None:
            template = build()
            if len(self._rows) >= self._size:
                self._rows.clear()
            self._rows[key] = template
            return template
        if isinstance(template, InvalidInput):
            return template
        row = template.row.copy()
        row["id"] = new_id()
        row["to_number"] = e164
        return PendingMessage(row=row, debit_minor=template.debit_minor)


class ChunkStore:
    """Stores built messages a chunk at a time in the caller's session. On PostgreSQL each
    chunk is written by a task that runs while the caller builds the next (``put`` first waits
    for the previous one). On SQLite ``put`` writes the chunk before it returns: its driver
    binds rows in a thread that contends with the builder for the GIL, and overlapping made
    100,000 rows slower (10.5 s against 9.3 s). ``accepted`` counts the stored messages; one
    the wallet refuses goes to ``rejections``."""

    def __init__(self, session: AsyncSession, now: datetime, rejections: Rejections) -> None:
        self._session = session
        self._now = now
        self._rejections = rejections
        self._storing: asyncio.Task[None] | None = None
        self._overlap = session.bind is None or session.bind.dialect.name != "sqlite"
        self.accepted = 0

    async def put(self, pending: list[PendingMessage], recipients: list[Recipient]) -> None:
        """Store ``pending`` (``recipients[i]`` asked for ``pending[i]``), or start to."""
        await self.settle()
        if self._overlap:
            self._storing = asyncio.create_task(self._store(pending, recipients))
        else:
            await self._store(pending, recipients)

    async def settle(self) -> None:
        """Wait until the chunk being stored is written (raising what writing it raised).
        Nothing else may use the session before."""
        if self._storing is not None:
            storing, self._storing = self._storing, None
            await storing

    async def abandon(self) -> None:
        """Let the chunk being stored finish, ignoring its outcome, so that the caller can roll
        back a session no task is using."""
        if self._storing is not None:
            storing, self._storing = self._storing, None
            await asyncio.gather(storing, return_exceptions=True)

    async def _store(self, pending: list[PendingMessage], recipients: list[Recipient]) -> None:
        if pending:
            await sms_send.store_messages(self._session, pending, self._now)
        for item, recipient in zip(pending, recipients, strict=True):
            if item.error is not None:  # the wallet's refusal; its number's repeats stay skipped
                self._rejections.add(recipient, item.error.code, item.error.detail)
            else:
                self.accepted += 1


class _Acceptance:
    """Turns recipients into stored messages, chunk by chunk (see the module docstring)."""

    def __init__(self, session: AsyncSession, plan: SendPlan, sender: Sender,
                 request: BroadcastRequest, template: TextTemplate, *, batch_id: str,
                 now: datetime, max_segments: int) -> None:
        self._session = session
        self._plan = plan
        self._sender = sender
        self._request = request
        self._template = template
        self._batch_id = batch_id
        self._now = now
        self._max_segments = max_segments
        self._accepted_phones: set[str] = set()
        self._copies = RowCopies()
        self.rejections = Rejections()
        self._store = ChunkStore(session, now, self.rejections)
        self.total = 0
        self.duplicates = 0

    @property
    def accepted(self) -> int:
        return self._store.accepted

    async def add(self, recipients: Sequence[Recipient], *, look_up_contacts: bool) -> None:
        """Validate and build one chunk of recipients, then start storing it (see
        ``settle``): the previous chunk is written while this one is built."""
        self.total += len(recipients)
        numbered: list[tuple[Recipient, str]] = []
        region = self._sender.default_region
        for index, recipient in enumerate(recipients):
            if index % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # the chunk being stored moves on meanwhile
            if recipient.problem is not None:
                self.rejections.add(recipient, *recipient.problem)
                continue
            try:
                numbered.append((recipient, to_e164(recipient.phone, region)))
            except InvalidPhone as exc:
                self.rejections.add(recipient, "invalid_phone", f"phone: {exc}")
        contacts: dict[str, dict[str, str]] = {}
        if look_up_contacts:
            await self.settle()
            contacts = await self._contact_fields([e164 for _r, e164 in numbered])
        pending: list[PendingMessage] = []
        kept: list[Recipient] = []
        for index, (recipient, e164) in enumerate(numbered):
            if index % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            if e164 in self._accepted_phones:
                self.duplicates += 1
                continue
            fields = recipient.fields if not look_up_contacts else contacts.get(e164, {})
            try:
                text = self._template.fill({**(fields or {}), "phone": e164}
                                           if self._template.fields else {})
            except MissingField as missing:
                self.rejections.add(recipient, "missing_field",
                                    f"text: no value for {{{{{missing.name}}}}}")
                continue
            outcome = self._copies.row((text, calling_code(e164)), e164,
                                       functools.partial(self._build, text, e164))
            if isinstance(outcome, InvalidInput):
                self.rejections.add(recipient, outcome.code, outcome.detail)
                continue
            self._accepted_phones.add(e164)
            pending.append(outcome)
            kept.append(recipient)
        await self._store.put(pending, kept)

    async def settle(self) -> None:
        await self._store.settle()

    async def abandon(self) -> None:
        await self._store.abandon()

    async def _contact_fields(self, phones: list[str]) -> dict[str, dict[str, str]]:
        found: dict[str, dict[str, str]] = {}
        for start in range(0, len(phones), CONTACT_LOOKUP_CHUNK):
            stored = await stored_by_phone(self._session, self._sender.tenant_id,
                                           set(phones[start:start + CONTACT_LOOKUP_CHUNK]))
            for phone, contact in stored.items():
                found[phone] = contact_fields(phone, contact.name, contact.email,
                                              contact.attributes)
        return found

    def _build(self, text: str, e164: str) -> PendingMessage | InvalidInput:
        request = self._request
        try:
            return sms_send.build_message_row(
                self._plan, self._sender,
                SendRequest(phone=e164, text=text, sms_app_id=self._plan.app.id,
                            sender_id=request.sender_id,
                            dlt_template_id=request.dlt_template_id, priority=request.priority,
                            scheduled_at=request.scheduled_at, ttl=request.ttl,
                            valid_until=request.valid_until, callback_url=request.callback_url),
                now=self._now, max_segments=self._max_segments, batch_id=self._batch_id)
        except InvalidInput as exc:
            if self._is_per_recipient(exc):
                return exc
            raise

    def _is_per_recipient(self, exc: InvalidInput) -> bool:
        """Whether ``exc`` is about one recipient (its number, its filled text, DLT) rather
        than the request, which every recipient would share."""
        names = {problem.field for problem in exc.fields}
        per_recipient = set(_RECIPIENT_FIELDS)
        if self._template.fields:
            per_recipient.add("text")
        return bool(names) and names <= per_recipient


def chunks(recipients: Iterator[Recipient], size: int) -> Iterator[list[Recipient]]:
    """``recipients`` in lists of ``size`` (the last one shorter), read as they are needed."""
    chunk: list[Recipient] = []
    for recipient in recipients:
        chunk.append(recipient)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def accept_broadcast(session: AsyncSession, sender: Sender, request: BroadcastRequest,
                           source: Source, *, now: datetime, max_segments: int) -> BroadcastView:
    """Validate, build and store a broadcast in the caller's transaction, as the module
    docstring describes, and return it (every accepted message ``queued``).

    Raises ``InvalidInput`` for a problem of the request as a whole (then the caller must roll
    back: rows of earlier chunks may have been written) and ``PaymentRequired`` when the wallet
    pays for no message at all.
    """
    if not request.text or not request.text.strip():
        raise InvalidInput.for_field("text", "must not be empty", "empty_text")
    template = TextTemplate.parse(request.text)
    plan = await sms_send.resolve_send_plan(session, sender.tenant_id, request.sms_app_id,
                                            request.dlt_template_id)
    batch_id = new_id()
    acceptance = _Acceptance(session, plan, sender, request, template, batch_id=batch_id,
                             now=now, max_segments=max_segments)
    try:
        await _add_all(session, sender.tenant_id, source, template, acceptance)
    except BaseException:
        await acceptance.abandon()
        raise
    rejections = acceptance.rejections
    total = acceptance.total
    if acceptance.accepted == 0:
        _refuse_empty(source, total, rejections)
    # Wallet refusals are only known after their chunk's other rejections: list by row.
    listed = sorted(rejections.listed, key=lambda rejected: rejected.row or 0)
    batch = Batch(id=batch_id, tenant_id=sender.tenant_id, channel_account_id=plan.app.id,
                  kind=BROADCAST_KIND, status=ACCEPTED, total=total, rejected=rejections.count,
                  rejected_rows=[row.as_json() for row in listed], created_at=now,
                  updated_at=now)
    session.add(batch)
    await session.flush()
    counts = dict.fromkeys(COUNTED_STATES, 0)
    counts[MessageState.QUEUED.value] = acceptance.accepted
    return _view(batch, counts)


async def _add_all(session: AsyncSession, tenant_id: str, source: Source,
                   template: TextTemplate, acceptance: _Acceptance) -> None:
    """Read ``source`` chunk by chunk into ``acceptance``; return once all is stored."""
    if isinstance(source, PhoneList):
        look_up = bool(template.fields - {"phone"})
        for start in range(0, len(source.phones), CHUNK_SIZE):
            chunk = [Recipient(start + offset + 1, phone) for offset, phone
                     in enumerate(source.phones[start:start + CHUNK_SIZE])]
            await acceptance.add(chunk, look_up_contacts=look_up)
    elif isinstance(source, SegmentSource):
        after = ""
        while True:
            await acceptance.settle()
            page = await _segment_page(session, tenant_id, source.name, template, after)
            if not page:
                break
            await acceptance.add(page, look_up_contacts=False)
            after = str(page[-1].contact_id)
    else:
        columns = functools.partial(_broadcast_columns, template=template)
        for chunk in chunks(csv_recipients(source.source, columns, "including phone"),
                            CHUNK_SIZE):
            await acceptance.add(chunk, look_up_contacts=False)
    await acceptance.settle()


_SOURCE_FIELDS: Final = {PhoneList: "phones", SegmentSource: "segment", CsvSource: "file"}


def _refuse_empty(source: Source, total: int, rejections: Rejections) -> None:
    if total == 0:
        what = {PhoneList: "phones is empty", SegmentSource: "the segment has no contacts",
                CsvSource: "the file has no data rows"}[type(source)]
        raise InvalidInput(f"no recipients: {what}", "no_recipients",
                           [FieldError(_SOURCE_FIELDS[type(source)], what)])
    if rejections.wallet:
        raise PaymentRequired("the wallet balance does not cover any message of this "
                              "broadcast; top it up", "insufficient_balance")
    first = [f"{_where(row)}: {row.reason}" for row in rejections.listed[:5]]
    raise InvalidInput(
        f"none of the {total} recipients can be sent to; the first: {'; '.join(first)}",
        "no_valid_recipients",
        [FieldError(_SOURCE_FIELDS[type(source)], problem) for problem in first])


def _where(row: RejectedRow) -> str:
    if row.contact_id is not None:
        return f"contact {row.contact_id}"
    return f"row {row.row}"


# --- reading -----------------------------------------------------------------------------------

async def state_counts(session: AsyncSession,
                        batch_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """Messages per state of each batch (through ``ix_messages_batch_id_state``)."""
    counts = {batch_id: dict.fromkeys(COUNTED_STATES, 0) for batch_id in batch_ids}
    if not batch_ids:
        return counts
    result = await session.execute(
        select(Message.batch_id, Message.state, func.count())
        .where(Message.batch_id.in_(batch_ids))
        .group_by(Message.batch_id, Message.state))
    for batch_id, state, count in result:
        if batch_id in counts and state in counts[batch_id]:
            counts[batch_id][state] = int(count)
    return counts


def batch_status(accepted: int, counts: Mapping[str, int]) -> str:
    """``queued`` while none of the ``accepted`` messages has left the queue, ``sending`` while
    some are queued or sending, then ``completed`` (``counts``: from ``state_counts``)."""
    waiting = counts[MessageState.QUEUED.value] + counts[MessageState.SENDING.value]
    if accepted and counts[MessageState.QUEUED.value] == accepted:
        return "queued"
    return "sending" if waiting else "completed"


def _view(batch: Batch, counts: dict[str, int]) -> BroadcastView:
    accepted = sum(counts.values())
    return BroadcastView(
        id=batch.id, sms_app_id=batch.channel_account_id, status=batch_status(accepted, counts),
        total=batch.total, accepted=accepted,
        duplicates=max(0, batch.total - batch.rejected - accepted), rejected=batch.rejected,
        counts=counts, rejected_rows=[RejectedRow.from_json(row) for row in batch.rejected_rows],
        rejected_truncated=batch.rejected > len(batch.rejected_rows),
        created_at=batch.created_at)


async def get_broadcast(session: AsyncSession, tenant_id: str, broadcast_id: str
                        ) -> BroadcastView:
    """The broadcast with live counters; ``NotFound(broadcast_not_found)`` when unknown or
    another tenant's."""
    batch = await get_owned(session, Batch, tenant_id, broadcast_id)
    if batch is None or batch.kind != BROADCAST_KIND:
        raise NotFound(f"broadcast {broadcast_id} not found", "broadcast_not_found")
    counts = await state_counts(session, [batch.id])
    return _view(batch, counts[batch.id])


async def list_broadcasts(session: AsyncSession, tenant_id: str, *, limit: int,
                          offset: int) -> tuple[list[BroadcastView], int]:
    """One page of the tenant's broadcasts, newest first, with live counters; and the count
    of all of them."""
    query = (owned_by(Batch, tenant_id).where(Batch.kind == BROADCAST_KIND)
             .order_by(Batch.id.desc()))
    total = int((await session.execute(
        select(func.count()).select_from(query.order_by(None).subquery()))).scalar_one())
    batches = list((await session.execute(query.limit(limit).offset(offset))).scalars())
    counts = await state_counts(session, [batch.id for batch in batches])
    return [_view(batch, counts[batch.id]) for batch in batches], total
