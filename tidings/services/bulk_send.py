"""Bulk sends from a CSV through one SMS app (the provider-slug API's ``POST …/bulk-send``), and
the live counters of the latest one (``GET …/progress``).

**The file.** UTF-8 (a BOM is fine), comma-separated, quoted as RFC 4180, read a line at a time
from a binary stream that stays open (the API hands over Starlette's spooled upload); never held
whole. The first non-blank row is the header, its names matched case-insensitively after
trimming: ``mobile`` and ``message`` are required, ``sender`` and ``datetime`` optional, and any
other column is ignored with a warning. A header without ``mobile`` or ``message``, with a column
that has no name or is named twice, an empty file, a header with no data rows, broken quoting (a
quote left open, text after a closing quote) or a line over 1 MiB is
``InvalidInput(invalid_csv)``; bytes that are not UTF-8 are ``invalid_encoding``. Either way
nothing is written.

**Rows** are numbered from 1 for the first row after the header; blank rows are skipped and not
counted. A row is sent when:

- ``mobile`` is E.164 with ``+``, or with ``00`` instead of the ``+``; digits without either are
  read first as a national number of the tenant's region, else as E.164 without its ``+``
  (``966501234567``);
- ``message`` is not empty and is at most ``TIDINGS_SMS_MAX_SEGMENTS`` parts (the rules of a
  single send, DLT included for Indian numbers);
- ``sender``, when given (else the app's sender id), passes ``provider_slugs.sender_problem``
  (a number of up to 15 digits, or 1 to 11 letters, digits, spaces and ``. - _ &``);
- ``datetime``, when given, is ISO 8601 (``2026-11-24T15:30:00Z``; naive means UTC): a time in
  the future schedules the row, one now or past sends it at once;
- the row has as many cells as the header has columns.

Any other row is an error, ``RejectedRow(row, mobile as written, code, reason)``: counted in
``failed``, and the first ``MAX_LISTED_ERRORS`` listed; the good rows are still sent. A row whose
recipient (in E.164) is that of an earlier row already taken is skipped with a warning: one job
sends to a number once. Warnings (unknown columns, skipped rows) are listed up to
``MAX_LISTED_WARNINGS``, then one line counts the rest. When no row at all can be sent the job
is refused: ``NoRowSendable`` (400, with the listed errors), or ``PaymentRequired`` (402) when
the wallet pays for none; nothing is written.

**Storage.** Each row becomes exactly the message a single send builds
(``sms_send.build_message_row``) through the tenant's app for the slug, ``queued``, with the
job's id as ``batch_id``; rows that share text, sender, schedule and country calling code are
built once and copied (``broadcasts.RowCopies``). They are written every ``CHUNK_SIZE`` rows by
``broadcasts.ChunkStore`` (the database writes one chunk while the next is read) inside the
caller's transaction: once it commits, every accepted row is on disk and the dispatcher sends
it. The job is a ``batches`` row of kind ``csv`` keeping ``total`` (data rows read),
``rejected`` (the rows in error) and the listed errors. Test-mode callers get test-mode messages
(simulator, never charged); priced apps debit the wallet per message, and a message the wallet
cannot pay for is a row error. Memory holds one chunk being read, one being written and the
numbers taken so far.

**Counters** are read live from the job's messages (``ix_messages_batch_id_state``): ``sent``
the messages the provider accepted (``sent``, ``delivered``, ``read``), ``failed`` those that
ended ``failed``, ``expired`` or ``cancelled`` plus the rows in error, ``pending`` those
``queued`` or ``sending``. Skipped repeats are in none of them, so
``total == sent + failed + pending + skipped repeats``. ``status`` is ``queued`` until a message
leaves the queue, ``sending`` while any is pending, then ``completed``.

**Small jobs are waited for.** A job of at most ``HOLD_MAX_ROWS`` rows with no row scheduled for
later is ``holdable``: the API waits (``wait_for_job``, up to ``HOLD_SECONDS``) until none of its
messages is pending, and its answer lists the provider's failures with the row errors
(``provider_failures``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Final

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.db.models import Batch, ChannelAccount, Message
from tidings.db.repos.scoped import get_owned, owned_by
from tidings.domain.ids import new_id
from tidings.domain.phone import InvalidPhone, calling_code, to_e164_digits_first
from tidings.domain.states import MessageState
from tidings.errors import InvalidInput, PaymentRequired
from tidings.services import sms_send
from tidings.services.broadcasts import (
    ACCEPTED,
    CHUNK_SIZE,
    YIELD_EVERY,
    ChunkStore,
    CsvColumns,
    Recipient,
    RejectedRow,
    Rejections,
    RowCopies,
    batch_status,
    chunks,
    column_index,
    csv_recipients,
    invalid_csv,
    state_counts,
)
from tidings.services.provider_slugs import in_slug_terms, parse_send_time, sender_problem
from tidings.services.sms_send import PendingMessage, Sender, SendPlan, SendRequest

BULK_KIND: Final = "csv"
HOLD_MAX_ROWS: Final = 200
"""Jobs of at most this many data rows are waited for (module docstring)."""
HOLD_SECONDS: Final = 30.0
"""The longest the API waits for a held job before answering 202."""
POLL_SECONDS: Final = 0.05
BUILT_ROWS_KEPT: Final = 256
"""Distinct (text, sender, schedule, calling code) rows kept for copying: each row of a file
may have its own text, and a kept row holds its text."""
MAX_LISTED_ERRORS: Final = 100
MAX_LISTED_WARNINGS: Final = 100
COLUMNS: Final = ("mobile", "message", "sender", "datetime")
REQUIRED_COLUMNS: Final = ("mobile", "message")

_S = MessageState
SENT_STATES: Final = (_S.SENT.value, _S.DELIVERED.value, _S.READ.value)
FAILED_STATES: Final = (_S.FAILED.value, _S.EXPIRED.value, _S.CANCELLED.value)
PENDING_STATES: Final = (_S.QUEUED.value, _S.SENDING.value)



class NoRowSendable(InvalidInput):
    """No row of the file can be sent; ``rows`` are the listed errors (the API shows them)."""

    def __init__(self, detail: str, rows: list[RejectedRow]) -> None:
        super().__init__(detail, "no_valid_rows")
        self.rows = rows


@dataclass(frozen=True)
class JobCounts:
    """A job's counters (module docstring); ``id`` None and ``status`` ``none`` when the app
    has no bulk job."""

    id: str | None
    status: str
    total: int
    sent: int
    failed: int
    pending: int

    @classmethod
    def none(cls) -> JobCounts:
        return cls(id=None, status="none", total=0, sent=0, failed=0, pending=0)


@dataclass(frozen=True)
class AcceptedJob:
    """A stored job: its counters right after storing, the listed row errors and warnings,
    whether the API should wait for it (``holdable``), and for a holdable job the data row
    of each message id (``rows``, for ``provider_failures``)."""

    counts: JobCounts
    errors: list[RejectedRow]
    warnings: list[str]
    holdable: bool
    rows: dict[str, Recipient] = field(default_factory=dict)


# --- reading a row -----------------------------------------------------------------------------

def _columns(header: list[str], warnings: _Warnings) -> CsvColumns:
    index = column_index(header)
    missing = [name for name in REQUIRED_COLUMNS if name not in index]
    if missing:
        raise invalid_csv(
            f"the header has no {' and no '.join(missing)} column: its first row must name "
            f"the columns {', '.join(COLUMNS)} (sender and datetime are optional)")
    for name, position in index.items():
        if name not in COLUMNS:
            warnings.add(f"column {header[position].strip()!r} is not used (the columns are "
                         f"{', '.join(COLUMNS)})")
    return CsvColumns(width=len(header), phone=index["mobile"],
                      fields=tuple((name, index[name]) for name in COLUMNS[1:] if name in index))


class _Warnings:
    def __init__(self) -> None:
        self.count = 0
        self._listed: list[str] = []

    def add(self, warning: str) -> None:
        self.count += 1
        if len(self._listed) < MAX_LISTED_WARNINGS:
            self._listed.append(warning)

    def listed(self) -> list[str]:
        more = self.count - len(self._listed)
        return self._listed + ([f"{more} more warnings are not listed"] if more else [])


# --- accepting a job ---------------------------------------------------------------------------

class _Job:
    """Turns data rows into stored messages, chunk by chunk (module docstring)."""

    def __init__(self, session: AsyncSession, plan: SendPlan, sender: Sender, *,
                 batch_id: str, now: datetime, max_segments: int) -> None:
        self._plan = plan
        self._sender = sender
        self.batch_id = batch_id
        self._now = now
        self._max_segments = max_segments
        self._taken: dict[str, int | None] = {}  # E.164 -> the row that took it
        self._copies = RowCopies(BUILT_ROWS_KEPT)
        self.rejections = Rejections()
        self.warnings = _Warnings()
        self.store = ChunkStore(session, now, self.rejections)
        self.total = 0
        self.scheduled = 0
        self.rows: dict[str, Recipient] | None = {}  # message id -> row, while holdable

    async def add(self, recipients: Sequence[Recipient]) -> None:
        """Validate and build one chunk of rows, then start storing it."""
        self.total += len(recipients)
        if self.total > HOLD_MAX_ROWS:
            self.rows = None
        pending: list[PendingMessage] = []
        kept: list[Recipient] = []
        for index, recipient in enumerate(recipients):
            if index % YIELD_EVERY == 0:
                await asyncio.sleep(0)  # the chunk being stored moves on meanwhile
            outcome = self._message(recipient)
            if isinstance(outcome, tuple):
                self.rejections.add(recipient, *outcome)
            elif outcome is not None:
                pending.append(outcome)
                kept.append(recipient)
                if self.rows is not None:
                    self.rows[outcome.row["id"]] = recipient
        await self.store.put(pending, kept)

    def _message(self, recipient: Recipient) -> PendingMessage | tuple[str, str] | None:
        """The row's message, ``(code, reason)`` when it cannot be sent, None for a repeat."""
        if recipient.problem is not None:
            return recipient.problem
        if not recipient.phone.strip():
            return "invalid_phone", "mobile: is empty"
        try:
            e164 = to_e164_digits_first(recipient.phone, self._sender.default_region)
        except InvalidPhone as exc:
            return "invalid_phone", f"mobile: {exc}"
        if e164 in self._taken:
            self.warnings.add(f"row {recipient.row}: {e164} was already taken by row "
                              f"{self._taken[e164]}; skipped (one message per recipient)")
            return None
        cells = recipient.fields or {}
        sender = cells.get("sender") or None
        if sender is not None and (problem := sender_problem(sender)) is not None:
            return "invalid_sender", f"sender: {problem}"
        try:
            when = parse_send_time(cells.get("datetime"), self._now)
        except InvalidInput as exc:
            return exc.code, exc.detail
        text = cells.get("message", "")
        outcome = self._copies.row((text, sender, when, calling_code(e164)), e164,
                                   functools.partial(self._build, text, e164, sender, when))
        if isinstance(outcome, InvalidInput):
            return outcome.code, in_slug_terms(outcome).detail
        self._taken[e164] = recipient.row
        if when is not None:
            self.scheduled += 1
        return outcome

    def _build(self, text: str, e164: str, sender: str | None,
               when: datetime | None) -> PendingMessage | InvalidInput:
        try:
            return sms_send.build_message_row(
                self._plan, self._sender,
                SendRequest(phone=e164, text=text, sms_app_id=self._plan.app.id,
                            sender_id=sender, scheduled_at=when),
                now=self._now, max_segments=self._max_segments, batch_id=self.batch_id)
        except InvalidInput as exc:  # every input is the row's own
            return exc


