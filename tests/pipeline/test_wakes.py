"""The wake pipe between ``tidings serve`` and its worker process: each byte wakes the
dispatcher or the callback sender, writing never blocks, and end of file says serve is gone."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

from tidings.pipeline.wakes import WakeWriter, listen_for_wakes


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        try:
            os.close(fd)
        except OSError:
            pass


class Woken:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def dispatcher(self) -> None:
        self.calls.append("dispatcher")

    def callbacks(self) -> None:
        self.calls.append("callbacks")

    def closed(self) -> None:
        self.calls.append("closed")


async def _settle(woken: Woken, count: int) -> None:
    for _ in range(100):
        if len(woken.calls) >= count:
            return
        await asyncio.sleep(0.01)


@pytest.mark.parametrize(("writes", "woken_calls"), [
    (["dispatcher"], ["dispatcher"]),
    (["callbacks"], ["callbacks"]),
    (["callbacks", "callbacks", "callbacks"], ["callbacks"]),  # arrived together: one wake
])
async def test_each_wake_written_wakes_its_worker(
        pipe: tuple[int, int], writes: list[str], woken_calls: list[str]) -> None:
    read_fd, write_fd = pipe
    woken = Woken()
    writer = WakeWriter(write_fd)
    for name in writes:
        getattr(writer, name)()
    listen_for_wakes(read_fd, dispatcher=woken.dispatcher, callbacks=woken.callbacks,
                     on_closed=woken.closed)

    await _settle(woken, len(woken_calls))
    asyncio.get_running_loop().remove_reader(read_fd)

    assert woken.calls == woken_calls


async def test_the_write_end_closing_is_reported_once(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    woken = Woken()
    listen_for_wakes(read_fd, dispatcher=woken.dispatcher, callbacks=woken.callbacks,
                     on_closed=woken.closed)

    os.close(write_fd)
    await _settle(woken, 1)
    await asyncio.sleep(0.05)

    assert woken.calls == ["closed"]


def test_writing_to_a_full_pipe_neither_blocks_nor_fails(pipe: tuple[int, int]) -> None:
    _, write_fd = pipe
    writer = WakeWriter(write_fd)

    for _ in range(200_000):  # far more than a pipe holds (64 KiB on Linux)
        writer.callbacks()


def test_writing_when_the_worker_has_gone_does_not_fail(pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    os.close(read_fd)

    WakeWriter(write_fd).dispatcher()
