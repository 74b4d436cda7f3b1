"""Applying what providers report: delivery reports, inbound messages, unknown status words.

Reports are applied monotonically (``merge_report``): a late ``sent`` never overwrites
``delivered``. A report identical to one already recorded for the message (same provider
status word) is a redelivery and changes nothing, not even the history. A report for a provider
id no message carries yet is kept in ``unmatched_reports`` and applied when the dispatcher
records that id (``apply_unmatched_reports``). A long message whose provider gave an id per
part (``message_parts``) takes its parts' reports together: failed when one part fails,
delivered when all are. The parts of a long inbound message that arrive one by one
(``InboundPart``) are kept until all are in and stored as one message. Inbound messages are
stored once per provider message id. Each state change and each stored inbound message queues
the tenant's callbacks (``callback_events``) in the same transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import (
    ChannelAccount,
    Message,
    MessageEvent,
    MessagePart,
    PendingInboundPart,
    UnmatchedReport,
)
from tidings.db.repos.message_numbers import next_message_number
from tidings.domain.ids import new_id
from tidings.domain.phone import to_e164
from tidings.domain.segments import count_segments
from tidings.domain.states import MessageState, merge_report
from tidings.providers.base import (
    InboundMessage,
    InboundPart,
    StatusUpdate,
    UnknownStatus,
    WebhookEvent,
)
from tidings.services import callback_events, inbound_routing
from tidings.services.callback_queue import MessageSnapshot

INBOUND = "inbound"
REPORT_LOCK_NAMESPACE = 0x7EB0
"""The first key of the report locks (``hold_reports_of``); the second is the app's."""
INBOUND_PARTS_WAIT = timedelta(seconds=60)
"""How long the parts of a long inbound message wait for the others before what came is stored
as the message."""


@dataclass
class ReportSummary:
    """What one webhook changed, for logs and tests."""

    applied: int = 0
    unchanged: int = 0
    unmatched: int = 0
    inbound: int = 0
    ignored: int = 0


@dataclass(frozen=True)
class WebhookBatchItem:
    """The events of one verified webhook, and the app it came for."""

    account: ChannelAccount
    events: Sequence[WebhookEvent]


async def apply_webhook_events(session: AsyncSession, account: ChannelAccount,
                               events: Sequence[WebhookEvent], now: datetime) -> ReportSummary:
    """Apply each event of one verified webhook to ``account``'s messages."""
    [summary] = await apply_webhook_batch(session, [WebhookBatchItem(account, events)], now)
    return summary


async def apply_webhook_batch(session: AsyncSession, items: Sequence[WebhookBatchItem],
                              now: datetime) -> list[ReportSummary]:
    """Apply the events of several webhooks, in order, as one (a summary per webhook).

    The outbound messages the reports name are read in one query per app, and the status
    updates applied together (``apply_status_updates``: one history read, one callback
    enqueue), so a batch of webhooks costs a few statements, not a few per report."""
    summaries = [ReportSummary() for _ in items]
    reports: list[tuple[str, StatusUpdate | UnknownStatus, ReportSummary]] = []
    for item, summary in zip(items, summaries, strict=True):
        for event in item.events:
            if isinstance(event, StatusUpdate | UnknownStatus):
                reports.append((item.account.id, event, summary))
            elif isinstance(event, InboundMessage):
                if await store_inbound(session, item.account, event, now):
                    summary.inbound += 1
                else:
                    summary.unchanged += 1
            elif isinstance(event, InboundPart):
                if await store_inbound_part(session, item.account, event, now):
                    summary.inbound += 1
                else:
                    summary.unchanged += 1
    await _apply_reports(session, reports, now, keep_unmatched=True)
    await session.flush()
    return summaries


async def hold_reports_of(session: AsyncSession, app_ids: Iterable[str]) -> bool:
    """On PostgreSQL, take the apps' report locks until the transaction ends (True; False on
    SQLite, which writes one transaction at a time anyway). A report about to be kept as
    unmatched takes them and looks for its message again; an outcome takes them before it
    looks for reports that came early. Without them, a report could look while the outcome
    naming its provider id is being committed, as the outcome looks before the report is
    committed, and each would miss the other (an SMSC's receipt often comes that fast)."""
    if session.get_bind().dialect.name != "postgresql":
        return False
    for app_id in sorted(set(app_ids)):  # one order everywhere: no deadlock between holders
        await session.execute(select(func.pg_advisory_xact_lock(
            REPORT_LOCK_NAMESPACE, func.hashtext(app_id))))
    return True


