"""Messages on the Android surface: what clients send, track and cancel, what phones pull, and
the states phones report.

A message to N numbers is one ``android_messages`` header and N ordinary ``messages`` rows (so
it shows in ``/sms/v1/messages/`` and takes reports like any other), ``queued`` with no
``next_attempt_at``: the dispatcher leaves it for a phone. A message sent to an ``ANDROID`` app
through another API has no header until a phone pulls it; the pull adopts it (a header with the
row's id as its id, for the pulling phone).

The header's Android state is computed from its rows (``derived_state``): the aggregate of the
recipients' states, or ``Cancelling`` while a cancel waits for the phone. It is also stored
(``state``) for listing filters and pulls, and recomputed wherever rows change.
"""

from __future__ import annotations

import base64
import binascii
import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import AndroidDevice, AndroidMessage, ChannelAccount, Message, MessageEvent
from tidings.domain.android import (
    aggregate_state,
    android_state,
    format_time,
    neutral_state,
    new_nanoid,
    parse_time,
    reported_state,
)
from tidings.domain.ids import new_id
from tidings.domain.phone import InvalidPhone, to_mobile_e164
from tidings.domain.segments import count_segments
from tidings.domain.states import MessageState
from tidings.errors import Conflict, Forbidden, InvalidInput, NotFound, ServiceUnavailable
from tidings.providers.base import StatusUpdate
from tidings.providers.sms.android import Config
from tidings.services import callback_events
from tidings.services.android.access import AndroidCaller
from tidings.services.callback_queue import MessageSnapshot
from tidings.services.reports import apply_status_updates

_S = MessageState
PENDING, CANCELLING = "Pending", "Cancelling"
MAX_RECIPIENTS = 100
MAX_PHONE_LENGTH = 128
MAX_ID_LENGTH = 36
MAX_TEXT_LENGTH = 65535
MIN_TTL_SECONDS = 5
PULL_LIMIT = 100
LIST_LIMIT_DEFAULT, LIST_LIMIT_MAX = 50, 100
PRIORITY_MIN, PRIORITY_MAX = -128, 127


@dataclass(frozen=True)
class AndroidSend:
    """One ``POST /messages`` as the client wrote it (the API checked only the JSON types).
    Exactly one of ``text`` and ``data`` is set."""

    phone_numbers: Sequence[str]
    text: str | None = None
    data: str | None = None
    data_port: int | None = None
    ext_id: str | None = None
    device_id: str | None = None
    sim_number: int | None = None
    ttl: int | None = None
    valid_until: datetime | None = None
    schedule_at: datetime | None = None
    with_delivery_report: bool = True
    priority: int = 0
    is_encrypted: bool = False


@dataclass(frozen=True)
class SendOptions:
    """The query of ``POST /messages``: ``skipPhoneValidation``, ``deviceActiveWithin``."""

    skip_phone_validation: bool = False
    device_active_within_hours: int | None = None


@dataclass
class AndroidMessageView:
    """A header with its recipients' rows, in the order they were given."""

    header: AndroidMessage
    rows: list[Message] = field(default_factory=list)

    @property
    def state(self) -> str:
        return derived_state(self.header, self.rows)


@dataclass(frozen=True)
class ListFilters:
    """``GET /messages`` filters: created in [``since``, ``until``), state, phone, paging."""

    since: datetime | None = None
    until: datetime | None = None
    state: str | None = None
    device_id: str | None = None
    limit: int = LIST_LIMIT_DEFAULT
    offset: int = 0
    newest_first: bool = True


@dataclass(frozen=True)
class RecipientReport:
    phone_number: str
    state: str
    error: str | None = None


@dataclass(frozen=True)
class PhoneReport:
    """One entry of a phone's ``PATCH /mobile/v1/message``."""

    ext_id: str
    state: str
    recipients: Sequence[RecipientReport] = ()
    states: dict[str, str] = field(default_factory=dict)


def derived_state(header: AndroidMessage, rows: Sequence[Message]) -> str:
    """The header's Android state from its rows (module docstring)."""
    if header.cancel_requested and any(row.state == _S.QUEUED.value for row in rows):
        return CANCELLING
    return aggregate_state([android_state(row.state) for row in rows])


