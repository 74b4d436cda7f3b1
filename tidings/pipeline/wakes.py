"""Waking the workers of another process.

``tidings serve`` runs its workers as a child process (``tidings worker --wake-fd N``) and, when
it commits messages to send or callbacks to deliver, says so through a pipe, so that neither
waits for the next poll. One byte a wake: ``d`` for the dispatcher, ``c`` for the callback
sender. Writing never blocks: a full pipe holds wakes enough already. End of file on the
worker's side means the serve process has gone.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Final

DISPATCHER: Final = b"d"
CALLBACKS: Final = b"c"
READ_BYTES: Final = 4096


class WakeWriter:
    """The serve side: ``dispatcher()`` and ``callbacks()`` each write one byte, never
    blocking, never failing (a worker being restarted polls when it starts)."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        os.set_blocking(fd, False)

    def dispatcher(self) -> None:
        self._write(DISPATCHER)

    def callbacks(self) -> None:
        self._write(CALLBACKS)

    def _write(self, wake: bytes) -> None:
        try:
            os.write(self._fd, wake)
        except (BlockingIOError, BrokenPipeError):
            pass


def listen_for_wakes(fd: int, *, dispatcher: Callable[[], None], callbacks: Callable[[], None],
                     on_closed: Callable[[], None]) -> None:
    """The worker side: in the running loop, call ``dispatcher`` or ``callbacks`` for the
    wakes read from ``fd`` (once per read, however many arrived), ``on_closed`` at end of
    file."""
    os.set_blocking(fd, False)
    loop = asyncio.get_running_loop()

    def readable() -> None:
        try:
            wakes = os.read(fd, READ_BYTES)
        except BlockingIOError:
            return
        if not wakes:
            loop.remove_reader(fd)
            on_closed()
            return
        if DISPATCHER in wakes:
            dispatcher()
        if CALLBACKS in wakes:
            callbacks()

    loop.add_reader(fd, readable)
