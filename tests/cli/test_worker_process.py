"""``tidings worker`` as a real process: it holds the SQLite node lock while it runs and stops
cleanly on SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.cli.processes import clean_env, exits_within, running, wait_until
from tidings.pipeline.node_lock import NodeLock, NodeLockBusy


def test_worker_holds_the_node_lock_until_sigterm_then_exits_0(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'var' / 'tidings.db'}"
    env = clean_env(TIDINGS_DATABASE_URL=url, TIDINGS_VAR_DIR=str(tmp_path / "var"))
    log = tmp_path / "worker.log"
    lock = NodeLock.for_database(url)
    assert lock is not None

    with running(["worker"], cwd=tmp_path, env=env, stderr=log) as worker:
        wait_until(lambda: "workers running" in log.read_text(), "the workers to start",
                   process=worker, log=log)
        with pytest.raises(NodeLockBusy, match=f"pid {worker.pid}"):
            lock.acquire()
        worker.send_signal(signal.SIGTERM)
        assert exits_within(worker, 20) == 0, log.read_text()

    lock.acquire()  # released on the way out
    lock.release()
    assert "workers stopped" in log.read_text()
    assert "Traceback" not in log.read_text()