# --- sending --------------------------------------------------------------------------------


async def send_message(session: AsyncSession, caller: AndroidCaller, request: AndroidSend,
                       options: SendOptions, *, now: datetime) -> AndroidMessageView:
    """Validate and store one message for one of the login's phones (module docstring).

    ``InvalidInput`` for any rule of the spec (content, numbers, SIM, priority, ttl/validUntil,
    scheduleAt, device), ``Conflict`` for an id the tenant already used, ``ServiceUnavailable``
    when the phone's queue limits are exceeded, ``Forbidden`` for a test-mode key. Nothing is
    stored then.
    """
    if not caller.live:
        raise Forbidden("test-mode API keys cannot send through phones (phones send real "
                        "SMS); use a live key or the login", "test_mode_key")
    app = await session.get(ChannelAccount, caller.app_id)
    assert app is not None  # the caller was authenticated through this active app
    config = Config.model_validate(app.config)
    content = _content(request)
    numbers = _numbers(request, options, config.default_region)
    if request.sim_number is not None and not 1 <= request.sim_number <= 3:
        raise InvalidInput.for_field("simNumber", "must be 1 to 3")
    if not PRIORITY_MIN <= request.priority <= PRIORITY_MAX:
        raise InvalidInput.for_field("priority", f"must be {PRIORITY_MIN} to {PRIORITY_MAX}")
    valid_until = _valid_until(request, now)
    if request.schedule_at is not None:
        if request.schedule_at <= now:
            raise InvalidInput.for_field("scheduleAt", "must be in the future")
        if valid_until is not None and request.schedule_at > valid_until:
            raise InvalidInput.for_field("scheduleAt", "must not be after validUntil")
    ext_id = request.ext_id if request.ext_id is not None else new_nanoid()
    if not 1 <= len(ext_id) <= MAX_ID_LENGTH:
        raise InvalidInput.for_field("id", f"must be 1 to {MAX_ID_LENGTH} characters")
    device = await _choose_device(session, caller, request.device_id,
                                  options.device_active_within_hours, now)
    await _check_queue_limits(session, device, config, now)
    if await _ext_id_taken(session, caller.tenant_id, ext_id):
        raise _duplicate(ext_id)
    header = AndroidMessage(
        id=new_id(), tenant_id=caller.tenant_id, channel_account_id=app.id,
        login_id=caller.login_id, device_id=device.id, ext_id=ext_id,
        text=content if request.text is not None else None,
        data=content if request.data is not None else None, data_port=request.data_port,
        is_encrypted=request.is_encrypted, is_hashed=False,
        with_delivery_report=request.with_delivery_report, sim_number=request.sim_number,
        priority=request.priority, valid_until=valid_until, schedule_at=request.schedule_at,
        cancel_requested=False, state=PENDING, states={PENDING: format_time(now)},
        created_at=now, updated_at=now)
    # Ids sorted so that the rows keep the order the numbers were given in.
    ids = sorted(new_id() for _ in numbers)
    rows = [_row(row_id, header, number, content, request, now)
            for row_id, number in zip(ids, numbers, strict=True)]
    try:
        async with session.begin_nested():
            session.add(header)
            await session.flush()
            await session.execute(insert(cast(Table, Message.__table__)), rows)
    except IntegrityError:  # the same id, accepted concurrently
        raise _duplicate(ext_id) from None
    stored = await _rows_of(session, [header.id])
    return AndroidMessageView(header, stored.get(header.id, []))


def _content(request: AndroidSend) -> str:
    if (request.text is None) == (request.data is None):
        raise InvalidInput.for_field("textMessage",
                                     "exactly one of message, textMessage or dataMessage "
                                     "is required")
    if request.text is not None:
        if not request.text:
            raise InvalidInput.for_field("textMessage.text", "must not be empty")
        if len(request.text) > MAX_TEXT_LENGTH:
            raise InvalidInput.for_field("textMessage.text",
                                         f"must be at most {MAX_TEXT_LENGTH} characters")
        if "\x00" in request.text:
            raise InvalidInput.for_field("textMessage.text", "must not contain NUL")
        return request.text
    data = request.data or ""
    if not request.is_encrypted:
        try:
            base64.b64decode(data, validate=True)
        except binascii.Error:
            raise InvalidInput.for_field("dataMessage.data", "must be base64") from None
    if not data:
        raise InvalidInput.for_field("dataMessage.data", "must not be empty")
    if request.data_port is None or not 1 <= request.data_port <= 65535:
        raise InvalidInput.for_field("dataMessage.port", "must be 1 to 65535")
    return data


