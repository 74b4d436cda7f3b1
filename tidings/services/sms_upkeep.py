"""The SMS pipeline's periodic upkeep, as use cases the scheduler calls (each in one
transaction): lease recovery, expiry, simulator reports, daily counter resets, reports that
found their message late, and the sweep of reports that never found their message."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.db.models import ChannelAccount, Message, MessageEvent, Tenant, UnmatchedReport
from tidings.domain.states import MessageState
from tidings.providers.sms import simulator
from tidings.services import callback_events
from tidings.services.android.messages import refresh_header_states
from tidings.services.callback_queue import MessageSnapshot
from tidings.services.reports import INBOUND, apply_status_updates, apply_unmatched_reports

UNMATCHED_REPORT_RETENTION = timedelta(days=1)
SIMULATOR_BATCH = 2000
LATE_REPORT_WINDOW = timedelta(minutes=10)
LATE_REPORTS_BATCH = 5000
_S = MessageState


async def recover_expired_leases(session: AsyncSession, now: datetime) -> int:
    """Put ``sending`` rows whose lease ran out (their worker died) back in the queue."""
    ids = (await session.execute(select(Message.id, Message.tenant_id).where(
        Message.state == _S.SENDING.value, Message.next_attempt_at <= now).limit(10_000))).all()
    if not ids:
        return 0
    await session.execute(
        update(Message).where(Message.id.in_([row.id for row in ids]),
                              Message.state == _S.SENDING.value)
        .values(state=_S.QUEUED.value, next_attempt_at=now, updated_at=now)
        .execution_options(synchronize_session=False))
    session.add_all(MessageEvent(message_id=row.id, tenant_id=row.tenant_id, kind="state",
                                 state_from=_S.SENDING.value, state_to=_S.QUEUED.value,
                                 detail={"reason": "lease expired (worker stopped mid-send)"},
                                 created_at=now) for row in ids)
    return len(ids)


async def expire_overdue(session: AsyncSession, now: datetime) -> int:
    """Expire ``queued`` messages past ``expires_at`` that no claim reached (held by a rate or
    daily limit, or scheduled past their validity, or not pulled by a phone in time)."""
    rows = (await session.execute(select(Message.id, Message.tenant_id,
                                         Message.android_message_id).where(
        Message.state == _S.QUEUED.value, Message.expires_at.is_not(None),
        Message.expires_at <= now).limit(10_000))).all()
    if not rows:
        return 0
    await session.execute(
        update(Message).where(Message.id.in_([row.id for row in rows]),
                              Message.state == _S.QUEUED.value)
        .values(state=_S.EXPIRED.value, next_attempt_at=None, completed_at=now,
                updated_at=now, error_code="expired", error_detail="validity period ended")
        .execution_options(synchronize_session=False))
    session.add_all(MessageEvent(message_id=row.id, tenant_id=row.tenant_id, kind="state",
                                 state_from=_S.QUEUED.value, state_to=_S.EXPIRED.value,
                                 detail={"reason": "validity period ended"}, created_at=now)
                    for row in rows)
    await refresh_header_states(session, (row.android_message_id for row in rows
                                          if row.android_message_id is not None))
    expired = (await session.execute(select(Message).where(
        Message.id.in_([row.id for row in rows]), Message.state == _S.EXPIRED.value)
        .order_by(Message.id))).scalars()
    await callback_events.message_status_changed(
        session, [MessageSnapshot.of(message) for message in expired], now)
    return len(rows)


async def deliver_simulator_reports(session: AsyncSession, now: datetime) -> int:
    """Apply the simulator's report to every simulated message whose report is due."""
    rows = (await session.execute(
        select(Message, ChannelAccount.provider, ChannelAccount.config)
        .join(ChannelAccount, ChannelAccount.id == Message.channel_account_id)
        .where(Message.state == _S.SENT.value, Message.next_attempt_at <= now)
        .limit(SIMULATOR_BATCH))).all()
    reports = []
    for message, provider, config in rows:
        settings = simulator.Config.model_validate(config if provider == "SIMULATOR" else {})
        reports.append((message, simulator.simulated_report(message.id, settings)))
        message.next_attempt_at = None
    await apply_status_updates(session, reports, now)
    return len(rows)


async def reset_daily_counters(session: AsyncSession, now: datetime) -> int:
    """Zero the daily counters of apps whose tenant's local date has moved on."""
    rows = (await session.execute(
        select(ChannelAccount.id, ChannelAccount.daily_day, Tenant.timezone)
        .join(Tenant, Tenant.id == ChannelAccount.tenant_id)
        .where(ChannelAccount.daily_day.is_not(None)))).all()
    reset = 0
    for row in rows:
        try:
            today = now.astimezone(ZoneInfo(row.timezone or "UTC")).date()
        except (KeyError, ValueError):
            today = now.date()
        if row.daily_day != today:
            await session.execute(update(ChannelAccount).where(
                ChannelAccount.id == row.id, ChannelAccount.daily_day == row.daily_day)
                .values(daily_sent=0, daily_segments=0, daily_day=today)
                .execution_options(synchronize_session=False))
            reset += 1
    return reset


async def apply_late_reports(session: AsyncSession, now: datetime) -> int:
    """Apply the unmatched reports of the last ``LATE_REPORT_WINDOW`` (newest first, at most
    ``LATE_REPORTS_BATCH``) whose message carries their provider id by now; answers how many
    messages had some.

    The dispatcher applies a message's unmatched reports when it records the provider id, but
    on PostgreSQL a webhook can store a report as unmatched in a transaction concurrent with
    that one, and neither sees the other's row: without this pass the report would lie unused
    until the daily sweep and the message would stay ``sent``. Such a report is seconds old
    when this runs, so older ones (reports for ids no message ever had) are not looked at."""
    pairs = (await session.execute(
        select(UnmatchedReport.channel_account_id, UnmatchedReport.provider_message_id)
        .where(UnmatchedReport.created_at >= now - LATE_REPORT_WINDOW)
        .order_by(UnmatchedReport.created_at.desc()).limit(LATE_REPORTS_BATCH))).all()
    by_account: dict[str, set[str]] = defaultdict(set)
    for account_id, provider_id in pairs:
        by_account[account_id].add(provider_id)
    messages: list[Message] = []
    for account_id, provider_ids in by_account.items():
        messages.extend((await session.execute(select(Message).where(
            Message.channel_account_id == account_id,
            Message.provider_message_id.in_(provider_ids),
            Message.direction != INBOUND))).scalars())
    if messages:
        await apply_unmatched_reports(session, messages, now)
    return len(messages)


async def sweep_unmatched_reports(session: AsyncSession, now: datetime) -> int:
    """Forget reports that found no message within ``UNMATCHED_REPORT_RETENTION``."""
    result = await session.execute(delete(UnmatchedReport).where(
        UnmatchedReport.created_at < now - UNMATCHED_REPORT_RETENTION))
    return int(getattr(result, "rowcount", 0) or 0)
