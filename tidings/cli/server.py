"""``tidings serve``, ``tidings worker`` and ``tidings migrate``: running Tidings.

Both ``serve`` and ``worker`` apply pending migrations first and stop cleanly, exiting 0, on
SIGTERM or Ctrl+C (SIGINT). ``serve`` runs the workers as a ``tidings worker`` child process
unless told otherwise (``tidings.cli.serving``). On SQLite only one process may run the workers
of a database file (``pipeline.node_lock``): a second ``worker``, or a second ``serve`` without
``--no-workers``, refuses to start and exits 1.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from tidings.cli.common import emit, fail, load_settings, open_database, run, shown_url
from tidings.cli.serving import (
    STOP_SIGNALS,
    ApiProcesses,
    WorkerProcess,
    absorbing_stop_signals,
    shared_port_socket,
    uvicorn_server,
)
from tidings.config import Settings
from tidings.pipeline.node_lock import NodeLock, NodeLockBusy
from tidings.pipeline.wakes import listen_for_wakes
from tidings.pipeline.workers import WorkerSet
from tidings.runtime import Runtime
from tidings.services.tenancy import count_tenants

log = logging.getLogger("tidings.cli")


def serve(
    host: Annotated[str | None, typer.Option(
        help="Interface to listen on (default: TIDINGS_HOST, else 127.0.0.1).",
        show_default=False)] = None,
    port: Annotated[int | None, typer.Option(
        help="Port to listen on (default: TIDINGS_PORT, else 8000).", show_default=False)] = None,
    no_workers: Annotated[bool, typer.Option(
        "--no-workers", help="Serve the API only; run the workers elsewhere (`tidings worker`).",
    )] = False,
    api_processes: Annotated[int | None, typer.Option(
        "--api-processes", min=1, max=64,
        help="HTTP API processes sharing the port, for more than one core (default: "
             "TIDINGS_API_PROCESSES, else 1).",
        show_default=False)] = None,
    worker_process: Annotated[bool | None, typer.Option(
        "--worker-process/--inline-workers",
        help="Run the workers as a process of their own, on another core (default: "
             "TIDINGS_WORKER_PROCESS, else yes), or inside the (first) API process.",
        show_default=False)] = None,
) -> None:
    """Serve the HTTP API, with the background workers in a child process (or inside the API
    process with --inline-workers, or elsewhere with --no-workers).

    Applies pending migrations first; on an empty database, prints how to create the first
    tenant. Runs until SIGTERM or Ctrl+C, then finishes the requests in flight, stops the
    workers and exits 0. For the processes, see ``tidings.cli.serving``.
    """
    settings = load_settings(host=host, port=port, api_processes=api_processes,
                             worker_process=worker_process)
    lock = NodeLock.for_database(settings.database_url)
    if lock is not None and not no_workers:
        try:
            lock.ensure_free()  # a clear refusal now, rather than a failed app startup later
        except NodeLockBusy as exc:
            fail(str(exc))
    if run(_prepare(settings)) == 0:
        typer.echo(first_start_hint(_invoked_as(), _base_url(settings.host, settings.port)),
                   err=True)
    # Imported here so that the other commands do not load FastAPI.
    from tidings.app import create_app

    worker = WorkerProcess() if settings.worker_process and not no_workers else None
    server = uvicorn_server(create_app(
        settings, run_workers=not no_workers and worker is None,
        worker_wakes=worker.wakes if worker is not None else None), settings)
    sockets: list[socket.socket] | None = None
    extra: ApiProcesses | None = None
    if worker is not None:
        worker.start()
    if settings.api_processes > 1:
        try:
            sockets = [shared_port_socket(settings.host, settings.port)]
        except OSError as exc:
            fail(f"cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}")
        port_taken = sockets[0].getsockname()[1]  # the real one when --port 0 asked for any
        extra = ApiProcesses(settings.api_processes - 1, settings.host, port_taken)
        extra.start()
    try:
        with absorbing_stop_signals():
            server.run(sockets=sockets)
    except SystemExit as exc:  # uvicorn exits this way when it cannot listen
        if exc.code:
            fail("the server did not start (the reason is logged above)")
        raise
    finally:
        if extra is not None:
            extra.stop()
        if worker is not None:
            worker.stop()
    if not server.started:
        fail("the server did not start (the reason is logged above)")


async def _prepare(settings: Settings) -> int:
    """Apply pending migrations; answer how many tenants exist (0 or 1: only "any?" matters)."""
    async with open_database(settings) as database, database.unit_of_work() as session:
        if not database.applied:
            log.info("database %s is up to date", shown_url(settings.database_url))
        return await count_tenants(session)


def first_start_hint(program: str, base_url: str) -> str:
    """What to do on an empty database: create a tenant, then call the API."""
    return f"""
