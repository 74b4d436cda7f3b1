"""``tidings serve`` runs its workers as a ``tidings worker`` child process: it sends what the
API accepted, is replaced when it dies, stops with serve (SIGTERM: cleanly; SIGKILL: at once,
so a restarted serve can take the workers over), and ``--inline-workers`` keeps the workers in
the API process instead."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.cli.processes import (
    child_processes,
    clean_env,
    exits_within,
    free_port,
    run_tidings,
    running,
    wait_until,
)

WORKER_COMMAND = "-m tidings worker --wake-fd"


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    log: Path

    def worker_processes(self) -> list[int]:
        return child_processes(self.process.pid, WORKER_COMMAND)

    def healthy(self) -> bool:
        try:
            return _request(self.port, "GET", "/health")[0] == 200
        except OSError:
            return False


def _gone(pid: int) -> bool:
    try:
        return "zombie" in Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return True


def _request(port: int, method: str, path: str, body: dict[str, object] | None = None,
             key: str | None = None) -> tuple[int, dict[str, object]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        connection.request(method, path, body=json.dumps(body) if body is not None else None,
                           headers=headers)
        answer = connection.getresponse()
        return answer.status, json.loads(answer.read() or b"{}")
    finally:
        connection.close()


@contextmanager
def serving(tmp_path: Path, *options: str) -> Iterator[Served]:
    port = free_port()
    env = clean_env(TIDINGS_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'var' / 't.db'}",
                    TIDINGS_VAR_DIR=str(tmp_path / "var"), TIDINGS_PORT=str(port))
    log = tmp_path / "serve.log"
    with running(["serve", *options], cwd=tmp_path, env=env, stderr=log) as process:
        served = Served(process, port, env, log)
        wait_until(served.healthy, "the API to answer", deadline_seconds=60, process=process,
                   log=log)
        yield served


def _one_worker(served: Served) -> int:
    found: list[int] = []

    def started() -> bool:
        found[:] = served.worker_processes()
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
        status, _ = _request(served.port, "POST", "/sms/v1/apps/", {
            "name": "Sandbox", "provider": "SIMULATOR", "sender_id": "Acme"}, key)
        assert status == 201
        status, sent = _request(served.port, "POST", "/sms/v1/messages/",
                                {"phone": "+14155550100", "text": "Hello"}, key)
        assert status == 201

        def delivered() -> bool:
            return _request(served.port, "GET", f"/sms/v1/messages/{sent['id']}/",
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
            workers = served.worker_processes()  # read once: the killed one can vanish
            return bool(workers) and first not in workers

        wait_until(replaced, "a new worker process", deadline_seconds=30,
                   process=served.process, log=served.log)
        assert f"worker process {first} exited with -9; starting another" in \
            served.log.read_text()


def test_inline_workers_run_in_the_api_process(tmp_path: Path) -> None:
    with serving(tmp_path, "--inline-workers") as served:
        wait_until(lambda: "workers started" in served.log.read_text(), "the workers to start",
                   deadline_seconds=30, process=served.process, log=served.log)

        assert served.worker_processes() == []