async def accept_job(session: AsyncSession, sender: Sender, app: ChannelAccount,
                     source: BinaryIO, *, now: datetime, max_segments: int,
                     chunk_rows: int = CHUNK_SIZE) -> AcceptedJob:
    """Read the CSV in ``source`` and store its rows as one job through ``app``, in the
    caller's transaction (module docstring), ``chunk_rows`` rows at a time. Every accepted
    message is ``queued``.

    Raises ``InvalidInput`` for a bad file (``invalid_csv``, ``invalid_encoding``),
    ``NoRowSendable`` when no row can be sent and ``PaymentRequired`` when the wallet pays for
    none; then the caller must roll back (earlier chunks may have been written).
    """
    plan = SendPlan(app=app, template_body=None)
    job = _Job(session, plan, sender, batch_id=new_id(), now=now, max_segments=max_segments)
    columns = functools.partial(_columns, warnings=job.warnings)
    try:
        rows = csv_recipients(source, columns, "including mobile and message", strict=True)
        for chunk in chunks(rows, chunk_rows):
            await job.add(chunk)
        await job.store.settle()
    except BaseException:
        await job.store.abandon()
        raise
    rejections = job.rejections
    # The wallet's refusals are known only after their chunk's other errors: list by row.
    listed = sorted(rejections.listed, key=lambda rejected: rejected.row or 0)
    accepted = job.store.accepted
    if accepted == 0:
        _refuse(job.total, rejections, listed)
    batch = Batch(id=job.batch_id, tenant_id=sender.tenant_id, channel_account_id=app.id,
                  kind=BULK_KIND, status=ACCEPTED, total=job.total, rejected=rejections.count,
                  rejected_rows=[row.as_json() for row in listed[:MAX_LISTED_ERRORS]],
                  created_at=now, updated_at=now)
    session.add(batch)
    await session.flush()
    counts = JobCounts(id=batch.id, status=_S.QUEUED.value, total=job.total, sent=0,
                       failed=rejections.count, pending=accepted)
    holdable = job.rows is not None and job.scheduled == 0
    return AcceptedJob(counts, listed[:MAX_LISTED_ERRORS], job.warnings.listed(), holdable,
                       job.rows if holdable and job.rows is not None else {})