def _numbers(request: AndroidSend, options: SendOptions, region: str) -> list[str]:
    if not 1 <= len(request.phone_numbers) <= MAX_RECIPIENTS:
        raise InvalidInput.for_field("phoneNumbers", f"must list 1 to {MAX_RECIPIENTS} numbers")
    validate = not (request.is_encrypted or options.skip_phone_validation)
    numbers: list[str] = []
    for index, raw in enumerate(request.phone_numbers):
        if not raw or len(raw) > MAX_PHONE_LENGTH or "\x00" in raw:
            raise InvalidInput.for_field(f"phoneNumbers[{index}]",
                                         f"must be 1 to {MAX_PHONE_LENGTH} characters")
        if validate:
            try:
                numbers.append(to_mobile_e164(raw, region))
            except InvalidPhone as exc:
                raise InvalidInput.for_field(f"phoneNumbers[{index}]", str(exc)) from None
        else:
            numbers.append(raw)
    if len(set(numbers)) != len(numbers):
        raise InvalidInput.for_field("phoneNumbers", "must not repeat a number")
    return numbers


def _valid_until(request: AndroidSend, now: datetime) -> datetime | None:
    if request.ttl is not None and request.valid_until is not None:
        raise InvalidInput.for_field("ttl", "ttl and validUntil are mutually exclusive")
    if request.ttl is not None:
        if request.ttl < MIN_TTL_SECONDS or request.ttl > 10 * 365 * 24 * 3600:
            raise InvalidInput.for_field("ttl", f"must be at least {MIN_TTL_SECONDS} seconds")
        return now + timedelta(seconds=request.ttl)
    if request.valid_until is not None and request.valid_until <= now:
        raise InvalidInput.for_field("validUntil", "must be in the future")
    return request.valid_until


async def _choose_device(session: AsyncSession, caller: AndroidCaller, device_id: str | None,
                         active_within_hours: int | None, now: datetime) -> AndroidDevice:
    query = select(AndroidDevice).where(AndroidDevice.login_id == caller.login_id,
                                        AndroidDevice.deleted_at.is_(None))
    if device_id is not None:
        query = query.where(AndroidDevice.id == device_id)
    if active_within_hours is not None:
        if active_within_hours < 1:
            raise InvalidInput.for_field("deviceActiveWithin", "must be at least 1 hour")
        query = query.where(
            AndroidDevice.last_seen_at >= now - timedelta(hours=active_within_hours))
    devices = list((await session.execute(query)).scalars())
    if not devices:
        if device_id is not None:
            raise InvalidInput.for_field("deviceId", f"device {device_id} not found")
        raise InvalidInput("no device found: register a phone first", "no_device")
    return random.choice(devices)


async def _check_queue_limits(session: AsyncSession, device: AndroidDevice, config: Config,
                              now: datetime) -> None:
    if config.max_pending_per_device is None and config.max_pending_age_seconds is None:
        return
    count, oldest = (await session.execute(
        select(func.count(), func.min(AndroidMessage.created_at)).where(
            AndroidMessage.device_id == device.id, AndroidMessage.state == PENDING))).one()
    if config.max_pending_per_device is not None and count >= config.max_pending_per_device:
        raise ServiceUnavailable("queue limits exceeded: too many pending messages "
                                 f"({count}, limit {config.max_pending_per_device})",
                                 "queue_limit")
    if config.max_pending_age_seconds is not None and oldest is not None:
        if oldest.tzinfo is None:  # an aggregate is not typed: SQLite answers a naive time
            oldest = oldest.replace(tzinfo=now.tzinfo)
        if now - oldest > timedelta(seconds=config.max_pending_age_seconds):
            raise ServiceUnavailable("queue limits exceeded: a pending message is older than "
                                     f"{config.max_pending_age_seconds} s", "queue_limit")


