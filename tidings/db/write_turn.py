"""SQLite's write turn, shared by the processes of one database file.

SQLite has one writer at a time. A process's background writers (ingest, webhook ingest,
dispatcher, callback sender, jobs) already queue in turn on an ``asyncio.Lock`` rather than
sleeping in SQLite's busy handler; with ``tidings serve`` and its worker process both writing,
they also queue across processes on an ``flock`` of ``<database file>.write-turn.lock``, taken
in a thread. The busy handler sleeps 1, 2, 5, 10… ms between tries, so a writer in one process
seldom found the lock free between another process's back-to-back group commits; a blocked
``flock`` is woken the moment the lock is released.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path
from types import TracebackType

from sqlalchemy.engine import make_url

LOCK_SUFFIX = ".write-turn.lock"


def sqlite_file(database_url: str) -> Path | None:
    """The file of an SQLite database URL; None for PostgreSQL and in-memory SQLite."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database.startswith("file:"):  # an SQLite URI filename (``?uri=true``)
        database = database.removeprefix("file:").partition("?")[0]
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        return None
    return Path(database)


class FileWriteTurn:
    """An async context manager: this process's turn (an ``asyncio.Lock``), then the file's
    (an exclusive ``flock``, waited for in a thread). Released in the reverse order."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._local = asyncio.Lock()
        self._fd: int | None = None

    def _file(self) -> int:
        if self._fd is None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        return self._fd

    async def __aenter__(self) -> None:
        await self._local.acquire()
        try:
            fd = self._file()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: no thread needed
                return
            except BlockingIOError:
                pass
            waiting = asyncio.get_running_loop().run_in_executor(
                None, fcntl.flock, fd, fcntl.LOCK_EX)
            try:
                await asyncio.shield(waiting)
            except asyncio.CancelledError:
                # The thread will take the file lock anyway: give it back when it has.
                waiting.add_done_callback(lambda _: fcntl.flock(fd, fcntl.LOCK_UN))
                raise
        except BaseException:
            self._local.release()
            raise

    def close(self) -> None:
        """Close the lock file (at the runtime's end; the turn must not be held)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, traceback: TracebackType | None) -> None:
        try:
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._local.release()
