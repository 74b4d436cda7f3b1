"""What a send attempt's answer does to its message, written for many messages at once.

Shared by the dispatcher (the outcomes of its claims, in batches) and the slug API's
synchronous send (one outcome), so a message moves the same way whoever sent it:

- ``Accepted`` -> ``sent``, the provider's first id kept (and every part's id in
  ``message_parts`` when it gave one per part), reports that arrived early applied, the app's
  daily counters moved;
- ``Retry`` -> ``queued`` with backoff and jitter (``Retry-After`` a floor), ``expired`` when the
  next try would fall past ``expires_at``, ``failed`` when attempts run out;
- ``Reject`` -> ``failed`` with the provider's code and text;
- no outcome (the message expired before it was sent) -> ``expired``.

A message with a failover route (``messages.route``, ``tidings.domain.routing``) moves to the
next app of its route instead, at once after a reject or a failure, after the backoff when a
whole round has failed; it fails when no app is left. Every attempt is an event in the
message's history naming the app and provider it went through.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Table, bindparam, case, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.config import Settings
from tidings.db.models import ChannelAccount, Message, MessageEvent, MessagePart
from tidings.domain.retry import RetryPolicy
from tidings.domain.routing import Route, next_hop
from tidings.domain.states import MessageState
from tidings.providers._http import redact
from tidings.providers.base import Accepted, Reject, Retry, SendOutcome
from tidings.providers.sms import simulator
from tidings.services import callback_events
from tidings.services.callback_queue import MessageSnapshot
from tidings.services.reports import apply_unmatched_reports, hold_reports_of

_S = MessageState
_SHOWN = frozenset({_S.SENT.value, _S.FAILED.value, _S.EXPIRED.value})
"""States an attempt ends in that tenants hear about (``message.status``, receipts); a retry
goes back to ``queued``, which they do not."""


@dataclass
class Attempt:
    """One message's send attempt through ``account``, answered (or expired, ``outcome=None``).

    ``secrets`` are the account's credential values, scrubbed from the stored answer.
    """

    message: Message
    account: ChannelAccount
    timezone: ZoneInfo
    outcome: SendOutcome | None
    simulated: bool
    secrets: tuple[str, ...] = ()


@dataclass
class OutcomeStats:
    """Counters of what recorded outcomes did, for tests and the benchmark."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    expired: int = 0
    failed_over: int = 0
    by_state: dict[str, int] = field(default_factory=lambda: defaultdict(int))


@dataclass(frozen=True)
class DailyCount:
    """Live messages an app had accepted on ``day`` (its timezone's date) by one recording."""

    day: date
    count: int


