"""The background workers of one process: periodic jobs run by a small scheduler.

``WorkerSet.start()`` launches them as asyncio tasks; ``stop()`` cancels them and waits. Later
issues add the dispatcher and the callback sender here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from tidings.runtime import Runtime

log = logging.getLogger(__name__)

Job = Callable[[Runtime], Awaitable[None]]


@dataclass(frozen=True)
class PeriodicJob:
    name: str
    every_seconds: float
    run: Job


class WorkerSet:
    def __init__(self, runtime: Runtime, jobs: list[PeriodicJob] | None = None) -> None:
        self._runtime = runtime
        self._jobs = jobs if jobs is not None else []
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        for job in self._jobs:
            self._tasks.append(asyncio.create_task(self._loop(job), name=f"job:{job.name}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()

    async def _loop(self, job: PeriodicJob) -> None:
        while True:
            try:
                await job.run(self._runtime)
            except Exception:
                log.exception("periodic job %s failed; it runs again next period", job.name)
            await asyncio.sleep(job.every_seconds)