No tenant yet. Create the first one (in another terminal, from this directory):

  {program} tenant create --name "Acme" --email you@example.com --password 'a long password'

It prints the tenant's id and an owner API key (jc_live_...), shown once. Use the key as a
bearer token:

  curl {base_url}/tenants/roles/ -H "Authorization: Bearer jc_live_..."

or log in with the email and password for a short-lived access token (JWT):

  curl -X POST {base_url}/token/ -H 'Content-Type: application/json' \\
       -d '{{"email": "you@example.com", "password": "a long password"}}'

API documentation: {base_url}/docs
"""


def _invoked_as() -> str:
    """How the operator ran this program, to repeat in hints: relative to the working directory
    when inside it (``.venv/bin/tidings``), else ``tidings`` when that is what PATH finds."""
    path = Path(sys.argv[0] if sys.argv else "tidings")
    if path.name != "tidings":
        return "tidings"
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        on_path = shutil.which("tidings")
        return "tidings" if on_path and Path(on_path).resolve() == resolved else str(path)


def _base_url(host: str, port: int) -> str:
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def worker(
    wake_fd: Annotated[int | None, typer.Option(
        "--wake-fd", hidden=True,
        help="The read end of `tidings serve`'s wake pipe (pipeline.wakes); the worker exits "
             "at once when it closes.")] = None,
) -> None:
    """Run the background workers without the API, until SIGTERM or Ctrl+C (then exit 0).

    Applies pending migrations first. On SQLite, refuses to start (exit 1) while another process
    runs the workers for the same database file.
    """
    settings = load_settings()
    run(_work(settings, wake_fd))


def _serve_has_gone() -> None:
    """The wake pipe closed: the serve process this worker belongs to died (SIGKILL, a crash).
    Exit now, as it did, so that a restarted serve can take the workers over; leases bring
    back whatever was in flight."""
    log.error("the serve process has gone; the worker stops at once")
    logging.shutdown()
    os._exit(1)


async def _work(settings: Settings, wake_fd: int | None = None) -> None:
    await _migrate(settings)
    runtime = Runtime.build(settings)
    workers = WorkerSet(runtime)
    try:
        await workers.start()
        if wake_fd is not None:
            listen_for_wakes(wake_fd, dispatcher=workers.wake_dispatcher,
                             callbacks=workers.wake_callbacks, on_closed=_serve_has_gone)
        with _stop_signals() as stop:
            log.info("workers running against %s; stop with SIGTERM or Ctrl+C",
                     shown_url(settings.database_url))
            await stop.wait()
    finally:
        await workers.stop()
        await runtime.close()


@contextmanager
def _stop_signals() -> Iterator[asyncio.Event]:
    """An event set by SIGTERM or SIGINT while the block runs (installed before the workers
    announce themselves, so that a signal sent on seeing that line is never missed)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    try:
        yield stop
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)


def migrate() -> None:
    """Apply pending database migrations and say which (serve and worker also do this)."""
    settings = load_settings()
    applied = run(_migrate(settings))
    url = shown_url(settings.database_url)
    if applied:
        emit(f"Applied {len(applied)} migration(s) to {url}: {', '.join(applied)}")
    else:
        emit(f"The database {url} is up to date.")


async def _migrate(settings: Settings) -> list[str]:
    async with open_database(settings) as database:
        return database.applied