async def _ext_id_taken(session: AsyncSession, tenant_id: str, ext_id: str) -> bool:
    found = await session.execute(select(AndroidMessage.id).where(
        AndroidMessage.tenant_id == tenant_id, AndroidMessage.ext_id == ext_id).limit(1))
    return found.first() is not None


def _duplicate(ext_id: str) -> Conflict:
    return Conflict(f"a message with id {ext_id} already exists", "duplicate_id")


def _row(row_id: str, header: AndroidMessage, number: str, content: str,
         request: AndroidSend, now: datetime) -> dict[str, Any]:
    if request.text is not None and not request.is_encrypted:
        info = count_segments(content)
        encoding, segments = info.encoding.value, min(info.segments, 255)
    else:  # data, or ciphertext: the phone knows what it will send
        encoding, segments = "binary", 1
    return {
        "id": row_id, "tenant_id": header.tenant_id,
        "channel_account_id": header.channel_account_id, "direction": "outbound",
        "mode": "live", "client_ref": None, "batch_id": None,
        "android_message_id": header.id, "to_number": number, "from_number": None,
        "text": content, "encoding": encoding, "segments": segments,
        "priority": header.priority, "state": _S.QUEUED.value, "dlt_template_id": None,
        "dlt_entity_id": None, "dlt_variables": None, "callback_url": None,
        "price_minor": None, "scheduled_at": header.schedule_at,
        "expires_at": header.valid_until, "next_attempt_at": None, "attempts": 0,
        "provider_message_id": None, "provider_status": None, "error_code": None,
        "error_detail": None, "created_at": now, "updated_at": now, "sent_at": None,
        "delivered_at": None, "read_at": None, "completed_at": None,
    }


# --- reading and cancelling -----------------------------------------------------------------


async def get_message(session: AsyncSession, caller: AndroidCaller,
                      ext_id: str) -> AndroidMessageView:
    """The login's message ``ext_id``; ``NotFound`` otherwise (another tenant's included)."""
    header = (await session.execute(select(AndroidMessage).where(
        AndroidMessage.tenant_id == caller.tenant_id, AndroidMessage.login_id == caller.login_id,
        AndroidMessage.ext_id == ext_id))).scalar_one_or_none()
    if header is None:
        raise NotFound("message not found", "message_not_found")
    rows = await _rows_of(session, [header.id])
    return AndroidMessageView(header, rows.get(header.id, []))


async def list_messages(session: AsyncSession, caller: AndroidCaller,
                        filters: ListFilters) -> tuple[list[AndroidMessageView], int]:
    """A page of the login's messages and the total matching ``filters``."""
    query = select(AndroidMessage).where(AndroidMessage.tenant_id == caller.tenant_id,
                                         AndroidMessage.login_id == caller.login_id)
    if filters.since is not None:
        query = query.where(AndroidMessage.created_at >= filters.since)
    if filters.until is not None:
        query = query.where(AndroidMessage.created_at < filters.until)
    if filters.state is not None:
        query = query.where(AndroidMessage.state == filters.state)
    if filters.device_id is not None:
        query = query.where(AndroidMessage.device_id == filters.device_id)
    total = (await session.execute(
        select(func.count()).select_from(query.subquery()))).scalar_one()
    order = (AndroidMessage.created_at.desc(), AndroidMessage.id.desc()) if filters.newest_first \
        else (AndroidMessage.created_at, AndroidMessage.id)
    headers = list((await session.execute(
        query.order_by(*order).limit(filters.limit).offset(filters.offset))).scalars())
    rows = await _rows_of(session, [header.id for header in headers])
    return [AndroidMessageView(header, rows.get(header.id, [])) for header in headers], total


async def cancel_message(session: AsyncSession, caller: AndroidCaller, ext_id: str,
                         now: datetime) -> AndroidMessageView:
    """Ask the phone to cancel a ``Pending`` message (it becomes ``Cancelling`` until the phone
    confirms); ``Conflict`` once it is anything else. Callers push ``MessageCancelled``."""
    view = await get_message(session, caller, ext_id)
    if view.state != PENDING:
        raise Conflict(f"message is {view.state}, not Pending: it can no longer be cancelled",
                       "not_cancellable")
    view.header.cancel_requested = True
    view.header.state = CANCELLING
    view.header.updated_at = now
    await session.flush()
    return view


