"""The dispatcher: claim due messages, send them through their providers, record outcomes.

One dispatcher runs per worker process (DESIGN.md, "The send pipeline")::

    claim    per app, round-robin: due ``queued`` rows by priority then due time, as many as
             the app's free send window (``TIDINGS_DISPATCH_WINDOW``; larger for SMPP apps,
             whose binds queue what exceeds their own windows), its daily limit and its token
             bucket allow (priority
             >= 100 skips the bucket); they become ``sending`` under a lease
             (``next_attempt_at = now + lease``). PostgreSQL claims with SKIP LOCKED, so
             several workers share the queue. The window bounds the sends awaiting the
             provider; claimed messages whose outcome is not committed yet are bounded at
             ``UNRECORDED_WINDOWS`` windows, so slots free up as answers arrive instead of
             waiting for the next commit, and a crash re-sends at most that many per app.
    send     each claimed message is a task: provider.send() over the shared HTTP client;
             test-mode messages go to the simulator; a message past ``expires_at`` is not sent
    record   outcomes are written in batches by ``tidings.pipeline.outcomes``: Accepted ->
             sent, Retry -> queued with backoff, Reject -> failed, and a message with a
             failover route moves to the route's next app instead. Every attempt is an event
             in the message's history.

A worker killed mid-send leaves rows ``sending``; ``recover_expired_leases`` (a periodic job)
puts them back in the queue once their lease runs out, so nothing acknowledged is lost
(delivery is at-least-once).
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tidings.config import parse_rate
from tidings.db.models import ChannelAccount, Message, MessageEvent, Tenant
from tidings.domain.states import MessageState
from tidings.pipeline.outcomes import (
    Attempt,
    OutcomeRecorder,
    OutcomeStats,
    retry_policy,
    zone_or_utc,
)
from tidings.pipeline.sending import is_simulated, outbound_sms, send_context, send_through
from tidings.pipeline.smpp_binds import SmppBinds
from tidings.providers.base import (
    AccountContext,
    Retry,
    SendOutcome,
)
from tidings.providers.registry import PULL_PROVIDERS, SESSION_PROVIDERS
from tidings.runtime import Runtime
from tidings.services.sms_apps import ACTIVE

log = logging.getLogger(__name__)

CLAIM_PER_APP = 500
ACCOUNTS_REFRESH_SECONDS = 2.0
IDLE_POLL_SECONDS = 0.05
RESULT_FLUSH_SECONDS = 0.02
RESULT_FLUSH_SIZE = 1000
UNRECORDED_WINDOWS = 2
_S = MessageState


@dataclass
class _App:
    """What the dispatcher keeps about one active app between claims."""

    account: ChannelAccount
    timezone: ZoneInfo
    rate: int
    period: float
    window: int  # sends awaiting the provider at most (the dispatcher's, or the SMPP binds')
    context: AccountContext | None = None
    simulator_context: AccountContext | None = None
    inflight: int = 0  # claimed, provider not answered yet (the window)
    unrecorded: int = 0  # claimed, outcome not committed yet (the crash bound and daily limit)
    not_before: float = 0.0


@dataclass
class _Outcome:
    attempt: Attempt
    app: _App


@dataclass
class DispatcherStats:
    claimed: int = 0
    rounds: int = 0
    outcomes: OutcomeStats = field(default_factory=OutcomeStats)


class Dispatcher:
    """Runs the claim loop and the result writer until ``stop``."""

    def __init__(self, runtime: Runtime, *, rng: random.Random | None = None,
                 smpp: SmppBinds | None = None) -> None:
        """``smpp`` holds the SMPP apps' binds; without it their live messages stay queued."""
        self.runtime = runtime
        self.smpp = smpp
        settings = runtime.settings
        self.window = settings.dispatch_window
        self.lease = timedelta(seconds=settings.lease_seconds)
        self.policy = retry_policy(settings)
        self.rng = rng or random.Random()
        self.stats = DispatcherStats()
        self.recorder = OutcomeRecorder(self.policy, self.rng, stats=self.stats.outcomes,
                                        postgresql=runtime.engine.dialect.name == "postgresql")
        self._apps: dict[str, _App] = {}
        self._apps_loaded_at = -1e9
        self._order: list[str] = []
        self._results: list[_Outcome] = []
        self._results_ready = asyncio.Event()
        self._writer_ending = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._wake = asyncio.Event()
        self._claimed_last_round = False

    def wake(self) -> None:
        """New messages may be due: claim now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        self._writer_ending = False
        writer = asyncio.create_task(self._write_results_forever(), name="dispatch-results")
        try:
            while not self._stopping:
                self._wake.clear()  # before claiming: a wake() during the round is kept
                try:
                    claimed = await self.claim_and_send()
                except Exception:
                    log.exception("dispatcher: claim failed; retrying shortly")
                    claimed = 0
                if not claimed:
                    try:
                        await asyncio.wait_for(self._wake.wait(), IDLE_POLL_SECONDS)
                    except TimeoutError:
                        pass
                else:
                    await asyncio.sleep(0)
        finally:
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            # Told to end rather than cancelled: Python 3.11's wait_for, which it waits in,
            # can swallow a cancellation that lands as its event is set, and then it never ends.
            self._writer_ending = True
            self._results_ready.set()
            await writer
            await self.flush_results()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()

    async def claim_and_send(self) -> int:
        """One round: claim what every app may send now and start sending it."""
        await self._refresh_apps()
        # The probe keeps an idle dispatcher off the write lock; after a round that claimed
        # something, more is likely due and the claim itself finds out.
        if not self._order or (not self._claimed_last_round and not await self._anything_due()):
            self._claimed_last_round = False
            return 0
        now = self.runtime.clock()
        claimed: list[tuple[_App, list[Message]]] = []
        async with self.runtime.write_turn, self.runtime.sessions() as session:
            for app_id in self._rotated():
                app = self._apps[app_id]
                free = min(app.window - app.inflight,
                           UNRECORDED_WINDOWS * app.window - app.unrecorded)
                if free <= 0:
                    continue
                # While the app waits for its bucket, messages that skip it still go.
                urgent_only = app.not_before > self.runtime.monotonic()
                limit = min(free, self.runtime.settings.dispatch_batch_size)
                messages = await self._claim_for_app(session, app, limit, now, urgent_only)
                if messages:
                    claimed.append((app, messages))
            await session.commit()
        count = 0
        for app, messages in claimed:
            for message in messages:
                app.inflight += 1
                app.unrecorded += 1
                task = asyncio.create_task(self._send(app, message))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                count += 1
        self.stats.claimed += count
        self.stats.rounds += 1
        self._claimed_last_round = count > 0
        return count

    async def _anything_due(self) -> bool:
        now = self.runtime.clock()
        async with self.runtime.read_sessions() as reads:
            found = await reads.execute(select(Message.id).where(
                Message.state == _S.QUEUED.value, Message.next_attempt_at <= now).limit(1))
            return found.first() is not None

    def _rotated(self) -> list[str]:
        order = self._order
        if order:
            order.append(order.pop(0))
        return list(order)

    async def _claim_for_app(self, session: AsyncSession, app: _App, limit: int,
                             now: datetime, urgent_only: bool = False) -> list[Message]:
        account = app.account
        if account.daily_limit is not None:
            today = now.astimezone(app.timezone).date()
            sent_today = account.daily_sent if account.daily_day == today else 0
            limit = min(limit, account.daily_limit - sent_today - app.unrecorded)
            if limit <= 0:
                return []
        query = (select(Message.id, Message.priority)
                 .where(Message.channel_account_id == account.id,
                        Message.state == _S.QUEUED.value, Message.next_attempt_at <= now)
                 .order_by(Message.priority.desc(), Message.next_attempt_at).limit(limit))
        if urgent_only:
            query = query.where(Message.priority >= 100)
        if account.provider in PULL_PROVIDERS:  # live ones wait for a phone; tests simulate
            query = query.where(Message.mode == "test")
        elif account.provider in SESSION_PROVIDERS and not (
                self.smpp is not None and self.smpp.ready(account.id)):
            query = query.where(Message.mode == "test")  # live ones wait for a bind
        if self.runtime.engine.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = (await session.execute(query)).all()
        if not rows:
            return []
        urgent = [row.id for row in rows if row.priority >= 100]
        ordinary = [row.id for row in rows if row.priority < 100]
        granted = 0
        if ordinary:
            granted, wait = await self.runtime.send_budget.take(
                account.id, app.rate, app.period, len(ordinary))
            if granted < len(ordinary):
                app.not_before = self.runtime.monotonic() + max(wait, 0.01)
        chosen = urgent + ordinary[:granted]
        if not chosen:
            return []
        lease_until = now + self.lease
        await session.execute(
            update(Message).where(Message.id.in_(chosen), Message.state == _S.QUEUED.value)
            .values(state=_S.SENDING.value, next_attempt_at=lease_until,
                    attempts=Message.attempts + 1, updated_at=now)
            .execution_options(synchronize_session=False))
        result = await session.execute(select(Message).where(
            Message.id.in_(chosen), Message.state == _S.SENDING.value))
        return list(result.scalars())

    async def _send(self, app: _App, message: Message) -> None:
        outcome: SendOutcome | None = None
        simulated = is_simulated(message, app.account)
        try:
            now = self.runtime.clock()
            if message.expires_at is not None and message.expires_at <= now:
                pass
            elif not simulated and app.account.provider in SESSION_PROVIDERS:
                outcome = (await self.smpp.send(app.account.id, outbound_sms(
                    message, self._context(app, simulated))) if self.smpp is not None
                    else Retry("smpp_not_bound", "this dispatcher holds no binds"))
            else:
                outcome = await send_through(message, app.account, self._context(app, simulated),
                                             self.runtime.http, simulated=simulated, now=now)
        except Exception as exc:
            log.exception("dispatcher: preparing %s failed", message.id)
            outcome = Retry("internal_error", type(exc).__name__)
        finally:
            app.inflight -= 1
            used = app.simulator_context if simulated else app.context
            self._results.append(_Outcome(Attempt(
                message, app.account, app.timezone, outcome, simulated,
                used.secrets() if used is not None else ()), app))
            if len(self._results) >= RESULT_FLUSH_SIZE or (
                    app.unrecorded - app.inflight >= app.window):
                self._results_ready.set()  # the batch is big, or the app's claims wait on it
            if app.inflight == app.window // 2:
                self._wake.set()  # half the window is free: claim again without polling

    def _context(self, app: _App, simulated: bool) -> AccountContext:
        if simulated:
            if app.simulator_context is None:
                app.simulator_context = send_context(app.account, self.runtime.secret_box,
                                                     self.runtime.settings, simulated=True)
            return app.simulator_context
        if app.context is None:
            app.context = send_context(app.account, self.runtime.secret_box,
                                       self.runtime.settings, simulated=False)
        return app.context

    async def _write_results_forever(self) -> None:
        while not self._writer_ending:
            try:
                await asyncio.wait_for(self._results_ready.wait(), RESULT_FLUSH_SECONDS)
            except TimeoutError:
                pass
            self._results_ready.clear()
            try:
                await self.flush_results()
            except Exception:
                log.exception("dispatcher: recording outcomes failed; will retry")
                await asyncio.sleep(0.5)

    async def flush_results(self) -> int:
        """Record every outcome gathered so far in one transaction."""
        if not self._results:
            return 0
        results, self._results = self._results, []
        try:
            async with self.runtime.write_turn, self.runtime.sessions() as session:
                counted = await self.recorder.record(
                    session, [result.attempt for result in results], self.runtime.clock(),
                    {app_id: app.account for app_id, app in self._apps.items()
                     if app.account.status == ACTIVE})
                await session.commit()
        except BaseException:
            self._results = results + self._results
            raise
        for result in results:
            result.app.unrecorded -= 1
        for account_id, daily in counted.items():
            app = self._apps.get(account_id)
            if app is not None:  # keep the claim-side view current between refreshes
                account = app.account
                account.daily_sent = (account.daily_sent if account.daily_day == daily.day
                                      else 0) + daily.count
                account.daily_day = daily.day
        self._wake.set()  # their window slots are free again
        return len(results)

    async def _refresh_apps(self) -> None:
        if self.runtime.monotonic() - self._apps_loaded_at < ACCOUNTS_REFRESH_SECONDS:
            return
        self._apps_loaded_at = self.runtime.monotonic()
        async with self.runtime.read_sessions() as reads:
            rows = (await reads.execute(
                select(ChannelAccount, Tenant.timezone)
                .join(Tenant, Tenant.id == ChannelAccount.tenant_id)
                .where(ChannelAccount.status == ACTIVE))).all()
        fresh: dict[str, _App] = {}
        for account, timezone in rows:
            rate, period = parse_rate(account.rate_limit)
            app = self._apps.get(account.id)
            window = self._window_for(account)
            if app is None:
                app = _App(account, zone_or_utc(timezone), rate, float(period), window)
            else:  # updated in place: sends in flight hold this object and release it
                if app.account.updated_at != account.updated_at:
                    app.context = app.simulator_context = None
                app.account, app.timezone = account, zone_or_utc(timezone)
                app.rate, app.period, app.window = rate, float(period), window
            fresh[account.id] = app
        active = list(fresh)
        for app_id, old in self._apps.items():
            if app_id not in fresh and old.inflight:
                fresh[app_id] = old  # deleted while sending: keep it until its sends finish
        self._apps = fresh
        self._order = [a for a in self._order if a in active] + [
            a for a in active if a not in self._order]  # a deleted app claims nothing more
        if self.smpp is not None:
            await self.smpp.sync(app.account for app_id, app in fresh.items()
                                 if app_id in active)
        await self._fail_orphans()

    def _window_for(self, account: ChannelAccount) -> int:
        """An SMPP app's sends wait for a window slot in its binds, and its SMSC answers in
        milliseconds, so it gets the larger window ``SmppBinds.claim_window`` asks for: one
        claim and one outcome commit then serve hundreds of messages, not 64."""
        if account.provider in SESSION_PROVIDERS and self.smpp is not None:
            return max(self.window, self.smpp.claim_window(account))
        return self.window

    async def _fail_orphans(self) -> None:
        """Fail the queued messages of deleted apps with ``app_deleted`` (``sms_apps``: a
        deleted app sends nothing more), so that they reach a final state."""
        async with self.runtime.read_sessions() as reads:
            found = (await reads.execute(
                select(Message.id).join(ChannelAccount,
                                        ChannelAccount.id == Message.channel_account_id)
                .where(ChannelAccount.status != ACTIVE, Message.state == _S.QUEUED.value)
                .limit(CLAIM_PER_APP))).scalars().all()
        if not found:
            return
        now = self.runtime.clock()
        async with self.runtime.sessions() as session:
            failed = (await session.execute(
                update(Message).where(Message.id.in_(found), Message.state == _S.QUEUED.value)
                .values(state=_S.FAILED.value, next_attempt_at=None, completed_at=now,
                        updated_at=now, error_code="app_deleted",
                        error_detail="the SMS app was deleted before the message was sent")
                .returning(Message.id, Message.tenant_id)
                .execution_options(synchronize_session=False))).all()
            session.add_all(MessageEvent(
                message_id=row.id, tenant_id=row.tenant_id, kind="state",
                state_from=_S.QUEUED.value, state_to=_S.FAILED.value,
                detail={"reason": "app_deleted"}, created_at=now) for row in failed)
            await session.commit()