async def _named(session: AsyncSession, wanted: dict[str, set[str]]
                 ) -> tuple[dict[tuple[str, str], MessagePart],
                            dict[tuple[str, str], Message]]:
    """The parts, then the messages, that the provider ids ``wanted`` (by app) name."""
    parts = await _parts_by_provider_ids(session, wanted)
    rest = {account_id: {id_ for id_ in ids if (account_id, id_) not in parts}
            for account_id, ids in wanted.items()}
    return parts, await _outbound_by_provider_ids(session, rest)


async def _apply_reports(session: AsyncSession,
                         reports: Sequence[tuple[str, StatusUpdate | UnknownStatus,
                                                 ReportSummary]],
                         now: datetime, *, keep_unmatched: bool) -> None:
    """Apply reports (app id, report, the summary to count it in), in order: to a part of a
    long message when the id is a part's (``message_parts``), else to the message with that
    provider id; kept in ``unmatched_reports`` (``keep_unmatched``) when neither exists yet.
    The parts and messages named are read in one query each per app."""
    wanted: dict[str, set[str]] = defaultdict(set)
    for account_id, event, _ in reports:
        if event.provider_message_id:
            wanted[account_id].add(event.provider_message_id)
    parts, found = await _named(session, wanted)
    missing: dict[str, set[str]] = defaultdict(set)
    for account_id, event, _ in reports:
        key = (account_id, event.provider_message_id or "")
        if isinstance(event, StatusUpdate) and key not in parts and key not in found:
            missing[account_id].add(key[1])
    if missing and keep_unmatched and await hold_reports_of(session, missing):
        # The outcome naming them may have committed while we looked: look again.
        more_parts, more_found = await _named(session, missing)
        parts.update(more_parts)
        found.update(more_found)
    updates: list[tuple[Message, StatusUpdate, ReportSummary]] = []
    part_updates: list[tuple[MessagePart, StatusUpdate, ReportSummary]] = []
    for account_id, event, summary in reports:
        key = (account_id, event.provider_message_id or "")
        if isinstance(event, UnknownStatus):
            summary.ignored += 1
            message = found.get(key)
            if message is not None:
                session.add(_event(message, "unknown_status", None, None, now,
                                   {"provider_status": event.provider_status}))
        elif (part := parts.get(key)) is not None:
            part_updates.append((part, event, summary))
        elif (message := found.get(key)) is not None:
            updates.append((message, event, summary))
        elif keep_unmatched:
            session.add(UnmatchedReport(
                id=new_id(), channel_account_id=account_id,
                provider_message_id=event.provider_message_id,
                report=_report_payload(event), created_at=now))
            summary.unmatched += 1
    if part_updates:
        updates += await _apply_part_reports(session, part_updates, now)
    changed = await _apply_status_updates(session, [(m, u) for m, u, _ in updates], now)
    for (_, _, summary), moved in zip(updates, changed, strict=True):
        if moved:
            summary.applied += 1
        else:
            summary.unchanged += 1


async def _apply_part_reports(session: AsyncSession,
                              reports: Sequence[tuple[MessagePart, StatusUpdate, ReportSummary]],
                              now: datetime) -> list[tuple[Message, StatusUpdate, ReportSummary]]:
    """Record each part's report (a ``part_report`` history entry), then answer the report
    each message's parts add up to: failed as soon as one part has failed, delivered once every
    part is delivered, nothing while parts are outstanding (a part's report that changes
    nothing counts as unchanged)."""
    message_ids = {part.message_id for part, _, _ in reports}
    messages = {m.id: m for m in (await session.execute(
        select(Message).where(Message.id.in_(message_ids)))).scalars()}
    all_parts: dict[str, list[MessagePart]] = defaultdict(list)
    for part in (await session.execute(select(MessagePart).where(
            MessagePart.message_id.in_(message_ids)).order_by(MessagePart.part))).scalars():
        all_parts[part.message_id].append(part)
    touched: dict[str, ReportSummary] = {}
    for part, update, summary in reports:
        message = messages.get(part.message_id)
        moved = merge_report(MessageState(part.state), update.state)
        if message is None or moved is None:
            summary.unchanged += 1
            continue
        part.state = moved.value
        part.provider_status = update.provider_status[:40]
        part.error_code = (update.error_code or None) and update.error_code[:64]
        part.reported_at = update.occurred_at or now
        detail: dict[str, Any] = {"part": part.part, "parts": len(all_parts[message.id]),
                                  "provider_message_id": part.provider_message_id,
                                  "provider_status": update.provider_status}
        if update.error_code:
            detail["error_code"] = update.error_code
        session.add(_event(message, "part_report", None, None, now, detail))
        touched[message.id] = summary
    whole: list[tuple[Message, StatusUpdate, ReportSummary]] = []
    for message_id, summary in touched.items():
        combined = _parts_combined(all_parts[message_id])
        if combined is None:
            summary.applied += 1  # the part moved; the message waits for its other parts
        else:
            whole.append((messages[message_id], combined, summary))
    return whole