# --- phones ---------------------------------------------------------------------------------


async def pull_for_device(session: AsyncSession, device: AndroidDevice, *, fifo: bool,
                          now: datetime) -> list[AndroidMessageView]:
    """What the phone should handle now: at most 100 of its ``Pending`` or ``Cancelling``
    messages, by ``scheduleAt``, then priority (highest first), then age (newest first unless
    ``fifo``). Messages sent to the app through other APIs are adopted first."""
    await _adopt_unassigned(session, device, now)
    age = ((AndroidMessage.created_at.asc(), AndroidMessage.id.asc()) if fifo
           else (AndroidMessage.created_at.desc(), AndroidMessage.id.desc()))
    headers = list((await session.execute(
        select(AndroidMessage).where(AndroidMessage.device_id == device.id,
                                     AndroidMessage.state.in_((PENDING, CANCELLING)))
        .order_by(AndroidMessage.schedule_at.is_not(None), AndroidMessage.schedule_at,
                  AndroidMessage.priority.desc(), *age).limit(PULL_LIMIT))).scalars())
    rows = await _rows_of(session, [header.id for header in headers])
    views = [AndroidMessageView(header, rows.get(header.id, [])) for header in headers]
    stale = [view for view in views if view.state not in (PENDING, CANCELLING)]
    for view in stale:  # expired or cancelled through another API since the state was stored
        view.header.state = view.state
    if stale:
        await session.flush()
    return [view for view in views if view.state in (PENDING, CANCELLING)]


async def apply_phone_reports(session: AsyncSession, device: AndroidDevice,
                              reports: Sequence[PhoneReport], now: datetime) -> int:
    """Apply what the phone says happened to its messages; unknown ids (and other phones'
    messages) are ignored. Answers how many messages it knew."""
    ext_ids = [report.ext_id for report in reports]
    headers = {header.ext_id: header for header in (await session.execute(
        select(AndroidMessage).where(AndroidMessage.device_id == device.id,
                                     AndroidMessage.ext_id.in_(ext_ids)))).scalars()}
    rows = await _rows_of(session, [header.id for header in headers.values()])
    updates: list[tuple[Message, StatusUpdate]] = []
    cancelled: list[Message] = []
    known = 0
    for report in reports:
        header = headers.get(report.ext_id)
        if header is None:
            continue
        known += 1
        try:
            reported_state(report.state)
        except ValueError:
            raise InvalidInput.for_field("state", f"unknown state {report.state!r}") from None
        mine = rows.get(header.id, [])
        by_number = {row.to_number: row for row in mine}
        targets: list[tuple[Message, str, str | None]] = []
        if report.recipients:
            for recipient in report.recipients:
                row = by_number.get(recipient.phone_number) or by_number.get(
                    "+" + recipient.phone_number.lstrip("+"))
                if row is not None:
                    targets.append((row, recipient.state, recipient.error))
        else:
            targets = [(row, report.state, None) for row in mine]
        for row, state, error in targets:
            update_ = _apply_recipient_state(session, row, state, error, now, cancelled)
            if update_ is not None:
                updates.append((row, update_))
        for name, stamp in report.states.items():
            if name in (*_PHONE_STATES, PENDING):
                try:
                    header.states = {**header.states,
                                     reported_state(name): format_time(parse_time(stamp))}
                except ValueError:
                    continue
        if reported_state(report.state) == "Cancelled":
            header.cancel_requested = False
        header.updated_at = now
    if updates:
        await apply_status_updates(session, updates, now)
    if cancelled:
        await callback_events.message_status_changed(
            session, [MessageSnapshot.of(row) for row in cancelled], now)
    await session.flush()
    for header in headers.values():
        header.state = derived_state(header, rows.get(header.id, []))
    await session.flush()
    return known


_PHONE_STATES = ("Processed", "Sent", "Delivered", "Failed", "Cancelled")
_REPORTED = {_S.SENT.value, _S.DELIVERED.value, _S.FAILED.value}


