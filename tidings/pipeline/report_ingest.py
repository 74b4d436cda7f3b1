"""Group commit for providers' webhooks: many delivery reports and inbound messages, one
transaction, one fsync.

The webhook route verifies and parses a request, hands its events to ``ReportIngest.submit``
and waits; one writer task applies everything waiting (up to ``max_events`` events) with
``reports.apply_webhook_batch``, commits, and only then releases the requests, so the
provider's acknowledgement still means "applied and on disk", callbacks queued with it. While
one commit runs the next batch gathers. A batch that fails is applied again one webhook per
transaction, so one bad webhook fails alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.db.models import ChannelAccount
from tidings.domain.clock import Clock
from tidings.providers.base import WebhookEvent
from tidings.services.reports import ReportSummary, WebhookBatchItem, apply_webhook_batch

log = logging.getLogger(__name__)


@dataclass
class _Submission:
    item: WebhookBatchItem
    done: asyncio.Future[ReportSummary] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future())


class ReportIngest:
    """The webhooks' group-commit writer; ``start`` it before the first submit, ``stop`` it
    last. ``on_commit`` runs after each commit (to wake the callback sender)."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, *,
                 max_events: int = 1000, on_commit: Callable[[], None] | None = None,
                 write_turn: AbstractAsyncContextManager[Any] | None = None) -> None:
        self._sessions = sessions
        self._clock = clock
        self._max_events = max_events
        self._on_commit = on_commit
        self._write_turn = write_turn or nullcontext()
        self._waiting: list[_Submission] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="report-ingest")

    async def stop(self) -> None:
        """Apply what was submitted, then stop."""
        if self._task is None:
            return
        task, self._task = self._task, None
        self._stopping = True
        self._wake.set()
        await task

    async def submit(self, account: ChannelAccount,
                     events: Sequence[WebhookEvent]) -> ReportSummary:
        """Apply ``events`` of one webhook for ``account``; returns once committed."""
        if self._task is None:
            raise RuntimeError("ReportIngest is not running")
        submission = _Submission(WebhookBatchItem(account, events))
        self._waiting.append(submission)
        self._wake.set()
        return await submission.done

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                batch = self._take_batch()
                try:
                    await self._write(batch)
                except Exception:  # never let the writer die: apply each webhook alone
                    log.exception("report ingest: a batch failed; applying it one by one")
                    for submission in batch:
                        await self._write_alone(submission)
            if self._stopping:
                return

    def _take_batch(self) -> list[_Submission]:
        batch: list[_Submission] = []
        events = 0
        while self._waiting and (not batch or events + len(self._waiting[0].item.events)
                                 <= self._max_events):
            submission = self._waiting.pop(0)
            batch.append(submission)
            events += len(submission.item.events)
        return batch

    async def _write(self, batch: list[_Submission]) -> None:
        async with self._write_turn, self._sessions() as session:
            summaries = await apply_webhook_batch(session, [s.item for s in batch],
                                                  self._clock())
            await session.commit()
        self._committed()
        for submission, summary in zip(batch, summaries, strict=True):
            _resolve(submission, summary)

    async def _write_alone(self, submission: _Submission) -> None:
        try:
            await self._write([submission])
        except Exception as exc:
            _resolve(submission, error=exc)

    def _committed(self) -> None:
        if self._on_commit is not None:
            self._on_commit()


def _resolve(submission: _Submission, summary: ReportSummary | None = None, *,
             error: BaseException | None = None) -> None:
    """Release the waiting request (unless it has gone away: a provider that disconnected)."""
    if submission.done.done():
        return
    if error is not None:
        submission.done.set_exception(error)
    else:
        assert summary is not None
        submission.done.set_result(summary)
