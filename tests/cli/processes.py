"""Running the installed ``tidings`` script as a real process, as an operator would: a clean
``TIDINGS_*`` environment, a free port, output to files (no pipe to fill up), polling with
deadlines instead of sleeping."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

TIDINGS = Path(sys.executable).parent / "tidings"
POLL_SECONDS = 0.05


def tidings_script() -> Path:
    if not TIDINGS.exists():
        pytest.fail(f"{TIDINGS} is missing: install the project (make install)")
    return TIDINGS


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def clean_env(**tidings: str) -> dict[str, str]:
    """This process's environment without any ``TIDINGS_*`` variable, plus ``tidings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
    return {**env, **tidings}


def wait_until(condition: Callable[[], bool], what: str, deadline_seconds: float = 30.0,
               process: subprocess.Popen[bytes] | None = None,
               log: Path | None = None) -> None:
    """Poll ``condition`` until it holds; fail after the deadline or when ``process`` exits."""
    deadline = time.monotonic() + deadline_seconds
    while not condition():
        if process is not None and process.poll() is not None:
            pytest.fail(f"process exited ({process.returncode}) before {what}:\n"
                        f"{log.read_text() if log else ''}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{log.read_text() if log else ''}")
        time.sleep(POLL_SECONDS)


@contextmanager
def running(args: list[str], *, cwd: Path, env: dict[str, str],
            stderr: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``tidings <args>`` as a background process with its stdout and stderr in
    ``stderr``'s directory; always killed when the block ends."""
    with (stderr.with_suffix(".stdout").open("wb") as out, stderr.open("wb") as err):
        process = subprocess.Popen([str(tidings_script()), *args], cwd=cwd, env=env,
                                   stdout=out, stderr=err)
        try:
            yield process
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=30)


def run_tidings(args: list[str], *, cwd: Path, env: dict[str, str],
                timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(tidings_script()), *args], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout, check=False)


def exits_within(process: subprocess.Popen[bytes], seconds: float) -> int:
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the process did not exit within {seconds}s")


def child_processes(pid: int, command_part: str) -> list[int]:
    """The processes ``pid`` started whose command line holds ``command_part``. Every thread's
    children are read: a restarted child comes from the watcher thread, not the main one."""
    pids: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            pids += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return [child for child in pids if command_part in command_line(child)]


def command_line(pid: int) -> str:
    """``pid``'s command line, arguments joined by spaces ("" once it has gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def exchange_json(connection: http.client.HTTPConnection, method: str, path: str,
                  body: dict[str, object] | None = None,
                  key: str | None = None) -> tuple[int, dict[str, object]]:
    """One JSON request on an open connection (bearer ``key`` if given): status and body."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    connection.request(method, path, body=json.dumps(body) if body is not None else None,
                       headers=headers)
    answer = connection.getresponse()
    return answer.status, json.loads(answer.read() or b"{}")


def request_json(port: int, method: str, path: str, body: dict[str, object] | None = None,
                 key: str | None = None) -> tuple[int, dict[str, object]]:
    """``exchange_json`` on a connection of its own to 127.0.0.1:``port``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        return exchange_json(connection, method, path, body, key)
    finally:
        connection.close()


@dataclass
class Served:
    """A running ``tidings serve``: its process, port, environment and log."""

    process: subprocess.Popen[bytes]
    port: int
    env: dict[str, str]
    log: Path

    def children(self, command_part: str) -> list[int]:
        """Its child processes whose command line holds ``command_part``."""
        return child_processes(self.process.pid, command_part)

    def healthy(self) -> bool:
        try:
            return request_json(self.port, "GET", "/health")[0] == 200
        except OSError:
            return False


@contextmanager
def serving(tmp_path: Path, *options: str) -> Iterator[Served]:
    """``tidings serve`` with ``options`` on a free port and an SQLite file under
    ``tmp_path``, once ``/health`` answers; stopped when the block ends."""
    port = free_port()
    env = clean_env(TIDINGS_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'var' / 't.db'}",
                    TIDINGS_VAR_DIR=str(tmp_path / "var"), TIDINGS_PORT=str(port))
    log = tmp_path / "serve.log"
    with running(["serve", *options], cwd=tmp_path, env=env, stderr=log) as process:
        served = Served(process, port, env, log)
        wait_until(served.healthy, "the API to answer", deadline_seconds=60, process=process,
                   log=log)
        yield served