def _parts_combined(parts: Sequence[MessagePart]) -> StatusUpdate | None:
    """The report a message's parts add up to, or None while they do not decide it yet."""
    failed = [part for part in parts if part.state == MessageState.FAILED.value]
    if failed:
        first = failed[0]
        return StatusUpdate(first.provider_message_id, MessageState.FAILED,
                            first.provider_status or "failed", first.error_code,
                            f"part {first.part} of {len(parts)}: {first.provider_status}",
                            first.reported_at)
    done = {MessageState.DELIVERED.value, MessageState.READ.value}
    if parts and all(part.state in done for part in parts):
        last = max(parts, key=lambda part: part.reported_at or datetime.min.replace(tzinfo=UTC))
        return StatusUpdate(last.provider_message_id, MessageState.DELIVERED,
                            last.provider_status or "delivered", occurred_at=last.reported_at)
    return None


async def apply_status_update(session: AsyncSession, message: Message, update: StatusUpdate,
                              now: datetime) -> bool:
    """Apply one report to ``message``; False when it was a redelivery or changed nothing."""
    return await apply_status_updates(session, [(message, update)], now) == 1


async def apply_status_updates(session: AsyncSession,
                               reports: Sequence[tuple[Message, StatusUpdate]],
                               now: datetime) -> int:
    """Apply each report to its message, in order; answers how many changed a state.

    A report whose provider status the message's history already holds is a redelivery and
    is skipped. The histories are read in one query for all the messages, so a batch of
    reports (the simulator's, a provider's batched webhook) costs one lookup, not one each."""
    return sum(await _apply_status_updates(session, reports, now))


async def _apply_status_updates(session: AsyncSession,
                                reports: Sequence[tuple[Message, StatusUpdate]],
                                now: datetime) -> list[bool]:
    """``apply_status_updates``, answering for each report whether it moved its message."""
    ids = {message.id for message, _ in reports}
    recorded: dict[str, set[str]] = {message_id: set() for message_id in ids}
    if ids:
        for message_id, detail in (await session.execute(
                select(MessageEvent.message_id, MessageEvent.detail).where(
                    MessageEvent.message_id.in_(ids), MessageEvent.kind == "report"))).all():
            recorded[message_id].add(detail.get("provider_status"))
    moved: list[bool] = []
    changed: list[MessageSnapshot] = []
    history: list[dict[str, Any]] = []
    for message, update in reports:
        if update.provider_status in recorded[message.id]:
            moved.append(False)
            continue
        recorded[message.id].add(update.provider_status)
        if _apply_report(message, update, now, history):
            changed.append(MessageSnapshot.of(message))
            moved.append(True)
        else:
            moved.append(False)
    if history:
        # One multi-row statement (the ORM would insert these one by one on SQLite, to learn
        # each id); entries added to the session earlier are flushed first, keeping id order.
        await session.flush()
        await session.execute(insert(cast(Table, MessageEvent.__table__)), history)
    await callback_events.message_status_changed(session, changed, now)
    return moved


def _apply_report(message: Message, update: StatusUpdate, now: datetime,
                  history: list[dict[str, Any]]) -> bool:
    """Move the message's state by ``update`` and append its history entry (a
    ``message_events`` row) to ``history``; True when the state moved."""
    current = MessageState(message.state)
    new_state = merge_report(current, update.state)
    detail: dict[str, Any] = {"provider_status": update.provider_status}
    if update.error_code:
        detail["error_code"] = update.error_code
    if update.error_detail:
        detail["error_detail"] = update.error_detail
    if update.occurred_at:
        detail["occurred_at"] = update.occurred_at.isoformat()
    history.append({"message_id": message.id, "tenant_id": message.tenant_id, "kind": "report",
                    "state_from": current.value,
                    "state_to": new_state.value if new_state else None, "detail": detail,
                    "created_at": now})
    if new_state is None:
        return False
    message.state = new_state.value
    message.provider_status = update.provider_status[:40]
    message.updated_at = now
    at = update.occurred_at or now
    if new_state is MessageState.SENT:
        message.sent_at = message.sent_at or at
    elif new_state is MessageState.DELIVERED:
        message.delivered_at = at
        message.sent_at = message.sent_at or at
    elif new_state is MessageState.READ:
        message.read_at = at
        message.delivered_at = message.delivered_at or at
    elif new_state is MessageState.FAILED:
        message.completed_at = at
        message.error_code = (update.error_code or update.provider_status)[:64]
        message.error_detail = (update.error_detail or update.provider_status)[:500]
    if new_state in (MessageState.DELIVERED, MessageState.READ, MessageState.SENT):
        message.next_attempt_at = None
    return True