def _refuse(total: int, rejections: Rejections, listed: list[RejectedRow]) -> None:
    if total == 0:
        raise invalid_csv("the file has no data rows: add one row per message under the header")
    if rejections.wallet:
        raise PaymentRequired("the wallet balance does not cover any message of this file; "
                              "top it up", "insufficient_balance")
    first = "; ".join(f"row {row.row}: {row.reason}" for row in listed[:3])
    raise NoRowSendable(f"none of the {total} rows can be sent; the first: {first}",
                        listed[:MAX_LISTED_ERRORS])


# --- counting ----------------------------------------------------------------------------------

def _counts(batch: Batch, by_state: dict[str, int]) -> JobCounts:
    accepted = sum(by_state.values())
    return JobCounts(id=batch.id, status=batch_status(accepted, by_state), total=batch.total,
                     sent=sum(by_state[state] for state in SENT_STATES),
                     failed=batch.rejected + sum(by_state[state] for state in FAILED_STATES),
                     pending=sum(by_state[state] for state in PENDING_STATES))


async def job_counts(session: AsyncSession, tenant_id: str, job_id: str) -> JobCounts:
    """The live counters of the tenant's job ``job_id`` (``none`` when there is no such job)."""
    batch = await get_owned(session, Batch, tenant_id, job_id)
    if batch is None or batch.kind != BULK_KIND:
        return JobCounts.none()
    return _counts(batch, (await state_counts(session, [batch.id]))[batch.id])


