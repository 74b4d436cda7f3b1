"""``tidings serve`` runs its workers as a ``tidings worker`` child process: it sends what the
API accepted, is replaced when it dies, stops with serve (SIGTERM: cleanly; SIGKILL: at once,
so a restarted serve can take the workers over), and ``--inline-workers`` keeps the workers in
the API process instead."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.cli.processes import (
    Served,
    exits_within,
    request_json,
    run_tidings,
    serving,
    wait_until,
)

WORKER_COMMAND = "-m tidings worker --wake-fd"


def _gone(pid: int) -> bool:
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return True


def _one_worker(served: Served) -> int:
    found: list[int] = []

    def started() -> bool:
        found[:] = served.children(WORKER_COMMAND)
        return len(found) == 1

    wait_until(started, "one worker process", deadline_seconds=30, process=served.process,
               log=served.log)
    return found[0]


def test_the_worker_process_sends_what_the_api_accepted(tmp_path: Path) -> None:
    with serving(tmp_path) as served:
        _one_worker(served)
        made = json.loads(run_tidings(
            ["tenant", "create", "--name", "Acme", "--email", "owner@example.com",
             "--password", "a long password", "--json"], cwd=tmp_path, env=served.env).stdout)
        key = made["api_key"]
        status, _ = request_json(served.port, "POST", "/sms/v1/apps/", {
            "name": "Sandbox", "provider": "SIMULATOR", "sender_id": "Acme"}, key)
        assert status == 201
        status, sent = request_json(served.port, "POST", "/sms/v1/messages/",
                                {"phone": "+14155550100", "text": "Hello"}, key)
        assert status == 201

        def delivered() -> bool:
            return request_json(served.port, "GET", f"/sms/v1/messages/{sent['id']}/",
                            key=key)[1].get("state") == "delivered"

        wait_until(delivered, "the message to be delivered", deadline_seconds=30,
                   process=served.process, log=served.log)
        assert "workers running against" in served.log.read_text()  # `tidings worker` said so


def test_serve_and_its_worker_stop_cleanly_on_sigterm(tmp_path: Path) -> None:
    with serving(tmp_path) as served:
        worker = _one_worker(served)
        wait_until(lambda: "workers running against" in served.log.read_text(),
                   "the worker to run", deadline_seconds=30, process=served.process,
                   log=served.log)

        served.process.send_signal(signal.SIGTERM)

        assert exits_within(served.process, 30) == 0, served.log.read_text()
        assert _gone(worker)
        assert "workers stopped" in served.log.read_text()
        assert "Traceback" not in served.log.read_text()


def test_the_worker_process_stops_at_once_when_serve_is_killed(tmp_path: Path) -> None:
    with serving(tmp_path) as served:
        worker = _one_worker(served)

        served.process.kill()
        served.process.wait(timeout=10)

        wait_until(lambda: _gone(worker), "the worker process to stop", deadline_seconds=10)
        assert "the serve process has gone; the worker stops at once" in served.log.read_text()


def test_a_killed_worker_process_is_replaced(tmp_path: Path) -> None:
    with serving(tmp_path) as served:
        first = _one_worker(served)

        os.kill(first, signal.SIGKILL)

        def replaced() -> bool:
            workers = served.children(WORKER_COMMAND)  # read once: the killed one can vanish
            return bool(workers) and first not in workers

        wait_until(replaced, "a new worker process", deadline_seconds=30,
                   process=served.process, log=served.log)
        assert f"worker process {first} exited with -9; starting another" in \
            served.log.read_text()


def test_inline_workers_run_in_the_api_process(tmp_path: Path) -> None:
    with serving(tmp_path, "--inline-workers") as served:
        wait_until(lambda: "workers started" in served.log.read_text(), "the workers to start",
                   deadline_seconds=30, process=served.process, log=served.log)

        assert served.children(WORKER_COMMAND) == []
