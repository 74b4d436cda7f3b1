"""The background workers of one process: the dispatcher (``pipeline.dispatcher``) with its SMPP
binds (``pipeline.smpp_binds``) and their report writer (``pipeline.report_ingest``), the
callback sender (``pipeline.callbacks``) and the scheduler of periodic jobs (``pipeline.jobs``).

``tidings serve`` runs a ``WorkerSet`` inside the app's lifespan (unless ``--no-workers``);
``tidings worker`` runs one on its own. On SQLite, one worker set per database file: ``start()``
takes the node lock (``pipeline.node_lock``) first and raises ``NodeLockBusy`` when another
process holds it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from tidings.pipeline.callbacks import CallbackSender
from tidings.pipeline.dispatcher import Dispatcher
from tidings.pipeline.jobs import Job, PeriodicJob, default_jobs
from tidings.pipeline.node_lock import NodeLock
from tidings.pipeline.report_ingest import ReportIngest
from tidings.pipeline.smpp_binds import SmppBinds
from tidings.runtime import Runtime

__all__ = ["Job", "PeriodicJob", "WorkerSet"]

log = logging.getLogger(__name__)

STOP_GRACE_SECONDS = 10.0
"""How long ``stop()`` waits for running jobs to finish their transaction before cancelling."""


class WorkerSet:
    """Runs ``jobs`` (``default_jobs()`` when None) for ``runtime``.

    ``start()``: takes the node lock (SQLite only; ``NodeLockBusy`` when taken, and then nothing
    runs), then starts one task per job that runs it at once and then every ``every_seconds``; a
    run that raises is logged and the job runs again next period. ``stop()``: lets a job that is
    running finish its transaction (cancelling it mid-transaction would interrupt the rollback
    of its connection), cancels what is still running after ``STOP_GRACE_SECONDS``, and releases
    the lock. Both are safe to call twice.
    """

    def __init__(self, runtime: Runtime, jobs: Sequence[PeriodicJob] | None = None, *,
                 dispatch: bool = True) -> None:
        self._runtime = runtime
        self._jobs = list(jobs) if jobs is not None else default_jobs()
        self.callbacks = CallbackSender(runtime) if dispatch else None
        # What the SMPP binds receive is stored here, as webhooks are in the API process.
        self.reports = ReportIngest(runtime.sessions, runtime.clock,
                                    on_commit=self.wake_callbacks,
                                    write_turn=runtime.write_turn) if dispatch else None
        self.smpp = SmppBinds(runtime, self.reports) if self.reports is not None else None
        self.dispatcher = Dispatcher(runtime, smpp=self.smpp) if dispatch else None
        self._lock = NodeLock.for_database(runtime.settings.database_url)
        self._tasks: list[asyncio.Task[None]] = []
        self._dispatch_task: asyncio.Task[None] | None = None
        self._callbacks_task: asyncio.Task[None] | None = None
        self._running = False
        self._stopping = asyncio.Event()

    def wake_dispatcher(self) -> None:
        """Messages may be due: the dispatcher looks now rather than at its next poll."""
        if self.dispatcher is not None:
            self.dispatcher.wake()

    def wake_callbacks(self) -> None:
        """Callbacks may be due: the callback sender looks now."""
        if self.callbacks is not None:
            self.callbacks.wake()

    @property
    def jobs(self) -> list[PeriodicJob]:
        return list(self._jobs)

    @property
    def running(self) -> bool:
        return self._running

    async def start(self) -> None:
        if self._running:
            return
        if self._lock is not None:
            self._lock.acquire()
        self._running = True
        self._stopping.clear()
        for job in self._jobs:
            self._tasks.append(asyncio.create_task(self._loop(job), name=f"job:{job.name}"))
        names = [job.name for job in self._jobs]
        if self.reports is not None:
            self.reports.start()
        if self.dispatcher is not None:
            self._dispatch_task = asyncio.create_task(self.dispatcher.run(), name="dispatcher")
            names.insert(0, "dispatcher")
        if self.callbacks is not None:
            self._callbacks_task = asyncio.create_task(self.callbacks.run(), name="callbacks")
            names.insert(1, "callbacks")
        log.info("workers started: %s", ", ".join(names) or "no jobs")

    async def stop(self) -> None:
        if self.dispatcher is not None and self._dispatch_task is not None:
            self.dispatcher.stop()
            await asyncio.gather(self._dispatch_task, return_exceptions=True)
            self._dispatch_task = None
        if self.smpp is not None:
            await self.smpp.stop()
        if self.reports is not None:
            await self.reports.stop()
        if self.callbacks is not None and self._callbacks_task is not None:
            self.callbacks.stop()
            await asyncio.gather(self._callbacks_task, return_exceptions=True)
            self._callbacks_task = None
        self._stopping.set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=STOP_GRACE_SECONDS)
            for task in late:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._lock is not None:
            self._lock.release()
        if self._running:
            log.info("workers stopped")
        self._running = False

    async def _loop(self, job: PeriodicJob) -> None:
        while not self._stopping.is_set():
            try:
                await job.run(self._runtime)
            except Exception:
                log.exception("periodic job %s failed; it runs again next period", job.name)
            try:
                await asyncio.wait_for(self._stopping.wait(), job.every_seconds)
            except TimeoutError:
                pass
