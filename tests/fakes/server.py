"""Serve an ASGI app on 127.0.0.1 in a background thread, for tests and benchmarks.

The code under test talks to the fake over a real socket, exactly as it would to the provider.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar

import httpx
import uvicorn

T = TypeVar("T")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serve_in_thread(app: Any, port: int | None = None) -> Iterator[str]:
    """Run ``app`` with uvicorn on 127.0.0.1 until the block ends; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(_serve_then_settle(server)),
                              daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("fake server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


async def _serve_then_settle(server: uvicorn.Server) -> None:
    """Serve until told to exit, then cancel the fake's own background work (report
    deliveries mid-connect) until none is left. ``asyncio.run`` cancels only the tasks alive
    when it starts closing; a task one of those spawns while being cancelled would be dropped
    unstarted with the loop and warn "never awaited" in whichever test runs next."""
    await server.serve()
    current = asyncio.current_task()
    for _ in range(100):
        remaining = [task for task in asyncio.all_tasks() if task is not current]
        if not remaining:
            return
        for task in remaining:
            task.cancel()
        await asyncio.gather(*remaining, return_exceptions=True)


def run_forever(app: Any, port: int) -> None:
    """Serve ``app`` in the foreground (``python -m tests.fakes.<provider> --port N``)."""
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


class ReportQueue(Generic[T]):
    """A fake's outgoing webhooks (delivery reports, status callbacks): each item ``put`` is
    delivered in the background with ``deliver(client, item)``, at most ``concurrency`` at once,
    on the event loop of whoever puts it (the fake's server, which may be restarted on a new
    loop). ``pending`` counts items queued or being delivered."""

    def __init__(self, deliver: Callable[[httpx.AsyncClient, T], Coroutine[Any, Any, None]],
                 concurrency: int) -> None:
        self._deliver = deliver
        self._concurrency = concurrency
        self._queue: asyncio.Queue[T] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._worker: asyncio.Task[None] | None = None
        self._in_flight = 0

    def put(self, item: T) -> None:
        loop = asyncio.get_running_loop()
        if self._queue is None or self._loop is not loop:
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._run(self._queue))
        self._queue.put_nowait(item)

    @property
    def pending(self) -> int:
        return (self._queue.qsize() if self._queue is not None else 0) + self._in_flight

    async def _run(self, queue: asyncio.Queue[T]) -> None:
        slots = asyncio.Semaphore(self._concurrency)
        running: set[asyncio.Task[None]] = set()
        async with httpx.AsyncClient(timeout=10.0) as client:
            while True:
                item = await queue.get()
                await slots.acquire()
                self._in_flight += 1
                task = asyncio.create_task(self._deliver(client, item))
                running.add(task)

                def finished(task: asyncio.Task[None]) -> None:
                    running.discard(task)
                    slots.release()
                    self._in_flight -= 1

                task.add_done_callback(finished)
