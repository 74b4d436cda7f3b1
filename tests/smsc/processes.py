"""The test SMSC programs as child processes on 127.0.0.1, for tests that drive the SMPP
connector through a scenario (the contract: ``smsc-contract.md``).

``run_smsc(kind, scenario, tmp_path)`` writes the scenario file, starts the program on a free
port, waits for its ``LISTENING <port>`` line and yields an ``Smsc``; on exit it sends SIGTERM,
then SIGKILL if the program lingers. Tests read what the SMSC saw and did with
``Smsc.events()``, and wait for it with ``wait_for`` (blocking) or ``until`` (async, polling
with ``asyncio.sleep``). A program that cannot play the scenario exits 2 at start, and the
test is skipped with its reason; a program that fails otherwise fails the test with its
stderr.

The programs always run in processes of their own: smpp34's server can crash the interpreter
at exit, and must never share the test's event loop.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest

SmscKind = Literal["smpp34", "node"]
SMSC_KINDS: tuple[SmscKind, ...] = ("smpp34", "node")

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
NODE_PROGRAM = REPO_ROOT / "tests" / "smsc" / "node" / "smsc.js"
UNSUPPORTED_EXIT = 2
START_SECONDS = 30.0  # generous: CI machines run loaded
STOP_SECONDS = 5.0
POLL_SECONDS = 0.02
START_ATTEMPTS = 3  # a free port can be taken between choosing it and the program binding it

Event = dict[str, Any]
EventsCheck = Callable[[list[Event]], bool]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
        return port


def smsc_argv(kind: SmscKind, port: int, scenario: Path, events: Path) -> list[str]:
    """The command line of an SMSC program; skips the test when ``node`` is not installed."""
    contract_args = ["--port", str(port), "--scenario", str(scenario), "--events", str(events)]
    if kind == "smpp34":
        return [sys.executable, "-m", "tests.smsc.smpp34_smsc", *contract_args]
    node = shutil.which("node")
    if node is None:
        pytest.skip("the node SMSC needs node, which is not installed")
    return [node, str(NODE_PROGRAM), *contract_args]


@dataclass
class Smsc:
    """A running SMSC program: where it listens, its events file, its process."""

    kind: SmscKind
    port: int
    events_path: Path
    stdout_path: Path
    stderr_path: Path
    process: subprocess.Popen[bytes]

    @property
    def host(self) -> str:
        return HOST

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def events(self, kind: str | None = None) -> list[Event]:
        """The events written so far, in order; only those named ``kind`` when given. A last
        line still being written is left out."""
        try:
            text = self.events_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        lines = text.split("\n")[:-1]  # whatever follows the last newline is incomplete
        events = [json.loads(line) for line in lines if line]
        return events if kind is None else [e for e in events if e.get("event") == kind]

    def _check(self, kind: str | None, count: int, check: EventsCheck | None) -> list[Event]:
        """The events (of ``kind``) when there are at least ``count`` and ``check`` holds for
        them, else an empty list."""
        events = self.events(kind)
        if len(events) >= count and (check is None or check(events)):
            return events
        return []

    def _fail(self, what: str, timeout: float) -> None:
        tail = "\n".join(json.dumps(e) for e in self.events()[-20:])
        status = ("running" if self.process.poll() is None
                  else f"exited with {self.process.returncode}")
        pytest.fail(f"{self.kind} SMSC: no {what} within {timeout}s ({status}).\n"
                    f"Last events:\n{tail}\nstderr:\n{self.stderr()[-3000:]}")

    def wait_for(self, kind: str | None = None, *, count: int = 1,
                 check: EventsCheck | None = None, timeout: float = 5.0) -> list[Event]:
        """Block until there are at least ``count`` events (of ``kind``) and ``check`` holds
        for them; returns those events. Fails the test at the deadline with the last events
        and the program's stderr."""
        deadline = time.monotonic() + timeout
        while not (events := self._check(kind, count, check)):
            if time.monotonic() > deadline:
                self._fail(f"{count} {kind or 'event'}(s) passing the check", timeout)
            time.sleep(POLL_SECONDS)
        return events

    async def until(self, kind: str | None = None, *, count: int = 1,
                    check: EventsCheck | None = None, timeout: float = 5.0) -> list[Event]:
        """``wait_for`` for async tests: polls with ``asyncio.sleep``, so the client under
        test keeps running on the same loop."""
        deadline = time.monotonic() + timeout
        while not (events := self._check(kind, count, check)):
            if time.monotonic() > deadline:
                self._fail(f"{count} {kind or 'event'}(s) passing the check", timeout)
            await asyncio.sleep(POLL_SECONDS)
        return events

    def kill(self) -> None:
        """SIGKILL the program, as a crashed SMSC or a cut link would look to the ESME."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=STOP_SECONDS)

    def stop(self) -> int:
        """SIGTERM, then SIGKILL if the program has not ended within ``STOP_SECONDS``;
        returns its exit code (0 after a clean SIGTERM)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_SECONDS)
        return self.process.returncode


