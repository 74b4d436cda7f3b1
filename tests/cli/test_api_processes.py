"""``tidings serve --api-processes N`` as real processes: the API is served by N processes on one
port (each connection lands on one of them), sends through any of them are stored, a killed
API process is replaced, and none outlives ``serve``."""

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

import pytest

from tests.cli.processes import (
    child_processes,
    clean_env,
    exits_within,
    free_port,
    run_tidings,
    running,
    wait_until,
)

CONNECTIONS = 32  # all landing on one of two processes by chance: 1 in 2**31


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    log: Path

    def api_children(self) -> list[int]:
        return child_processes(self.process.pid, "spawn_main")

    def healthy(self) -> bool:
        try:
            return _request(self.port, "GET", "/health")[0] == 200
        except OSError:
            return False


def _request(port: int, method: str, path: str, body: dict[str, object] | None = None,
             key: str | None = None) -> tuple[int, dict[str, object]]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        return _exchange(connection, method, path, body, key)
    finally:
        connection.close()


def _exchange(connection: http.client.HTTPConnection, method: str, path: str,
              body: dict[str, object] | None = None,
              key: str | None = None) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    connection.request(method, path, body=json.dumps(body) if body is not None else None,
                       headers=headers)
    answer = connection.getresponse()
    return answer.status, json.loads(answer.read() or b"{}")


def _established_socket_inodes(port: int) -> set[str]:
    """Inodes of ESTABLISHED TCP sockets whose local port is ``port`` (the server's side)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        if local_port == port and fields[3] == "01":
            inodes.add(fields[9])
    return inodes


def _socket_inodes_of(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    return inodes


@contextmanager
def serving(tmp_path: Path, processes: int) -> Iterator[Served]:
    port = free_port()
    env = clean_env(TIDINGS_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'var' / 't.db'}",
                    TIDINGS_VAR_DIR=str(tmp_path / "var"), TIDINGS_PORT=str(port))
    log = tmp_path / "serve.log"
    with running(["serve", "--api-processes", str(processes)], cwd=tmp_path, env=env,
                 stderr=log) as process:
        served = Served(process, port, env, log)
        wait_until(served.healthy, "the API to answer", deadline_seconds=60, process=process,
                   log=log)
        yield served


def test_two_api_processes_share_the_port_and_store_every_send(tmp_path: Path) -> None:
    with serving(tmp_path, 2) as served:
        made = json.loads(run_tidings(
            ["tenant", "create", "--name", "Acme", "--email", "owner@example.com",
             "--password", "a long password", "--json"], cwd=tmp_path, env=served.env).stdout)
        key = made["api_key"]
        status, _ = _request(served.port, "POST", "/sms/v1/apps/", {
            "name": "Sandbox", "provider": "SIMULATOR", "sender_id": "Acme"}, key)
        assert status == 201
        [child] = served.api_children()

        connections = [http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
                       for _ in range(CONNECTIONS)]
        try:
            answers = [_exchange(connection, "POST", "/sms/v1/messages/", {
                "phone": f"+1415555{n:04d}", "text": f"Hello {n}"}, key)
                for n, connection in enumerate(connections)]
            open_sockets = _established_socket_inodes(served.port)
            by_parent = open_sockets & _socket_inodes_of(served.process.pid)
            by_child = open_sockets & _socket_inodes_of(child)
        finally:
            for connection in connections:
                connection.close()

        assert [status for status, _ in answers] == [201] * CONNECTIONS
        assert (len(by_parent) > 0, len(by_child) > 0) == (True, True)
        assert len(by_parent) + len(by_child) == CONNECTIONS
        status, listed = _request(served.port, "GET", "/sms/v1/messages/?limit=1", key=key)
        assert (status, listed["count"]) == (200, CONNECTIONS)

        served.process.send_signal(signal.SIGTERM)
        assert exits_within(served.process, 30) == 0, served.log.read_text()
        assert not Path(f"/proc/{child}").exists() or "zombie" in _state(child)
        assert "Traceback" not in served.log.read_text()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().lower()
    except OSError:
        return "gone"


def test_a_killed_api_process_is_replaced(tmp_path: Path) -> None:
    with serving(tmp_path, 2) as served:
        [first] = served.api_children()
        os.kill(first, signal.SIGKILL)

        def replaced() -> bool:
            children = served.api_children()  # read once: the killed one can vanish between reads
            return bool(children) and first not in children

        wait_until(replaced, "a new API process", deadline_seconds=60,
                   process=served.process, log=served.log)
        assert "exited with -9; starting another" in served.log.read_text()
        assert served.healthy()


def test_api_processes_stop_when_serve_is_killed(tmp_path: Path) -> None:
    with serving(tmp_path, 3) as served:
        children = served.api_children()
        assert len(children) == 2
        served.process.kill()
        served.process.wait(timeout=10)

        wait_until(lambda: all(_state(pid) == "gone" or "zombie" in _state(pid)
                               for pid in children), "the API processes to stop",
                   deadline_seconds=45)


@pytest.mark.parametrize("count", ["0", "65"])
def test_an_out_of_range_process_count_is_refused(tmp_path: Path, count: str) -> None:
    result = run_tidings(["serve", "--api-processes", count], cwd=tmp_path,
                         env=clean_env(TIDINGS_VAR_DIR=str(tmp_path / "var")))

    assert result.returncode != 0
    assert "--api-processes" in result.stderr