class OutcomeRecorder:
    """Decides each attempt's next state (module docstring) and writes them in one go."""

    def __init__(self, policy: RetryPolicy, rng: random.Random, *, postgresql: bool,
                 stats: OutcomeStats | None = None) -> None:
        self.policy = policy
        self.rng = rng
        self.postgresql = postgresql
        self.stats = stats or OutcomeStats()

    async def record(self, session: AsyncSession, attempts: Sequence[Attempt], now: datetime,
                     usable_apps: Mapping[str, ChannelAccount]) -> dict[str, DailyCount]:
        """Write every attempt's outcome inside the caller's transaction; answers, per app,
        the live messages it accepted (its daily counter has moved by that much).

        Only rows still ``sending`` are moved: a report or a lease recovery may have got there
        first. ``usable_apps`` are the apps a route may move a message to (the active ones).
        """
        # Locked (PostgreSQL) or under the write lock (SQLite) from here on.
        still_sending = select(Message.id).where(
            Message.id.in_([attempt.message.id for attempt in attempts]),
            Message.state == _S.SENDING.value)
        if self.postgresql:
            still_sending = still_sending.with_for_update()
        ours = set((await session.execute(still_sending)).scalars())
        updates: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        events: list[dict[str, Any]] = []
        accepted: list[Message] = []
        parts: list[dict[str, Any]] = []
        changed: list[MessageSnapshot] = []
        daily: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        zones: dict[str, ZoneInfo] = {}
        for attempt in attempts:
            message = attempt.message
            if message.id not in ours:
                continue
            values, event = self.decide(attempt, now, usable_apps)
            updates[tuple(sorted(values))].append({"_id": message.id, **values})
            events.append({"message_id": message.id, "tenant_id": message.tenant_id,
                           "created_at": now, **event})
            state = values["state"]
            self.stats.by_state[state] += 1
            if state in _SHOWN:
                for column, value in values.items():
                    setattr(message, column, value)  # the recorder's copy, for the callback
                changed.append(MessageSnapshot.of(message))
            if state == _S.SENT.value:
                message.provider_message_id = values["provider_message_id"]
                accepted.append(message)
                parts += _part_rows(message, attempt)
                if message.mode == "live":
                    daily[attempt.account.id][0] += 1
                    daily[attempt.account.id][1] += message.segments
                    zones[attempt.account.id] = attempt.timezone
        for columns, rows in updates.items():
            # One executemany per shape of change: a statement per message costs more than
            # the send did.
            table = cast(Table, Message.__table__)
            await session.execute(
                update(table).where(table.c.id == bindparam("_id"))
                .values({column: bindparam(column) for column in columns}), rows)
        if events:  # Core, not the ORM's bulk insert: the rows are plain dicts already
            await session.execute(insert(cast(Table, MessageEvent.__table__)), events)
        counted: dict[str, DailyCount] = {}
        for account_id, (count, segments) in daily.items():
            today = now.astimezone(zones[account_id]).date()
            await _count_daily(session, account_id, today, count, segments)
            counted[account_id] = DailyCount(today, count)
        await callback_events.message_status_changed(session, changed, now)
        if parts:
            await _replace_parts(session, parts)
        if accepted:
            # Reports about to be kept as unmatched wait for this commit (``hold_reports_of``):
            # one that came before its outcome is seen here, or sees the outcome.
            await hold_reports_of(session, {message.channel_account_id for message in accepted}
                                  | {row["channel_account_id"] for row in parts})
            await apply_unmatched_reports(
                session, accepted, now,
                [(row["channel_account_id"], row["provider_message_id"]) for row in parts])
        return counted

    def decide(self, attempt: Attempt, now: datetime, usable_apps: Mapping[str, ChannelAccount]
               ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The row's new column values and the history event for one attempt."""
        message, outcome = attempt.message, attempt.outcome
        through = {"attempt": message.attempts, "sms_app_id": attempt.account.id,
                   "provider": "SIMULATOR" if attempt.simulated else attempt.account.provider}
        if outcome is None:
            self.stats.expired += 1
            return ({"state": _S.EXPIRED.value, "next_attempt_at": None, "completed_at": now,
                     "updated_at": now, "error_code": "expired",
                     "error_detail": "expired before it could be sent"},
                    {"kind": "state", "state_from": _S.SENDING.value,
                     "state_to": _S.EXPIRED.value, "detail": {**through, "reason": "expired"}})
        if isinstance(outcome, Accepted):
            self.stats.sent += 1
            provider_id = outcome.provider_ids[0] if outcome.provider_ids else None
            report_due = None
            if attempt.simulated:
                account = attempt.account
                config = simulator.Config.model_validate(
                    account.config if account.provider == "SIMULATOR" else {})
                report_due = now + timedelta(milliseconds=config.delay_ms)
            return ({"state": _S.SENT.value, "sent_at": now, "updated_at": now,
                     "provider_message_id": provider_id, "next_attempt_at": report_due,
                     "error_code": None, "error_detail": None},
                    {"kind": "attempt", "state_from": _S.SENDING.value,
                     "state_to": _S.SENT.value,
                     "detail": {**through, "outcome": "accepted",
                                "provider_ids": list(outcome.provider_ids),
                                "response": scrub(dict(outcome.raw or {}), attempt.secrets)}})
        failure = {"error_code": outcome.code[:64], "error_detail": outcome.reason[:500]}
        detail: dict[str, Any] = {
            **through, "outcome": "retry" if isinstance(outcome, Retry) else "reject",
            "code": outcome.code, "reason": outcome.reason}
        if message.route and not attempt.simulated:
            return self._fail_over(attempt, outcome, now, usable_apps, failure, detail)
        if isinstance(outcome, Retry):
            delay = self.policy.next_delay(message.attempts, self.rng, outcome.retry_after)
            retried = self._retry_at(message, delay, now, failure, detail, {})
            if retried is not None:
                return retried
            detail["final"] = "attempts exhausted"
        return self._failed(now, failure, detail)

    def _fail_over(self, attempt: Attempt, outcome: Retry | Reject, now: datetime,
                   usable_apps: Mapping[str, ChannelAccount], failure: dict[str, Any],
                   detail: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        message = attempt.message
        route = Route.from_json(message.route or {})
        hop = next_hop(route, attempt.account.id, rejected=isinstance(outcome, Reject),
                       usable=usable_apps.keys())
        if hop.app_id is None:
            detail["final"] = "no app of the route is left to try"
            return self._failed(now, failure, detail)
        moved = {"channel_account_id": hop.app_id, "route": hop.route.as_json(),
                 "from_number": route.sender or usable_apps[hop.app_id].sender_id}
        detail["next_sms_app_id"] = hop.app_id
        if not hop.new_round:
            self.stats.failed_over += 1
            return ({"state": _S.QUEUED.value, "next_attempt_at": now, "updated_at": now,
                     **failure, **moved},
                    {"kind": "attempt", "state_from": _S.SENDING.value,
                     "state_to": _S.QUEUED.value, "detail": detail})
        retry_after = outcome.retry_after if isinstance(outcome, Retry) else None
        delay = self.policy.next_delay(route.round, self.rng, retry_after)
        retried = self._retry_at(message, delay, now, failure, detail, moved)
        if retried is not None:
            return retried
        detail["final"] = "attempts exhausted"
        return self._failed(now, failure, detail)

    def _retry_at(self, message: Message, delay: float | None, now: datetime,
                  failure: dict[str, Any], detail: dict[str, Any], moved: dict[str, Any]
                  ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        """Queued again after ``delay``, or expired when that falls past ``expires_at``;
        ``None`` when the retry policy gave up (``delay`` is ``None``)."""
        if delay is None:
            return None
        due = now + timedelta(seconds=delay)
        if message.expires_at is None or due < message.expires_at:
            self.stats.retried += 1
            return ({"state": _S.QUEUED.value, "next_attempt_at": due, "updated_at": now,
                     **failure, **moved},
                    {"kind": "attempt", "state_from": _S.SENDING.value,
                     "state_to": _S.QUEUED.value,
                     "detail": {**detail, "retry_at": due.isoformat()}})
        self.stats.expired += 1
        return ({"state": _S.EXPIRED.value, "next_attempt_at": None, "completed_at": now,
                 "updated_at": now, **failure},
                {"kind": "attempt", "state_from": _S.SENDING.value,
                 "state_to": _S.EXPIRED.value,
                 "detail": {**detail, "reason_final": "expires before the next try"}})

    def _failed(self, now: datetime, failure: dict[str, Any], detail: dict[str, Any]
                ) -> tuple[dict[str, Any], dict[str, Any]]:
        self.stats.failed += 1
        return ({"state": _S.FAILED.value, "next_attempt_at": None, "completed_at": now,
                 "updated_at": now, **failure},
                {"kind": "attempt", "state_from": _S.SENDING.value,
                 "state_to": _S.FAILED.value, "detail": detail})


def retry_policy(settings: Settings) -> RetryPolicy:
    """The pipeline's retry policy, from ``TIDINGS_RETRY_*``."""
    return RetryPolicy(max_attempts=settings.retry_max_attempts,
                       base_seconds=settings.retry_base_seconds,
                       max_seconds=max(3600.0, settings.retry_base_seconds))


def zone_or_utc(name: str | None) -> ZoneInfo:
    """A tenant's timezone, UTC when it has none or an unknown one."""
    try:
        return ZoneInfo(name or "UTC")
    except (KeyError, ValueError):
        return ZoneInfo("UTC")


def _part_rows(message: Message, attempt: Attempt) -> list[dict[str, Any]]:
    """``message_parts`` rows for an accepted message the provider gave an id per part."""
    outcome = attempt.outcome
    if not isinstance(outcome, Accepted) or len(outcome.provider_ids) < 2:
        return []
    return [{"message_id": message.id, "part": number, "channel_account_id": attempt.account.id,
             "provider_message_id": provider_id, "state": _S.SENT.value,
             "provider_status": None, "error_code": None, "reported_at": None}
            for number, provider_id in enumerate(outcome.provider_ids, start=1)]


async def _replace_parts(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Store the parts of accepted messages, replacing those of an earlier attempt."""
    table = cast(Table, MessagePart.__table__)
    await session.execute(delete(table).where(
        table.c.message_id.in_({row["message_id"] for row in rows})))
    await session.execute(insert(table), rows)


async def _count_daily(session: AsyncSession, account_id: str, today: date, count: int,
                       segments: int) -> None:
    same_day = ChannelAccount.daily_day == today
    await session.execute(
        update(ChannelAccount).where(ChannelAccount.id == account_id).values(
            daily_sent=case((same_day, ChannelAccount.daily_sent + count), else_=count),
            daily_segments=case((same_day, ChannelAccount.daily_segments + segments),
                                else_=segments),
            daily_day=today).execution_options(synchronize_session=False))


def scrub(value: Any, secrets: tuple[str, ...]) -> Any:
    """``value`` (a provider's parsed answer) with ``secrets`` redacted wherever a string holds
    one: a provider that echoes a credential must not get it stored."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {key: scrub(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [scrub(item, secrets) for item in value]
    return value