async def store_inbound(session: AsyncSession, account: ChannelAccount, event: InboundMessage,
                        now: datetime) -> bool:
    """Store an inbound SMS once; False when its provider id was already stored."""
    exists = await session.execute(select(Message.id).where(
        Message.channel_account_id == account.id, Message.direction == INBOUND,
        Message.provider_message_id == event.provider_message_id).limit(1))
    if exists.first() is not None:
        return False
    info = count_segments(event.text)
    received = event.received_at or now
    message = Message(
        id=new_id(), seq=await next_message_number(session), tenant_id=account.tenant_id,
        channel_account_id=account.id,
        direction=INBOUND, mode="live", client_ref=None, batch_id=None,
        to_number=_as_e164(event.to_number), from_number=_as_e164(event.from_number),
        text=event.text, encoding=info.encoding.value, segments=min(info.segments, 255),
        priority=0, state=MessageState.RECEIVED.value, dlt_template_id=None,
        dlt_entity_id=None, dlt_variables=None, callback_url=None, price_minor=None,
        scheduled_at=None, expires_at=None, next_attempt_at=None, attempts=0,
        provider_message_id=event.provider_message_id, provider_status="received",
        error_code=None, error_detail=None, created_at=received, updated_at=now,
        sent_at=None, delivered_at=None, read_at=None, completed_at=None)
    try:
        async with session.begin_nested():
            session.add(message)
            session.add(_event(message, "inbound", None, MessageState.RECEIVED.value, now, {}))
    except IntegrityError:  # the same inbound message, stored by a concurrent delivery
        return False
    forwarded = await inbound_routing.forward_person_to_person(session, account, message, now)
    await callback_events.message_received(session, message, now,
                                           to_profile=forwarded is None)
    return True


async def store_inbound_part(session: AsyncSession, account: ChannelAccount,
                             part: InboundPart, now: datetime) -> bool:
    """Keep one part of a long inbound message; once every part is in, store them joined as
    one inbound message (``store_inbound``) and forget the parts. False when this part was
    already kept (a redelivery)."""
    message = part.message
    key = (PendingInboundPart.channel_account_id == account.id,
           PendingInboundPart.from_number == message.from_number,
           PendingInboundPart.to_number == message.to_number,
           PendingInboundPart.reference == part.reference,
           PendingInboundPart.total == part.total)
    try:
        async with session.begin_nested():
            session.add(PendingInboundPart(
                id=new_id(), channel_account_id=account.id, from_number=message.from_number,
                to_number=message.to_number, reference=part.reference, total=part.total,
                sequence=part.sequence, provider_message_id=message.provider_message_id,
                text=message.text, received_at=message.received_at or now, created_at=now))
    except IntegrityError:
        return False
    parts = (await session.execute(select(PendingInboundPart).where(*key).order_by(
        PendingInboundPart.sequence))).scalars().all()
    if len(parts) == part.total:
        await _store_joined(session, account, parts, now)
    return True


async def store_overdue_inbound_parts(session: AsyncSession, now: datetime) -> int:
    """Store the parts of long inbound messages whose other parts have not come within
    ``INBOUND_PARTS_WAIT`` as one message each (what came, in order); answers how many."""
    overdue = (await session.execute(select(PendingInboundPart).where(
        PendingInboundPart.created_at <= now - INBOUND_PARTS_WAIT).order_by(
        PendingInboundPart.sequence))).scalars().all()
    groups: dict[tuple[str, str, str, int, int], list[PendingInboundPart]] = defaultdict(list)
    for part in overdue:
        groups[(part.channel_account_id, part.from_number, part.to_number, part.reference,
                part.total)].append(part)
    accounts = {account.id: account for account in (await session.execute(
        select(ChannelAccount).where(ChannelAccount.id.in_({key[0] for key in groups}))
    )).scalars()} if groups else {}
    for (account_id, *_), parts in groups.items():
        await _store_joined(session, accounts[account_id], parts, now)
    return len(groups)


