"""Group commit for accepted messages: many API requests, one transaction, one fsync.

Each request hands its validated rows to ``MessageIngest.submit`` and waits; a single writer
task takes everything waiting (up to ``max_batch`` rows), stores it in one transaction with the
``store`` function it was given, commits, and only then releases the requests, so a 201 still
means "on disk". While one commit runs the next batch gathers, so batches grow with load and a
lone request waits for nothing but its own commit.

When a batch fails (a duplicate ``client_ref`` racing past the early check), the writer stores
its submissions one per transaction to find the culprit, which gets the error; the others
succeed.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tidings.domain.clock import Clock
from tidings.services.sms_send import PendingMessage, duplicate_client_ref

log = logging.getLogger(__name__)

Store = Callable[[AsyncSession, Sequence[PendingMessage], datetime], Awaitable[None]]


@dataclass
class _Submission:
    items: list[PendingMessage]
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop()
                                       .create_future())


class MessageIngest:
    """The group-commit writer; ``start`` it before the first submit, ``stop`` it last."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], store: Store, clock: Clock,
                 max_batch: int = 2000, on_commit: Callable[[], None] | None = None,
                 write_turn: AbstractAsyncContextManager[Any] | None = None) -> None:
        self._sessions = sessions
        self._write_turn = write_turn or nullcontext()
        self._store = store
        self._clock = clock
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._waiting: list[_Submission] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="message-ingest")

    async def stop(self) -> None:
        """Finish what was submitted (the batch being written included), then stop."""
        if self._task is None:
            return
        task, self._task = self._task, None
        self._stopping = True
        self._wake.set()
        await task

    async def submit(self, items: list[PendingMessage]) -> None:
        """Store ``items`` and return once committed; raises what storing them raised. Items
        that storing refused (the wallet) carry their own ``error``."""
        if self._task is None:
            raise RuntimeError("MessageIngest is not running")
        submission = _Submission(items)
        self._waiting.append(submission)
        self._wake.set()
        await submission.done

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._waiting:
                batch = self._take_batch()
                try:
                    await self._write(batch)
                except Exception as exc:  # never let the writer die: fail this batch only
                    log.exception("ingest: storing a batch failed")
                    for submission in batch:
                        _resolve(submission, exc)
            if self._stopping:
                return

    def _take_batch(self) -> list[_Submission]:
        batch: list[_Submission] = []
        rows = 0
        while self._waiting and (not batch or rows + len(self._waiting[0].items)
                                 <= self._max_batch):
            submission = self._waiting.pop(0)
            batch.append(submission)
            rows += len(submission.items)
        return batch

    async def _write(self, batch: list[_Submission]) -> None:
        try:
            await self._commit([item for submission in batch for item in submission.items])
        except IntegrityError:
            for submission in batch:
                await self._write_alone(submission)
            return
        for submission in batch:
            _resolve(submission)

    async def _write_alone(self, submission: _Submission) -> None:
        try:
            await self._commit(submission.items)
        except IntegrityError:
            ref = next((i.row.get("client_ref") for i in submission.items), None) or ""
            _resolve(submission, duplicate_client_ref(ref))
        else:
            _resolve(submission)

    async def _commit(self, items: list[PendingMessage]) -> None:
        for item in items:
            item.error = None
        async with self._write_turn, self._sessions() as session:
            await self._store(session, items, self._clock())
            await session.commit()
        if self._on_commit is not None:
            self._on_commit()


def _resolve(submission: _Submission, error: BaseException | None = None) -> None:
    """Release the waiting request (unless it has gone away: a client that disconnected)."""
    if submission.done.done():
        return
    if error is None:
        submission.done.set_result(None)
    else:
        submission.done.set_exception(error)