def _apply_recipient_state(session: AsyncSession, row: Message, android: str,
                           error: str | None, now: datetime,
                           cancelled: list[Message]) -> StatusUpdate | None:
    """Move one row as the phone says: ``Processed`` and ``Cancelled`` here (pipeline moves of
    a row still queued; a row cancelled is added to ``cancelled``, whose tenants hear of it),
    ``Sent``/``Delivered``/``Failed`` as the report answered (monotonic)."""
    try:
        target = neutral_state(android)
    except ValueError:
        raise InvalidInput.for_field("recipients.state", f"unknown state {android!r}") from None
    if target in _REPORTED:
        return StatusUpdate(provider_message_id=row.id, state=MessageState(target),
                            provider_status=reported_state(android),
                            error_detail=(error or None) and error[:500])
    allowed = {_S.SENDING.value: {_S.QUEUED.value},
               _S.CANCELLED.value: {_S.QUEUED.value, _S.SENDING.value}}[target]
    if row.state not in allowed:
        return None
    session.add(MessageEvent(message_id=row.id, tenant_id=row.tenant_id, kind="state",
                             state_from=row.state, state_to=target,
                             detail={"reported_by": "phone", "provider_status": android},
                             created_at=now))
    row.state = target
    row.updated_at = now
    if target == _S.CANCELLED.value:
        row.completed_at = now
        cancelled.append(row)
    return None


async def refresh_header_states(session: AsyncSession, header_ids: Iterable[str]) -> None:
    """Store the derived state of these headers again (after their rows changed elsewhere:
    expiry, a cancel through the native API)."""
    ids = list(set(header_ids))
    if not ids:
        return
    headers = list((await session.execute(
        select(AndroidMessage).where(AndroidMessage.id.in_(ids)))).scalars())
    rows = await _rows_of(session, ids)
    for header in headers:
        header.state = derived_state(header, rows.get(header.id, []))
    await session.flush()


async def _adopt_unassigned(session: AsyncSession, device: AndroidDevice,
                            now: datetime) -> None:
    """Give the pulling phone the app's messages that came through other APIs."""
    rows = list((await session.execute(
        select(Message).where(Message.channel_account_id == device.channel_account_id,
                              Message.android_message_id.is_(None),
                              Message.direction == "outbound", Message.mode == "live",
                              Message.state == _S.QUEUED.value)
        .order_by(Message.id).limit(PULL_LIMIT))).scalars())
    # Header ids sorted like the rows': the phone's order among equals follows the rows'.
    for header_id, row in zip(sorted(new_id() for _ in rows), rows, strict=True):
        header = AndroidMessage(
            id=header_id, tenant_id=row.tenant_id, channel_account_id=row.channel_account_id,
            login_id=device.login_id, device_id=device.id, ext_id=row.id, text=row.text,
            data=None, data_port=None, is_encrypted=False, is_hashed=False,
            with_delivery_report=True, sim_number=None, priority=row.priority,
            valid_until=row.expires_at, schedule_at=row.scheduled_at, cancel_requested=False,
            state=PENDING, states={PENDING: format_time(row.created_at)},
            created_at=row.created_at, updated_at=now)
        try:
            async with session.begin_nested():
                session.add(header)
                await session.flush()
                claimed = await session.execute(
                    update(Message).where(Message.id == row.id,
                                          Message.android_message_id.is_(None))
                    .values(android_message_id=header.id)
                    .execution_options(synchronize_session=False))
                if claimed.rowcount == 0:  # type: ignore[attr-defined]
                    raise _TakenMeanwhile
        except (_TakenMeanwhile, IntegrityError):
            continue


class _TakenMeanwhile(Exception):
    """Another phone adopted the row first."""


async def _rows_of(session: AsyncSession, header_ids: Sequence[str]) -> dict[str, list[Message]]:
    if not header_ids:
        return {}
    found: dict[str, list[Message]] = defaultdict(list)
    for row in (await session.execute(select(Message).where(
            Message.android_message_id.in_(header_ids)).order_by(Message.id))).scalars():
        found[cast(str, row.android_message_id)].append(row)
    return found
