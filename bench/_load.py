"""A small HTTP/1.1 load client on raw asyncio streams (much cheaper per request than an HTTP
library, so on a 2-core machine the server, not the client, is what gets measured).

    python bench/_load.py URL --token KEY --requests 20000 --concurrency 64 --body-template T

``T`` is a JSON body in which ``{n}`` is replaced by the request number (``{n7}``: zero-padded
to seven digits). Prints one JSON line:
requests, seconds, per_second, statuses (count per HTTP status), p50/p99 latency in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import Counter
from urllib.parse import urlsplit


async def _worker(host: str, port: int, path: str, token: str, template: str,
                  numbers: list[int], statuses: Counter[int], latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for n in numbers:
            body = template.replace("{n7}", f"{2000000 + n:07d}").replace("{n}", str(n)).encode()
            head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            started = time.perf_counter()
            writer.write(head + body)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode().partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            statuses[int(status_line.split()[1])] += 1
    finally:
        writer.close()


async def run(url: str, token: str, requests: int, concurrency: int, template: str) -> dict:
    parts = urlsplit(url)
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    shares = [list(range(i, requests, concurrency)) for i in range(concurrency)]
    started = time.perf_counter()
    await asyncio.gather(*(_worker(parts.hostname or "127.0.0.1", parts.port or 80,
                                   parts.path, token, template, share, statuses, latencies)
                           for share in shares))
    seconds = time.perf_counter() - started
    latencies.sort()
    return {"requests": requests, "seconds": round(seconds, 3),
            "per_second": round(requests / seconds, 1),
            "statuses": {str(k): v for k, v in statuses.items()},
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--token", required=True)
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--body-template", required=True)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.url, args.token, args.requests, args.concurrency,
                                     args.body_template))))


if __name__ == "__main__":
    main()