async def latest_job(session: AsyncSession, tenant_id: str, app_id: str) -> JobCounts:
    """The live counters of the tenant's newest bulk job through ``app_id``, or ``none``."""
    batch = (await session.execute(
        owned_by(Batch, tenant_id)
        .where(Batch.kind == BULK_KIND, Batch.channel_account_id == app_id)
        .order_by(Batch.id.desc()).limit(1))).scalar_one_or_none()
    if batch is None:
        return JobCounts.none()
    return _counts(batch, (await state_counts(session, [batch.id]))[batch.id])


async def wait_for_job(sessions: async_sessionmaker[AsyncSession], tenant_id: str,
                       job_id: str, *, until: float, monotonic: Callable[[], float],
                       poll_seconds: float = POLL_SECONDS) -> JobCounts:
    """The job's counters once none of its messages is pending, or when ``monotonic()``
    reaches ``until``, whichever comes first; read every ``poll_seconds`` in a new session."""
    while True:
        async with sessions() as reads:
            counts = await job_counts(reads, tenant_id, job_id)
        if counts.pending == 0 or monotonic() >= until:
            return counts
        await asyncio.sleep(poll_seconds)


async def provider_failures(session: AsyncSession, job_id: str,
                            rows: dict[str, Recipient]) -> list[RejectedRow]:
    """The job's messages that ended failed, expired or cancelled, as errors of the data rows
    in ``rows`` (message id -> row), with the provider's code and text."""
    found = await session.execute(
        select(Message.id, Message.state, Message.error_code, Message.error_detail)
        .where(Message.batch_id == job_id, Message.state.in_(FAILED_STATES)))
    failures = []
    for message_id, state, code, detail in found:
        recipient = rows.get(message_id)
        if recipient is not None:
            failures.append(RejectedRow(recipient.row, None, recipient.phone.strip()[:64],
                                        code or state, _failure_reason(state, code, detail)))
    return failures


def _failure_reason(state: str, code: str | None, detail: str | None) -> str:
    said = ": ".join(part for part in (code, detail) if part)
    if state == _S.FAILED.value:
        return f"not sent: {said}" if said else "not sent"
    return f"{state}: {said}" if said else state


def merged_errors(errors: Iterable[RejectedRow]) -> list[RejectedRow]:
    """Errors in row order, the first ``MAX_LISTED_ERRORS``."""
    return sorted(errors, key=lambda rejected: rejected.row or 0)[:MAX_LISTED_ERRORS]
