"""The gateway as real processes, for the end-to-end tests that kill and restart it
(``test_crash_recovery``, ``test_callback_restart``): each program leads a process group of its
own and logs to a file, ``tidings serve`` is started and waited for, killed (the serve process
alone, or its whole group), and started again on the same port and database; with
``TIDINGS_TEST_POSTGRES_URL`` set the server gets a scratch PostgreSQL database of its own
(the ``server_database_url`` fixture, in ``tests/conftest.py``)."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import URL, make_url
from sqlalchemy import text as sql
from sqlalchemy.exc import ProgrammingError, SQLAlchemyError
from sqlalchemy.ext.asyncio import create_async_engine

from tests.cli.processes import tidings_script

START_SECONDS = 60.0
KILLED_SECONDS = 10.0
POLL_SECONDS = 0.25


class ProcessGroups:
    """The programs this test started, each leading a process group of its own (so a kill
    reaches whatever children it started: ``tidings serve``'s worker process) and logging to
    ``<name>.log`` under ``logs``; ``close`` kills every group, leaving no orphan behind."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self._started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, argv: list[str], *, cwd: Path,
              env: dict[str, str]) -> subprocess.Popen[bytes]:
        with (self.logs / f"{name}.log").open("wb") as log:
            process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=log,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self._started.append(process)
        return process

    def log(self, name: str) -> str:
        return (self.logs / f"{name}.log").read_text(errors="replace")

    def close(self) -> None:
        for process in self._started:
            kill_group(process.pid)
        for process in self._started:
            process.wait(timeout=30)


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def live_members(pgid: int) -> list[int]:
    """The processes of group ``pgid`` still running (zombies, dead but not yet reaped by
    whoever adopted them, are not), read from ``/proc``."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after its ")".
        state, _ppid, group = stat.rpartition(")")[2].split()[:3]
        if int(group) == pgid and state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


async def _postgres(url: URL, statement: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(sql(statement))
    finally:
        await engine.dispose()


def server_database(tmp_path: Path, postgres_url: str | None, purpose: str) -> Iterator[str]:
    """An empty database for the server: a file under ``<tmp>/var`` or a scratch PostgreSQL
    database, dropped afterwards (``WITH (FORCE)``: a killed server may leave sessions)."""
    if not postgres_url:
        yield f"sqlite+aiosqlite:///{tmp_path / 'var' / 'tidings.db'}"
        return
    admin = make_url(postgres_url)
    name = f"{admin.database}_{purpose}_{secrets.token_hex(4)}"
    try:
        asyncio.run(_postgres(admin, f'CREATE DATABASE "{name}"'))
    except (OSError, SQLAlchemyError) as exc:
        pytest.skip(f"cannot create a scratch PostgreSQL database for the server: {exc}")
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            asyncio.run(_postgres(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        except ProgrammingError:  # before PostgreSQL 13
            asyncio.run(_postgres(admin, f'DROP DATABASE IF EXISTS "{name}"'))


async def until(condition: Callable[[], Awaitable[bool]], what: str, deadline_seconds: float,
                 watched: subprocess.Popen[bytes], log: Callable[[], str]) -> None:
    """Poll ``condition`` until it holds; fail at the deadline, or at once if ``watched``
    exits, showing ``log()``."""
    deadline = time.monotonic() + deadline_seconds
    while not await condition():
        if watched.poll() is not None:
            pytest.fail(f"process exited ({watched.returncode}) before {what}:\n{log()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {deadline_seconds:.0f}s waiting for {what}:\n"
                        f"{log()[-5000:]}")
        await asyncio.sleep(POLL_SECONDS)


async def answers(http: httpx.AsyncClient, path: str) -> bool:
    try:
        return (await http.get(path)).status_code == 200
    except httpx.TransportError:
        return False


class Gateway:
    """``tidings serve`` on one port and database: started, killed, started again."""

    def __init__(self, processes: ProcessGroups, port: int, env: dict[str, str],
                 cwd: Path) -> None:
        self.processes = processes
        self.base_url = f"http://127.0.0.1:{port}"
        self.argv = [str(tidings_script()), "serve", "--host", "127.0.0.1", "--port", str(port)]
        self.env = env
        self.cwd = cwd
        self.runs = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        """The current run's log name: ``serve-1``, then ``serve-2``."""
        return f"serve-{self.runs}"

    @property
    def process(self) -> subprocess.Popen[bytes]:
        assert self._process is not None, "the gateway was never started"
        return self._process

    def log(self) -> str:
        return self.processes.log(self.name)

    async def start(self) -> None:
        """Start a run and wait until ``/health`` answers."""
        self.runs += 1
        self._process = self.processes.start(self.name, self.argv, cwd=self.cwd, env=self.env)
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as http:
            await until(lambda: answers(http, "/health"), f"{self.base_url}/health",
                         START_SECONDS, self.process, self.log)

    def kill(self) -> None:
        """SIGKILL the serve process alone, as a crash would (its worker process exits when
        its wake pipe closes)."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=KILLED_SECONDS)

    async def kill_group(self) -> None:
        """SIGKILL every process of the run; answers once none runs and the port is free."""
        pgid = self.process.pid
        kill_group(pgid)
        self.process.wait(timeout=KILLED_SECONDS)
        deadline = time.monotonic() + KILLED_SECONDS
        async with httpx.AsyncClient(base_url=self.base_url, timeout=1) as http:
            while live_members(pgid) or await answers(http, "/health"):
                if time.monotonic() > deadline:
                    pytest.fail(f"the killed server's group {pgid} still runs "
                                f"{live_members(pgid)} or its port still answers")
                await asyncio.sleep(POLL_SECONDS)


async def count_in_state(http: httpx.AsyncClient, headers: dict[str, str], state: str) -> int:
    answer = await http.get("/sms/v1/messages/", headers=headers,
                            params={"state": state, "limit": 1})
    assert answer.status_code == 200, answer.text
    count: int = answer.json()["count"]
    return count
