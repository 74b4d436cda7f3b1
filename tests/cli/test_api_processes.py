"""``tidings serve --api-processes N`` as real processes: the API is served by N processes on one
port (each connection lands on one of them), sends through any of them are stored, a killed
API process is replaced, and none outlives ``serve``."""

from __future__ import annotations

import http.client
import json
import os
import signal
from pathlib import Path

import pytest

from tests.cli.processes import (
    clean_env,
    exchange_json,
    exits_within,
    request_json,
    run_tidings,
    serving,
    wait_until,
)

API_CHILD = "spawn_main"  # the extra API processes multiprocessing starts
CONNECTIONS = 32  # all landing on one of two processes by chance: 1 in 2**31


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



def test_two_api_processes_share_the_port_and_store_every_send(tmp_path: Path) -> None:
    with serving(tmp_path, "--api-processes", "2") as served:
        made = json.loads(run_tidings(
            ["tenant", "create", "--name", "Acme", "--email", "owner@example.com",
             "--password", "a long password", "--json"], cwd=tmp_path, env=served.env).stdout)
        key = made["api_key"]
        status, _ = request_json(served.port, "POST", "/sms/v1/apps/", {
            "name": "Sandbox", "provider": "SIMULATOR", "sender_id": "Acme"}, key)
        assert status == 201
        [child] = served.children(API_CHILD)

        connections = [http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
                       for _ in range(CONNECTIONS)]
        try:
            answers = [exchange_json(connection, "POST", "/sms/v1/messages/", {
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
        status, listed = request_json(served.port, "GET", "/sms/v1/messages/?limit=1", key=key)
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
    with serving(tmp_path, "--api-processes", "2") as served:
        [first] = served.children(API_CHILD)
        os.kill(first, signal.SIGKILL)

        def replaced() -> bool:
            children = served.children(API_CHILD)  # read once: the killed one may vanish
            return bool(children) and first not in children

        wait_until(replaced, "a new API process", deadline_seconds=60,
                   process=served.process, log=served.log)
        assert "exited with -9; starting another" in served.log.read_text()
        assert served.healthy()


def test_api_processes_stop_when_serve_is_killed(tmp_path: Path) -> None:
    with serving(tmp_path, "--api-processes", "3") as served:
        children = served.children(API_CHILD)
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