def _start(kind: SmscKind, scenario_path: Path, workdir: Path, port: int | None) -> Smsc:
    """Start the program once on a fresh port and wait for ``LISTENING <port>``. Skips the
    test when the program exits 2 (unsupported scenario); fails it when the program exits
    otherwise or never listens; raises ``OSError`` when the port was taken meanwhile, for the
    caller to try another."""
    port = port or free_port()
    events_path = workdir / f"events-{port}.jsonl"
    stdout_path = workdir / f"stdout-{port}.txt"
    stderr_path = workdir / f"stderr-{port}.txt"
    argv = smsc_argv(kind, port, scenario_path, events_path)
    with stdout_path.open("wb") as stdout, stderr_path.open("wb") as stderr:
        process = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=stdout, stderr=stderr,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
    smsc = Smsc(kind, port, events_path, stdout_path, stderr_path, process)
    expected = f"LISTENING {port}\n"
    deadline = time.monotonic() + START_SECONDS
    while expected not in stdout_path.read_text(errors="replace"):
        if process.poll() is not None:
            reason = smsc.stderr().strip()
            if process.returncode == UNSUPPORTED_EXIT:
                pytest.skip(f"{kind} SMSC cannot play this scenario: {reason}")
            if "in use" in reason.lower():
                raise OSError(f"port {port} taken: {reason}")
            pytest.fail(f"{kind} SMSC exited with {process.returncode} before listening:\n"
                        f"{reason}")
        if time.monotonic() > deadline:
            smsc.kill()
            pytest.fail(f"{kind} SMSC did not print {expected.strip()!r} within "
                        f"{START_SECONDS}s:\n{smsc.stderr()}")
        time.sleep(POLL_SECONDS)
    return smsc


@contextmanager
def run_smsc(kind: SmscKind, scenario: dict[str, Any], tmp_path: Path, *,
             port: int | None = None) -> Iterator[Smsc]:
    """An SMSC program of ``kind`` playing ``scenario`` on a free port of 127.0.0.1, its
    files under ``tmp_path/smsc-<kind>-<n>``; stopped (SIGTERM, then SIGKILL) on exit.
    Skips the test when the program reports the scenario unsupported (exit 2). ``port`` picks
    the port (an SMSC that comes up where a client has been trying to bind)."""
    runs = len(list(tmp_path.glob(f"smsc-{kind}-*")))
    workdir = tmp_path / f"smsc-{kind}-{runs + 1}"
    workdir.mkdir(parents=True)
    scenario_path = workdir / "scenario.json"
    scenario_path.write_text(json.dumps(scenario, indent=2), encoding="utf-8")
    for attempt in range(1, START_ATTEMPTS + 1):
        try:
            smsc = _start(kind, scenario_path, workdir, port)
            break
        except OSError:
            if attempt == START_ATTEMPTS:
                raise
    try:
        yield smsc
    finally:
        smsc.stop()
