"""The SQLite workers' lock: which databases get one, exclusivity, release, and the message."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tidings.pipeline.node_lock import NodeLock, NodeLockBusy


@pytest.mark.parametrize(("url", "lock_path"), [
    ("sqlite+aiosqlite:///./var/tidings.db", "var/tidings.db.workers.lock"),
    ("sqlite+aiosqlite:////srv/tidings/t.db", "/srv/tidings/t.db.workers.lock"),
    ("sqlite+aiosqlite:///file:/srv/t.db?uri=true&mode=rw", "/srv/t.db.workers.lock"),
    ("sqlite+aiosqlite://", None),
    ("sqlite+aiosqlite:///:memory:", None),
    ("sqlite+aiosqlite:///file:mem?mode=memory&uri=true", None),
    ("postgresql+asyncpg://tidings@db.example.com/tidings", None),
])
def test_only_sqlite_file_databases_get_a_lock_next_to_the_file(
        url: str, lock_path: str | None) -> None:
    lock = NodeLock.for_database(url)
    assert (None if lock is None else lock.path) == (None if lock_path is None
                                                    else Path(lock_path))


def test_a_held_lock_refuses_a_second_holder_naming_the_first(tmp_path: Path) -> None:
    first, second = NodeLock(tmp_path / "db.workers.lock"), NodeLock(tmp_path / "db.workers.lock")
    first.acquire()
    try:
        with pytest.raises(NodeLockBusy, match=f"pid {os.getpid()}"):
            second.acquire()
        with pytest.raises(NodeLockBusy):
            second.ensure_free()
        assert first.held
        assert not second.held
    finally:
        first.release()
    second.acquire()
    second.release()


def test_release_is_idempotent_and_ensure_free_holds_nothing(tmp_path: Path) -> None:
    lock = NodeLock(tmp_path / "sub" / "db.workers.lock")
    lock.ensure_free()
    assert not lock.held
    lock.acquire()
    lock.release()
    lock.release()
    assert not lock.held
    assert (tmp_path / "sub" / "db.workers.lock").stat().st_mode & 0o777 == 0o600


def test_acquiring_twice_through_one_lock_is_a_programming_error(tmp_path: Path) -> None:
    lock = NodeLock(tmp_path / "db.workers.lock")
    lock.acquire()
    try:
        with pytest.raises(RuntimeError, match="already held"):
            lock.acquire()
    finally:
        lock.release()
