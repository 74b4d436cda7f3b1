"""Running the HTTP API under uvicorn, in one process or several sharing the port, and the
workers in a process of their own.

By default (``TIDINGS_WORKER_PROCESS=true``) ``tidings serve`` starts ``tidings worker`` as a
child (``WorkerProcess``): the dispatcher, the callback sender and the periodic jobs get a core
of their own instead of sharing the API's (BENCHMARKS.md: delivery reports to callbacks run
about twice as fast). The API wakes it through a pipe (``pipeline.wakes``) when it commits
messages or callbacks; the worker exits at once when that pipe closes (the serve process has
died), so a restarted serve can take the workers over. ``--inline-workers`` runs them inside
the API process instead.

One Python process handles about a thousand sends a second on one core (BENCHMARKS.md). With
``--api-processes N`` (``TIDINGS_API_PROCESSES``), ``tidings serve`` listens on a socket bound
with ``SO_REUSEPORT`` and starts ``N - 1`` more API-only processes, each binding its own socket
to the same address; the kernel spreads new connections across them. Only the first process
wakes the workers (the others' messages are picked up at the dispatcher's next poll, within
50 ms, and their callbacks within half a second). Each process has its own caches and,
without Redis, its own API rate limiter: with ``TIDINGS_REDIS_URL`` unset a tenant's API rate
limit applies per process.

A child stops when the parent asks (SIGTERM), on Ctrl+C, or when the parent dies (an API
process watches the parent's sentinel, the worker its wake pipe); one that exits on its own with
an error is started again after a second.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

import uvicorn

from tidings.config import Settings
from tidings.logging_setup import configure_logging, parse_level
from tidings.pipeline.wakes import WakeWriter

log = logging.getLogger("tidings.cli")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
RESTART_DELAY_SECONDS = 1.0
CHILD_START_SECONDS = 60.0
CHILD_STOP_SECONDS = 30.0


def uvicorn_server(app: Any, settings: Settings) -> uvicorn.Server:
    """The uvicorn server every API process runs (its access log filtered by our logging)."""
    config = uvicorn.Config(app, host=settings.host, port=settings.port, lifespan="on",
                            log_config=None, log_level=parse_level(settings.log_level))
    return _DrainingServer(config)


class _DrainingServer(uvicorn.Server):
    """Sets the app's ``draining`` event as shutdown begins: uvicorn waits for open responses
    before it runs the app's shutdown, and phones' event streams would otherwise never end."""

    async def shutdown(self, sockets: Any = None) -> None:
        draining = getattr(getattr(self.config.app, "state", None), "draining", None)
        if isinstance(draining, asyncio.Event):
            draining.set()
        await super().shutdown(sockets)


def shared_port_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` that other processes of ours may bind too."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns TCP_NODELAY on only for sockets it knows are TCP, and
    # without it a reply on a kept-alive connection waits ~40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


@contextmanager
def absorbing_stop_signals() -> Iterator[None]:
    """uvicorn handles SIGTERM/SIGINT itself and, after shutting down gracefully, raises the
    signal again so that the handler it found runs. The handlers installed here are what it
    finds: they do nothing, so a clean stop exits 0 instead of dying by the signal."""

    def absorb(signum: int, _frame: FrameType | None) -> None:
        log.debug("signal %d received after shutdown", signum)

    previous = {sig: signal.signal(sig, absorb) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class ApiProcesses:
    """Starts, restarts and stops the extra API processes of one ``tidings serve``."""

    def __init__(self, count: int, host: str, port: int) -> None:
        self.count, self.host, self.port = count, host, port
        self._context = multiprocessing.get_context("spawn")
        self._children: list[BaseProcess] = []
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def start(self, timeout: float = CHILD_START_SECONDS) -> None:
        """Start the children and wait until each listens (or ``timeout`` passes), so that the
        first connections are spread across all of them rather than all kept by the parent."""
        started = [self._spawn() for _ in range(self.count)]
        self._children = [child for child, _ in started]
        deadline = time.monotonic() + timeout
        for child, ready in started:
            while not ready.wait(0.1):
                if not child.is_alive() or time.monotonic() > deadline:
                    log.warning("API process %s is not listening yet; serving without it",
                                child.pid)
                    break
        self._watcher = threading.Thread(target=self._restart_failed, name="api-processes",
                                         daemon=True)
        self._watcher.start()

    def _spawn(self) -> tuple[BaseProcess, Any]:
        ready = self._context.Event()
        child = self._context.Process(target=serve_api_child,
                                      args=(self.host, self.port, ready),
                                      name="tidings-api", daemon=False)
        child.start()
        return child, ready

    def _restart_failed(self) -> None:
        while not self._stopping.is_set():
            wait([child.sentinel for child in self._children], timeout=0.5)
            for position, child in enumerate(self._children):
                if self._stopping.is_set() or child.is_alive():
                    continue
                child.join()
                if child.exitcode == 0:
                    continue  # it was told to stop (Ctrl+C reaches the whole process group)
                log.warning("API process %s exited with %s; starting another", child.pid,
                            child.exitcode)
                if self._stopping.wait(RESTART_DELAY_SECONDS):
                    return
                self._children[position], _ = self._spawn()

    def stop(self) -> None:
        """Ask every child to finish its requests and exit; kill those that do not."""
        self._stopping.set()
        for child in self._children:
            if child.is_alive() and child.pid is not None:
                child.terminate()  # SIGTERM: uvicorn's graceful shutdown
        for child in self._children:
            child.join(CHILD_STOP_SECONDS)
            if child.is_alive():
                child.kill()
                child.join()
        if self._watcher is not None:
            self._watcher.join(timeout=5)


class WorkerProcess:
    """``tidings worker --wake-fd`` as a child of ``tidings serve``: started before the API,
    started again (after a second) when it exits with an error, stopped after the API.
    ``wakes`` tells it that messages or callbacks were committed."""

    def __init__(self) -> None:
        self._wake_read, wake_write = os.pipe()
        self.wakes = WakeWriter(wake_write)
        self._wake_write = wake_write
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self._process = self._spawn()
        self._watcher = threading.Thread(target=self._restart_failed, name="worker-process",
                                         daemon=True)
        self._watcher.start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "tidings", "worker", "--wake-fd", str(self._wake_read)],
            pass_fds=(self._wake_read,))

    def _restart_failed(self) -> None:
        while not self._stopping.is_set():
            assert self._process is not None
            code = self._process.wait()
            if self._stopping.is_set() or code == 0:
                return  # told to stop (Ctrl+C reaches the whole process group)
            log.warning("worker process %s exited with %s; starting another",
                        self._process.pid, code)
            if self._stopping.wait(RESTART_DELAY_SECONDS):
                return
            self._process = self._spawn()

    def stop(self) -> None:
        """Ask the worker to finish what it holds and exit; kill it if it does not."""
        self._stopping.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()  # SIGTERM: the worker's graceful stop
            try:
                process.wait(CHILD_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        for fd in (self._wake_read, self._wake_write):
            os.close(fd)


def serve_api_child(host: str, port: int, ready: Any) -> None:
    """The body of an extra API process (no workers), started by ``ApiProcesses``; sets the
    ``ready`` event once it listens."""
    configure_logging()
    from tidings.app import create_app  # noqa: PLC0415 (heavy; only API processes need it)
    from tidings.cli.common import load_settings  # noqa: PLC0415

    settings = load_settings(host=host, port=port)
    server = uvicorn_server(create_app(settings, run_workers=False), settings)
    parent = multiprocessing.parent_process()

    def watch() -> None:
        while not server.started and not server.should_exit:
            time.sleep(0.05)
        ready.set()
        if parent is not None:
            wait([parent.sentinel])
            server.should_exit = True  # the parent died (SIGKILL, a crash): stop serving

    threading.Thread(target=watch, name="api-process-watch", daemon=True).start()
    sock = shared_port_socket(host, port)
    with absorbing_stop_signals():
        server.run(sockets=[sock])
