"""One worker set per SQLite database: an exclusive ``flock`` on ``<database file>.workers.lock``.

SQLite is single-node (DESIGN.md, "Process model"): two processes dispatching from one SQLite
file would race for the same rows. So the workers of ``tidings serve`` and ``tidings worker`` take
this lock, without waiting, when they start, and give it back when they stop; a second process
that tries finds it held and refuses to start (``NodeLockBusy``, which names the holder's pid).
The kernel drops an ``flock`` when its process dies, so a crash never leaves a stale lock; the
file itself stays (deleting it would let two processes lock two different files).
Extra API processes that share the file run ``tidings serve --no-workers`` and take no lock.

On PostgreSQL no file lock is taken (``NodeLock.for_database`` answers None): worker nodes share
the queue, and periodic jobs will take a PostgreSQL advisory lock, so that one node runs each,
when the pipeline issue adds them. Until then every worker node runs the periodic jobs, which are
idempotent.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from tidings.db.write_turn import sqlite_file

LOCK_SUFFIX = ".workers.lock"


class NodeLockBusy(Exception):
    """Another process holds the workers' lock for this database."""


class NodeLock:
    """The workers' lock for one SQLite file. Not reentrant: a second ``NodeLock`` on the same
    path, even in the same process, finds it busy."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    @classmethod
    def for_database(cls, database_url: str) -> NodeLock | None:
        """The lock for an SQLite file database; None for PostgreSQL and in-memory SQLite."""
        database = sqlite_file(database_url)
        if database is None:
            return None
        return cls(Path(str(database) + LOCK_SUFFIX))

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise ``NodeLockBusy`` at once; records this process's pid in it."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this NodeLock")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise NodeLockBusy(
                f"another Tidings process (pid {holder}) is running the workers for this SQLite "
                f"database, and SQLite allows one worker set per database file. Stop that "
                f"process first; more API processes can run `tidings serve --no-workers`. "
                f"(lock file: {self.path})") from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Give the lock back; nothing happens when it is not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def ensure_free(self) -> None:
        """Raise ``NodeLockBusy`` when another process holds the lock; hold nothing after."""
        self.acquire()
        self.release()
