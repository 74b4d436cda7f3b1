"""A callback receiver for the benchmark: answers 200 to every POST and counts them.

    python bench/_callback_receiver.py --port P

``GET /count`` answers ``{"count": N}``, the POSTs received so far; anything else answers 200
with an empty body. It checks no signature and keeps no body. HTTP/1.1 with keep-alive, on raw
asyncio (a protocol, no HTTP library), so that it costs the gateway it measures next to no CPU;
it reads ``Content-Length`` bodies only (no chunked encoding: the callback sender never uses it).
Runs until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from typing import cast

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class _Receiver(asyncio.Protocol):
    """One connection: splits the byte stream into requests and answers each in order."""

    def __init__(self, counter: list[int]) -> None:
        self._counter = counter
        self._buffer = b""
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self._buffer[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self._buffer) < end + 4 + length:
                return
            self._buffer = self._buffer[end + 4 + length:]
            method, _, rest = head.partition(" ")
            if self._transport is None:
                return
            if method == "GET" and rest.startswith("/count"):
                body = json.dumps({"count": self._counter[0]}).encode()
                self._transport.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            else:
                if method == "POST":
                    self._counter[0] += 1
                self._transport.write(_OK)


async def serve(port: int) -> None:
    """Listen on 127.0.0.1:``port`` until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    counter = [0]
    server = await loop.create_server(lambda: _Receiver(counter), "127.0.0.1", port,
                                      backlog=1024)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