async def _store_joined(session: AsyncSession, account: ChannelAccount,
                        parts: Sequence[PendingInboundPart], now: datetime) -> None:
    first = parts[0]
    await store_inbound(session, account, InboundMessage(
        provider_message_id=first.provider_message_id, from_number=first.from_number,
        to_number=first.to_number, text="".join(part.text for part in parts),
        received_at=min(part.received_at for part in parts)), now)
    await session.execute(delete(PendingInboundPart).where(
        PendingInboundPart.id.in_([part.id for part in parts])))


async def apply_unmatched_reports(session: AsyncSession, messages: Sequence[Message],
                                  now: datetime,
                                  part_ids: Sequence[tuple[str, str]] = ()) -> int:
    """Apply reports that arrived before ``messages`` had their provider ids recorded, and
    before the parts named by ``part_ids`` (app id, provider id) were.

    ``messages`` need only their app and provider id to be current (the dispatcher passes its
    own copies, whose state it has just changed in the database): the messages that have
    waiting reports are read again in ``session`` when the reports are applied."""
    keys = {(m.channel_account_id, m.provider_message_id) for m in messages
            if m.provider_message_id} | set(part_ids)
    if not keys:
        return 0
    rows = [row for row in (await session.execute(select(UnmatchedReport).where(
        UnmatchedReport.channel_account_id.in_({key[0] for key in keys}),
        UnmatchedReport.provider_message_id.in_({key[1] for key in keys}),
    ).order_by(UnmatchedReport.id))).scalars().all()
        if (row.channel_account_id, row.provider_message_id) in keys]
    if not rows:
        return 0
    await session.execute(delete(UnmatchedReport).where(
        UnmatchedReport.id.in_([row.id for row in rows])))
    summary = ReportSummary()
    await _apply_reports(session, [(row.channel_account_id, _report_from_payload(row), summary)
                                   for row in rows], now, keep_unmatched=False)
    return summary.applied


async def _parts_by_provider_ids(session: AsyncSession, wanted: dict[str, set[str]]
                                 ) -> dict[tuple[str, str], MessagePart]:
    """The parts of long messages of each app (key) with the provider ids (values), by
    ``(app id, provider id)``; one query per app."""
    found: dict[tuple[str, str], MessagePart] = {}
    for account_id, provider_ids in wanted.items():
        if not provider_ids:
            continue
        rows = await session.execute(select(MessagePart).where(
            MessagePart.channel_account_id == account_id,
            MessagePart.provider_message_id.in_(provider_ids)))
        for part in rows.scalars():
            found.setdefault((account_id, part.provider_message_id), part)
    return found


async def _outbound_by_provider_ids(session: AsyncSession, wanted: dict[str, set[str]]
                                    ) -> dict[tuple[str, str], Message]:
    """The outbound messages of each app (key) with the provider ids (values), by
    ``(app id, provider id)``; one query per app."""
    found: dict[tuple[str, str], Message] = {}
    for account_id, provider_ids in wanted.items():
        if not provider_ids:
            continue
        rows = await session.execute(select(Message).where(
            Message.channel_account_id == account_id,
            Message.provider_message_id.in_(provider_ids),
            Message.direction != INBOUND).order_by(Message.id))
        for message in rows.scalars():
            found.setdefault((account_id, message.provider_message_id or ""), message)
    return found


def _event(message: Message, kind: str, state_from: str | None, state_to: str | None,
           now: datetime, detail: dict[str, Any]) -> MessageEvent:
    return MessageEvent(message_id=message.id, tenant_id=message.tenant_id, kind=kind,
                        state_from=state_from, state_to=state_to, detail=detail, created_at=now)


def _report_payload(update: StatusUpdate) -> dict[str, Any]:
    return {"state": update.state.value, "provider_status": update.provider_status,
            "error_code": update.error_code, "error_detail": update.error_detail,
            "occurred_at": update.occurred_at.isoformat() if update.occurred_at else None}


def _report_from_payload(row: UnmatchedReport) -> StatusUpdate:
    payload = row.report
    occurred = payload.get("occurred_at")
    return StatusUpdate(row.provider_message_id, MessageState(payload["state"]),
                        payload["provider_status"], payload.get("error_code"),
                        payload.get("error_detail"),
                        datetime.fromisoformat(occurred) if occurred else None)


def _as_e164(number: str) -> str:
    try:
        return to_e164(number if number.startswith("+") else "+" + number, "US")
    except ValueError:
        return number[:32]

