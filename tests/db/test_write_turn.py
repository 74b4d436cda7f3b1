"""SQLite's write turn across processes (``db.write_turn``): two holders of the same database
file never write at once, a waiting holder gets the turn the moment it is given back, and a
waiter that is cancelled leaves the turn free."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tidings.db.write_turn import FileWriteTurn, sqlite_file


@pytest.mark.parametrize(("url", "file"), [
    ("sqlite+aiosqlite:///./var/tidings.db", "var/tidings.db"),
    ("sqlite+aiosqlite:////srv/tidings/t.db", "/srv/tidings/t.db"),
    ("sqlite+aiosqlite:///file:/srv/t.db?mode=rwc&uri=true", "/srv/t.db"),
    ("sqlite+aiosqlite:///:memory:", None),
    ("sqlite+aiosqlite://", None),
    ("postgresql+asyncpg://u:p@db/tidings", None),
])
def test_the_turns_file_is_the_sqlite_databases(url: str, file: str | None) -> None:
    assert sqlite_file(url) == (Path(file) if file is not None else None)


def _hold_in_another_process(path: Path, seconds: float) -> subprocess.Popen[bytes]:
    """A process that takes the file's lock and keeps it ``seconds``; answers once it holds it
    (it says so on stdout)."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        f"time.sleep({seconds})\n")], stdout=subprocess.PIPE)
    assert holder.stdout is not None
    assert holder.stdout.readline() == b"held\n"
    holder.stdout.close()  # it says nothing more
    return holder


async def test_a_turn_held_by_another_process_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "t.db.write-turn.lock"
    holder = _hold_in_another_process(path, 0.5)
    turn = FileWriteTurn(path)
    started = time.monotonic()

    async with turn:
        waited = time.monotonic() - started
        assert holder.wait() == 0  # it had to give the turn back first
    turn.close()

    assert waited >= 0.3


async def test_the_turn_is_taken_in_turn_within_a_process(tmp_path: Path) -> None:
    turn = FileWriteTurn(tmp_path / "t.lock")
    inside: list[int] = []
    most = 0

    async def write(n: int) -> None:
        nonlocal most
        async with turn:
            inside.append(n)
            most = max(most, len(inside))
            await asyncio.sleep(0.01)
            inside.remove(n)

    await asyncio.gather(*(write(n) for n in range(5)))
    turn.close()

    assert most == 1


async def test_a_cancelled_waiter_leaves_the_turn_free(tmp_path: Path) -> None:
    path = tmp_path / "t.lock"
    holder = _hold_in_another_process(path, 0.3)
    turn = FileWriteTurn(path)
    waiter = asyncio.create_task(turn.__aenter__())
    await asyncio.sleep(0.05)

    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    holder.wait()
    await asyncio.sleep(0.1)  # the waiting thread takes the lock and gives it back

    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free: no BlockingIOError
    finally:
        os.close(fd)
    async with turn:  # and this process's own turn is free too
        pass
    turn.close()
